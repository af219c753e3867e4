// @ts-check
// Talking without reaching for the mouse: `m` mutes and unmutes; holding Space while muted
// talks until it is let go (push-to-talk), as does holding the microphone button (on a phone,
// a long press). Neither while the person types in a field: there the keys are text. Space on
// a button, link or slider keeps its own meaning (it presses them), so keyboard users lose
// nothing. The microphone button's tooltip names the shortcuts.

import * as i18n from './i18n.js';
import { muteButton, renderingFromStore, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */

/** A press on the microphone button this long is a hold (push-to-talk), not a click. */
const HOLD_MS = 350;

/** Push-to-talk now: by the key, by the button, or not at all. @type {'key' | 'button' | null} */
let talking = null;
/** The pending hold of the microphone button. @type {ReturnType<typeof setTimeout> | undefined} */
let holdTimer;
/** A hold just ended on the button: the click that follows is not a toggle. */
let swallowClick = false;

/** Whether keys pressed in `target` are text, or belong to the control. @param {EventTarget | null} target @param {boolean} space */
function keysBelongTo(target, space) {
  if (!(target instanceof Element)) return false;
  if (target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]')) return true;
  return space && !!target.closest('button, a[href], summary, [role="button"], [role="slider"]');
}

/** Whether our microphone can be switched now. */
function canTalk() {
  return muteButton(store.getState()).enabled;
}

/** @param {'key' | 'button'} how */
function startTalking(how) {
  if (talking || !canTalk() || !store.getState().mic.muted) return;
  talking = how;
  store.dispatch({ type: 'muted_set', muted: false });
}

function stopTalking() {
  if (!talking) return;
  talking = null;
  if (!store.getState().mic.muted) store.dispatch({ type: 'muted_set', muted: true });
  else render(store.getState(), null);
}

/** @param {KeyboardEvent} ev */
function onKeyDown(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
  if (ev.key === 'm' || ev.key === 'M') {
    if (keysBelongTo(ev.target, false) || ev.repeat || !canTalk()) return;
    ev.preventDefault();
    if (talking) stopTalking();
    else store.dispatch({ type: 'muted_set', muted: !store.getState().mic.muted });
  } else if (ev.code === 'Space' || ev.key === ' ') {
    if (keysBelongTo(ev.target, true)) return;
    // Not scrolling the page, held or not.
    ev.preventDefault();
    if (!ev.repeat) startTalking('key');
  }
}

/** @param {KeyboardEvent} ev */
function onKeyUp(ev) {
  if ((ev.code === 'Space' || ev.key === ' ') && talking === 'key') {
    ev.preventDefault();
    stopTalking();
  }
}

/** @param {PointerEvent} ev */
function onButtonDown(ev) {
  if (ev.button !== 0 || !canTalk() || !store.getState().mic.muted) return;
  clearTimeout(holdTimer);
  holdTimer = setTimeout(() => {
    holdTimer = undefined;
    startTalking('button');
  }, HOLD_MS);
}

function onButtonUp() {
  clearTimeout(holdTimer);
  holdTimer = undefined;
  if (talking !== 'button') return;
  swallowClick = true;
  // The click comes right after pointerup, if at all (not when the finger slid away).
  setTimeout(() => {
    swallowClick = false;
  }, 0);
  stopTalking();
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  if (talking && !state.mic.muted && !canTalk()) talking = null;
  if (prev && state.mic === prev.mic && state.connection.status === prev.connection.status && state.lang === prev.lang) return;
  const button = ui.$('mute-btn');
  const on = talking !== null && !state.mic.muted;
  button.classList.toggle('ptt', on);
  if (on) i18n.setText(ui.$('mute-label'), 'ptt.talking');
  i18n.setAttr(button, 'title', state.mic.muted ? 'ctl.unmuteTip' : 'ctl.muteTip');
  button.setAttribute('aria-keyshortcuts', 'M');
}

const startRendering = renderingFromStore(render);

let mounted = false;

/** Listens for the shortcuts and holds, and keeps the button's tooltip (once). */
export function mount() {
  if (mounted) return;
  mounted = true;
  window.addEventListener('keydown', onKeyDown);
  window.addEventListener('keyup', onKeyUp);
  // Letting go of Space in another window is not seen: stop talking when we lose focus.
  window.addEventListener('blur', () => {
    if (talking === 'key') stopTalking();
  });
  const button = ui.$('mute-btn');
  button.addEventListener('pointerdown', onButtonDown);
  for (const type of ['pointerup', 'pointercancel', 'pointerleave']) button.addEventListener(type, onButtonUp);
  // A long press must not open the phone's menu for the button.
  button.addEventListener('contextmenu', (ev) => ev.preventDefault());
  // Before the button's own click (room.js toggles there): the end of a hold is no toggle.
  ui.$('control-bar').addEventListener(
    'click',
    (ev) => {
      if (swallowClick && ev.target instanceof Element && ev.target.closest('#mute-btn')) {
        ev.stopPropagation();
        swallowClick = false;
      }
    },
    true,
  );
  startRendering();
}
