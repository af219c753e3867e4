// @ts-check
// What the browser remembers between visits, in localStorage. Storage may be unavailable
// (private modes, blocked cookies); then nothing is remembered and nothing breaks.

const PREFIX = 'free4chat.';
export const RECENT_MAX = 8;

/** @param {string} key @returns {string | null} */
function get(key) {
  try {
    return localStorage.getItem(PREFIX + key);
  } catch {
    return null;
  }
}

/** @param {string} key @param {string | null | undefined} value */
function set(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, String(value));
  } catch {
    // Remembering is a convenience only.
  }
}

export const nickname = {
  get: () => get('nickname') ?? '',
  set: (/** @type {string} */ v) => set('nickname', v),
};

export const language = {
  get: () => get('lang'),
  set: (/** @type {string} */ v) => set('lang', v),
};

/** Preferred input and output devices (by deviceId). */
export const devices = {
  mic: () => get('mic'),
  setMic: (/** @type {string | null} */ id) => set('mic', id || null),
  speaker: () => get('speaker'),
  setSpeaker: (/** @type {string | null} */ id) => set('speaker', id || null),
};

/** Tips the person has dismissed, by name. */
export const dismissed = {
  has: (/** @type {string} */ tip) => get(`dismissed.${tip}`) === '1',
  add: (/** @type {string} */ tip) => set(`dismissed.${tip}`, '1'),
};

/** @typedef {{room: string, name: string, at: number}} RecentRoom */

/** Recent rooms, newest first (`at`: ms since the epoch). */
export const recent = {
  /** @returns {RecentRoom[]} */
  list() {
    /** @type {unknown} */
    let items;
    try {
      items = JSON.parse(get('recent') ?? '[]');
    } catch {
      return [];
    }
    if (!Array.isArray(items)) return [];
    return items
      .filter((r) => r && typeof r.room === 'string' && typeof r.name === 'string')
      .map((r) => ({ room: r.room, name: r.name, at: Number(r.at) || 0 }))
      .slice(0, RECENT_MAX);
  },
  /** @param {string} room @param {string} name */
  remember(room, name) {
    const rest = recent.list().filter((r) => r.room !== room);
    const items = [{ room, name, at: Date.now() }, ...rest].slice(0, RECENT_MAX);
    set('recent', JSON.stringify(items));
  },
  /** @param {string} room */
  forget(room) {
    set('recent', JSON.stringify(recent.list().filter((r) => r.room !== room)));
  },
};
