// @ts-check
// Rooms people can find: the start page's list of open rooms (asked for every few seconds, so
// its counts stay live), filtered by language; and what a join asks beyond a room and a name —
// a private room's password, a new room's topic and language — kept for this tab from the
// start page to the room page (and for its reconnections), never in the address.

import * as i18n from './i18n.js';
import * as ui from './ui.js';

/** How often the list is asked for again. */
const POLL_MS = 3000;

/** @typedef {import('./signal.js').JoinExtras} JoinExtras */

/** @param {string} room */
const storageKey = (room) => `f4c.join.${room}`;

/**
 * Keeps what joining `room` asks for, for this tab.
 * @param {string} room
 * @param {JoinExtras} extras
 */
export function rememberJoin(room, extras) {
  try {
    const kept = Object.fromEntries(Object.entries(extras).filter(([, v]) => typeof v === 'string' && v !== ''));
    if (Object.keys(kept).length === 0) sessionStorage.removeItem(storageKey(room));
    else sessionStorage.setItem(storageKey(room), JSON.stringify(kept));
  } catch {
    // Storage refused (private browsing): the room is joined without them.
  }
}

/**
 * What joining `room` asks for, as kept for this tab.
 * @param {string} room
 * @returns {JoinExtras}
 */
export function joinExtras(room) {
  try {
    const v = JSON.parse(sessionStorage.getItem(storageKey(room)) ?? '{}');
    /** @type {JoinExtras} */
    const out = {};
    for (const k of /** @type {const} */ (['password', 'topic', 'language'])) {
      if (v && typeof v[k] === 'string' && v[k] !== '') out[k] = v[k];
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * @typedef {object} PublicRoom
 * @property {string} room
 * @property {number} members
 * @property {string} topic
 * @property {string} language
 */

/** @param {unknown} v @returns {PublicRoom | null} */
function roomFrom(v) {
  if (!v || typeof v !== 'object') return null;
  const r = /** @type {Record<string, unknown>} */ (v);
  if (typeof r.room !== 'string') return null;
  return {
    room: r.room,
    members: typeof r.members === 'number' ? r.members : 0,
    topic: typeof r.topic === 'string' ? r.topic : '',
    language: typeof r.language === 'string' ? r.language : '',
  };
}

/**
 * Shows the open rooms on the start page, asked for again every few seconds, and filtered
 * by the language typed in its filter.
 * @param {(room: string) => string} href the address that joins a room
 */
export function mountList(href) {
  const filter = ui.$as('public-language', HTMLInputElement);
  const list = ui.$('public-list');
  let asked = 0;
  /** @type {PublicRoom[]} */
  let rooms = [];

  const render = () => {
    list.replaceChildren();
    for (const r of rooms) {
      const li = document.createElement('li');
      li.className = 'public-room';
      li.dataset.room = r.room;
      const a = document.createElement('a');
      a.href = href(r.room);
      a.className = 'public-name';
      a.textContent = r.room;
      li.append(a);
      if (r.language) {
        const lang = document.createElement('span');
        lang.className = 'public-lang';
        lang.textContent = r.language;
        li.append(lang);
      }
      const count = document.createElement('span');
      count.className = 'public-count';
      i18n.setText(count, 'pub.members', { n: r.members });
      li.append(count);
      if (r.topic) {
        const topic = document.createElement('span');
        topic.className = 'public-topic';
        topic.textContent = r.topic;
        li.append(topic);
      }
      list.append(li);
    }
    ui.$('public-none').hidden = rooms.length > 0;
  };

  const refresh = async () => {
    const n = ++asked;
    const language = filter.value.trim();
    const query = language ? `?language=${encodeURIComponent(language)}` : '';
    try {
      const res = await fetch(`/api/rooms${query}`, { cache: 'no-store' });
      const body = res.ok ? await res.json() : { rooms: [] };
      // An older answer that arrives late does not replace a newer one.
      if (n !== asked) return;
      /** @type {unknown[]} */
      const got = Array.isArray(body.rooms) ? body.rooms : [];
      rooms = got.map(roomFrom).filter((r) => r !== null);
      render();
    } catch {
      // The next round tries again.
    }
  };

  filter.addEventListener('input', refresh);
  i18n.onLanguageChange(render);
  refresh();
  setInterval(refresh, POLL_MS);
}
