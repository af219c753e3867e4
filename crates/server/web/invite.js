// @ts-check
// Inviting people to the room: a panel under "Invite" with the room's link as a QR code (drawn
// by the server from the room's own link, for a phone to scan from this screen), the link, the
// phone's share sheet where the browser has one (Web Share API), and "Copy link".

import * as i18n from './i18n.js';
import { store } from './state.js';
import * as ui from './ui.js';

/** The room's link, as everyone opens it. */
export function roomLink() {
  return `${window.location.origin}/room/${encodeURIComponent(store.getState().room ?? '')}`;
}

/** Shares the link through the system's share sheet. */
async function share() {
  const room = store.getState().room ?? '';
  try {
    await navigator.share({ title: i18n.t('invite.shareTitle', { room }), url: roomLink() });
  } catch (err) {
    // Closing the share sheet is no failure.
    if (err instanceof Error && err.name === 'AbortError') return;
    ui.toast('toast.linkNotCopied', { url: roomLink() }, 'info', 12_000);
  }
}

/** @param {boolean} open */
function show(open) {
  const button = ui.$('invite-btn');
  button.setAttribute('aria-expanded', String(open));
  ui.$('invite').hidden = !open;
  if (!open) return;
  const img = ui.$as('invite-qr', HTMLImageElement);
  const src = `/room/${encodeURIComponent(store.getState().room ?? '')}/qr.svg`;
  if (img.getAttribute('src') !== src) img.src = src;
  img.alt = i18n.t('invite.qrAlt');
  ui.$('invite-link').textContent = roomLink();
  ui.$('invite-share').hidden = typeof navigator.share !== 'function';
}

let mounted = false;

/**
 * Wires the panel (once). `copyLink` is the room's "Copy link".
 * @param {() => void} copyLink
 */
export function mount(copyLink) {
  if (mounted) return;
  mounted = true;
  const button = ui.$('invite-btn');
  button.addEventListener('click', () => show(button.getAttribute('aria-expanded') !== 'true'));
  ui.$('invite-share').addEventListener('click', share);
  ui.$('invite-copy').addEventListener('click', copyLink);
  ui.$('invite').addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    show(false);
    button.focus();
  });
  i18n.onLanguageChange(() => {
    ui.$as('invite-qr', HTMLImageElement).alt = i18n.t('invite.qrAlt');
  });
}
