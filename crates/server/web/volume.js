// @ts-check
// Each person's volume for us: a slider in their item of the member list, beside "mute for
// me", remembered by their tag (as "mute for me" is) so that it holds when they come back and
// after a reload. A member without a tag keeps their volume for this page only.
//
// What we hear arrives on audio elements (media.js): one per audio slot, whose speaker changes
// as the room talks, or one per stream of a member's own. An element's `data-member-id` names
// whom it carries now (on a slot: the contributing source of its latest packets), so the
// volume is applied per element from that, again whenever who is on a slot changes.

import * as i18n from './i18n.js';
import * as prefs from './prefs.js';
import { renderingFromStore, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */

/** Volumes of members without a tag, by id, for this page only. @type {Map<string, number>} */
const untagged = new Map();

/**
 * Member `id`'s volume for us, 0…1.
 * @param {State} state
 * @param {string} id
 */
export function volumeOf(state, id) {
  const tag = state.members.get(id)?.tag;
  if (tag) return prefs.volumes.get(tag);
  return untagged.get(id) ?? 1;
}

/**
 * Sets member `id`'s volume for us and applies it at once.
 * @param {string} id
 * @param {number} volume 0…1
 */
export function setVolume(id, volume) {
  const state = store.getState();
  const v = Math.max(0, Math.min(1, volume));
  const tag = state.members.get(id)?.tag;
  if (tag) prefs.volumes.set(tag, v);
  else untagged.set(id, v);
  applyVolumes(state);
}

/**
 * Gives every audio element the volume of the member it carries now (full volume while it
 * carries nobody).
 * @param {State} state
 */
function applyVolumes(state) {
  /** @type {Map<string, number>} */
  const cache = new Map();
  for (const audio of ui.$('remote-audio').querySelectorAll('audio')) {
    const id = audio.dataset.memberId;
    let v = 1;
    if (id) {
      v = cache.get(id) ?? volumeOf(state, id);
      cache.set(id, v);
    }
    if (audio.volume !== v) audio.volume = v;
  }
}

/**
 * Adds a volume slider to a member's item if it has none, and names it after the member.
 * @param {HTMLElement} li
 * @param {State} state
 */
function decorate(li, state) {
  const id = li.dataset.memberId;
  if (!id) return;
  let slider = /** @type {HTMLInputElement | null} */ (li.querySelector('input.member-volume'));
  if (!slider) {
    slider = document.createElement('input');
    slider.type = 'range';
    slider.className = 'member-volume';
    slider.min = '0';
    slider.max = '100';
    slider.step = '5';
    const input = slider;
    input.addEventListener('input', () => {
      const member = li.dataset.memberId;
      if (member) setVolume(member, Number(input.value) / 100);
      input.setAttribute('aria-valuetext', `${input.value}%`);
      input.title = `${i18n.t('vol.label', { name: memberName(li) })}: ${input.value}%`;
    });
    const mute = li.querySelector('.member-mute');
    if (mute) mute.before(slider);
    else li.append(slider);
  }
  const self = id === state.selfId;
  slider.hidden = self;
  if (self) return;
  const percent = String(Math.round(volumeOf(state, id) * 100));
  // Not while the person drags it: their value is the one being set.
  if (document.activeElement !== slider && slider.value !== percent) slider.value = percent;
  const name = memberName(li);
  i18n.setAttr(slider, 'aria-label', 'vol.label', { name });
  slider.setAttribute('aria-valuetext', `${slider.value}%`);
  slider.title = `${i18n.t('vol.label', { name })}: ${slider.value}%`;
}

/** @param {HTMLElement} li */
function memberName(li) {
  return li.querySelector('.name')?.textContent ?? '';
}

/** @param {State} state */
function decorateAll(state) {
  for (const li of ui.$('members').querySelectorAll('li.member')) {
    if (li instanceof HTMLElement) decorate(li, state);
  }
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  if (
    !prev ||
    state.members !== prev.members ||
    state.slotVoices !== prev.slotVoices ||
    state.remoteMedia !== prev.remoteMedia ||
    state.localMutes !== prev.localMutes
  ) {
    applyVolumes(state);
  }
  if (!prev || state.members !== prev.members || state.selfId !== prev.selfId || state.lang !== prev.lang) {
    decorateAll(state);
  }
}

const startRendering = renderingFromStore(render);

let mounted = false;

/** Adds the sliders to the member list and applies the volumes, from the store (once). */
export function mount() {
  if (mounted) return;
  mounted = true;
  // The list adds items of its own accord (paging, search): give each new one its slider.
  new MutationObserver(() => decorateAll(store.getState())).observe(ui.$('members'), { childList: true });
  startRendering();
}
