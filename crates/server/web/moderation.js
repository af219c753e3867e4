// @ts-check
// The room's panel: its topic and language, whether it is private or locked, the queue of
// raised hands (our own hand's button is in the control bar), who moderates (a badge in the member list), and, for a
// moderator, the room's controls: topic, lock, clearing the chat, and what to do with a member
// (mute for everyone, remove, make moderator, lower their hand).

import * as connection from './connection.js';
import * as i18n from './i18n.js';
import { store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./signal.js').WireRoomInfo} WireRoomInfo */

/** What the server told us of the room, beyond what the store keeps. */
const room = {
  /** @type {WireRoomInfo} */
  info: { topic: '', language: '', private: false, locked: false },
  /** @type {Set<string>} */
  moderators: new Set(),
  /** @type {string[]} */
  hands: [],
};

/** @param {unknown} v @returns {string[]} */
const ids = (v) => (Array.isArray(v) ? v.filter((id) => typeof id === 'number').map(String) : []);

/** @param {unknown} v @returns {WireRoomInfo} */
function infoFrom(v) {
  const r = v && typeof v === 'object' ? /** @type {Record<string, unknown>} */ (v) : {};
  return {
    topic: typeof r.topic === 'string' ? r.topic : '',
    language: typeof r.language === 'string' ? r.language : '',
    private: r.private === true,
    locked: r.locked === true,
  };
}

/** Whether we moderate the room. */
export function isModerator() {
  const self = store.getState().selfId;
  return self !== null && room.moderators.has(self);
}

/** @param {string} id */
function nameOf(id) {
  return store.getState().members.get(id)?.name ?? id;
}

function renderInfo() {
  const { topic, language, locked } = room.info;
  ui.$('room-topic').textContent = topic;
  ui.$('room-topic').hidden = topic === '';
  ui.$('room-language').textContent = language;
  ui.$('room-language').hidden = language === '';
  ui.$('room-private').hidden = !room.info.private;
  ui.$('room-locked').hidden = !locked;
  i18n.setText(ui.$('mod-lock'), locked ? 'mod.unlock' : 'mod.lock');
}

function renderHands() {
  const list = ui.$('hand-list');
  list.replaceChildren();
  for (const id of room.hands) {
    const li = document.createElement('li');
    li.dataset.memberId = id;
    li.textContent = nameOf(id);
    list.append(li);
  }
  ui.$('hands').hidden = room.hands.length === 0;
  const self = store.getState().selfId;
  const up = self !== null && room.hands.includes(self);
  // In the control bar, always at hand (on a phone too).
  i18n.setText(ui.$('hand-label'), up ? 'mod.lower' : 'mod.raise');
  ui.$('hand-btn').setAttribute('aria-pressed', String(up));
}

/** The member list's badges, and the moderator's controls. */
function renderModerators() {
  for (const li of document.querySelectorAll('#members li[data-member-id]')) {
    if (!(li instanceof HTMLElement)) continue;
    let badge = li.querySelector('.mod-badge');
    if (!badge) {
      badge = document.createElement('span');
      badge.className = 'mod-badge';
      i18n.setText(/** @type {HTMLElement} */ (badge), 'mod.badge');
      li.append(badge);
    }
    /** @type {HTMLElement} */ (badge).hidden = !room.moderators.has(li.dataset.memberId ?? '');
  }
  const mine = isModerator();
  ui.$('mod-controls').hidden = !mine;
  if (!mine) return;
  const select = ui.$as('mod-member', HTMLSelectElement);
  const chosen = select.value;
  const self = store.getState().selfId;
  select.replaceChildren();
  for (const [id, m] of store.getState().members) {
    if (id === self) continue;
    const option = document.createElement('option');
    option.value = id;
    option.textContent = room.moderators.has(id) ? `${m.name} ★` : m.name;
    select.append(option);
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function renderAll() {
  renderInfo();
  renderHands();
  renderModerators();
}

/** @param {import('./signal.js').ClientMsg} msg */
function send(msg) {
  connection.send(msg);
}

/** The member chosen in the moderator's controls, as the protocol names them. */
function chosen() {
  const v = ui.$as('mod-member', HTMLSelectElement).value;
  return v === '' ? null : Number(v);
}

let mounted = false;

/** Wires the panel (once) and follows the room. */
export function mount() {
  if (mounted) return;
  mounted = true;
  connection.onServer('joined', (msg) => {
    room.info = infoFrom(msg.room_info);
    room.moderators = new Set(ids(msg.moderators));
    room.hands = ids(msg.hands);
    renderAll();
  });
  connection.onServer('room', (msg) => {
    room.info = infoFrom(msg.info);
    renderInfo();
  });
  connection.onServer('moderators', (msg) => {
    room.moderators = new Set(ids(msg.ids));
    renderModerators();
  });
  connection.onServer('hands', (msg) => {
    room.hands = ids(msg.ids);
    renderHands();
  });
  // Members come and go and rename themselves: the badges, names and choices follow.
  store.subscribe((state, prev) => {
    if (state.members !== prev.members || state.selfId !== prev.selfId) {
      renderHands();
      renderModerators();
    }
  });
  i18n.onLanguageChange(renderAll);

  ui.$('hand-btn').addEventListener('click', () => {
    const self = store.getState().selfId;
    send({ type: 'hand', raised: !(self !== null && room.hands.includes(self)) });
  });
  ui.$as('mod-topic-form', HTMLFormElement).addEventListener('submit', (ev) => {
    ev.preventDefault();
    send({ type: 'set_room', topic: ui.$as('mod-topic', HTMLInputElement).value.trim() });
  });
  ui.$('mod-lock').addEventListener('click', () => send({ type: 'set_room', locked: !room.info.locked }));
  ui.$('mod-clear').addEventListener('click', () => send({ type: 'clear_chat' }));
  /** @param {string} button @param {(id: number) => import('./signal.js').ClientMsg} msg */
  const act = (button, msg) =>
    ui.$(button).addEventListener('click', () => {
      const id = chosen();
      if (id !== null) send(msg(id));
    });
  act('mod-mute', (id) => ({ type: 'mute_member', id, muted: true }));
  act('mod-unmute', (id) => ({ type: 'mute_member', id, muted: false }));
  act('mod-remove', (id) => ({ type: 'remove_member', id }));
  act('mod-make', (id) => ({ type: 'make_moderator', id }));
  act('mod-lower', (id) => ({ type: 'lower_hand', id }));
  renderAll();
}
