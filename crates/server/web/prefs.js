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

const KEY_RE = /^[A-Za-z0-9_-]{22,64}$/;
const TAG_RE = /^[0-9a-f]{32}$/;
/** @type {string | null} */
let key = null;

/**
 * The key this browser joins rooms with (`join`'s `key`): 128 random bits, made once and kept.
 * The server tells the others a tag made from it, by which they know us again on a new
 * connection; the key itself goes to nobody else. Without storage, one per page.
 */
export function clientKey() {
  if (key) return key;
  const stored = get('key');
  if (stored && KEY_RE.test(stored)) {
    key = stored;
    return key;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  key = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  set('key', key);
  return key;
}

/** How many rooms, and how many members in each, the "mute for me" list is kept for. */
export const MUTED_ROOMS = 16;
export const MUTED_TAGS = 256;

/** Members muted "for me", by their tag, per room (most recent room first). */
export const mutedTags = {
  /** @returns {{room: string, tags: string[]}[]} */
  all() {
    /** @type {unknown} */
    let items;
    try {
      items = JSON.parse(get('muted') ?? '[]');
    } catch {
      return [];
    }
    if (!Array.isArray(items)) return [];
    return items
      .filter((r) => r && typeof r.room === 'string' && Array.isArray(r.tags))
      .map((r) => ({ room: r.room, tags: r.tags.filter((/** @type {unknown} */ t) => typeof t === 'string' && TAG_RE.test(t)).slice(0, MUTED_TAGS) }))
      .slice(0, MUTED_ROOMS);
  },
  /** @param {string} room @returns {string[]} */
  get(room) {
    return mutedTags.all().find((r) => r.room === room)?.tags ?? [];
  },
  /** @param {string} room @param {string[]} tags */
  set(room, tags) {
    const rest = mutedTags.all().filter((r) => r.room !== room);
    const items = tags.length > 0 ? [{ room, tags: tags.slice(0, MUTED_TAGS) }, ...rest] : rest;
    set('muted', JSON.stringify(items.slice(0, MUTED_ROOMS)));
  },
};

/** How many members' volumes are kept (the most recently set first). */
export const VOLUMES_KEPT = 256;

/**
 * Each member's volume for us (0…1), by their tag: tags differ from room to room, so one list
 * serves every room. Members at full volume are not kept.
 */
export const volumes = {
  /** @returns {[string, number][]} */
  all() {
    /** @type {unknown} */
    let items;
    try {
      items = JSON.parse(get('volumes') ?? '[]');
    } catch {
      return [];
    }
    if (!Array.isArray(items)) return [];
    return items
      .filter((e) => Array.isArray(e) && typeof e[0] === 'string' && TAG_RE.test(e[0]) && Number.isFinite(e[1]))
      .map((e) => /** @type {[string, number]} */ ([e[0], Math.max(0, Math.min(1, e[1]))]))
      .slice(0, VOLUMES_KEPT);
  },
  /** @param {string} tag */
  get(tag) {
    return volumes.all().find((e) => e[0] === tag)?.[1] ?? 1;
  },
  /** @param {string} tag @param {number} volume */
  set(tag, volume) {
    const rest = volumes.all().filter((e) => e[0] !== tag);
    const items = volume < 1 ? [[tag, volume], ...rest] : rest;
    set('volumes', JSON.stringify(items.slice(0, VOLUMES_KEPT)));
  },
};

/** Audio processing the person chose for their microphone (true unless switched off). */
export const processing = {
  noiseSuppression: () => get('noiseSuppression') !== '0',
  echoCancellation: () => get('echoCancellation') !== '0',
  /** @param {'noiseSuppression' | 'echoCancellation'} what @param {boolean} on */
  set: (what, on) => set(what, on ? null : '0'),
};

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
