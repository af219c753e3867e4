// @ts-check
// Checks shared by the forms (the same rules as the server's), and showing what they find.

import * as ui from './ui.js';

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const NICK_MAX = 32;

/** @typedef {import('./state.js').Text} Text */

/** @param {string} room */
export function isRoomName(room) {
  return ROOM_RE.test(room);
}

/**
 * What is wrong with a nickname, or null when it is fine.
 * @param {string} raw
 * @returns {Text | null}
 */
export function nickProblem(raw) {
  const name = raw.trim();
  const len = [...name].length;
  if (len === 0) return { key: 'err.nickEmpty' };
  if (len > NICK_MAX) return { key: 'err.nickLong', args: { max: NICK_MAX } };
  if (/\p{Cc}/u.test(name)) return { key: 'err.nickControl' };
  return null;
}

/** Nickname fields already kept to the limit. @type {WeakSet<HTMLInputElement>} */
const capped = new WeakSet();

/**
 * Keeps a nickname field to `NICK_MAX` characters as it is typed or pasted. Its `maxlength`
 * counts UTF-16 units, not characters, so it only bounds the field at twice that; an input
 * method's composition is cut once it ends.
 * @param {HTMLInputElement} input
 */
export function capNickname(input) {
  if (capped.has(input)) return;
  capped.add(input);
  const cap = () => {
    const chars = [...input.value];
    if (chars.length > NICK_MAX) input.value = chars.slice(0, NICK_MAX).join('');
  };
  input.addEventListener('input', (ev) => {
    if (!(ev instanceof InputEvent && ev.isComposing)) cap();
  });
  input.addEventListener('compositionend', cap);
}

/**
 * What is wrong with a room name, or null when it is fine.
 * @param {string} room
 * @returns {Text | null}
 */
export function roomProblem(room) {
  if (room === '') return { key: 'err.roomEmpty' };
  if (!ROOM_RE.test(room)) return { key: 'err.roomRule' };
  return null;
}

/**
 * Shows `problem` under a field, or clears it.
 * @param {string} fieldErrorId
 * @param {Text | null} problem
 */
export function showProblem(fieldErrorId, problem) {
  ui.setFieldError(fieldErrorId, problem ? problem.key : null, problem ? problem.args : undefined);
}

/**
 * The address of a room, joining as `name` if given.
 * @param {string} room
 * @param {string} [name]
 */
export function roomHref(room, name) {
  return `/room/${encodeURIComponent(room)}${name ? `?name=${encodeURIComponent(name)}` : ''}`;
}
