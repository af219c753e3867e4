// @ts-check
// Everything that touches the page. User-supplied strings (nicknames, chat text, room names)
// only ever reach the DOM through textContent or attribute setters, never as markup.

import { avatarSvg, nameHue } from './avatar.js';
import { icon } from './icons.js';
import { getLanguage, setAttr, setText, t } from './i18n.js';

/** @typedef {import('./i18n.js').Args} Args */
/** @typedef {import('./state.js').Member} Member */
/** @typedef {import('./devices.js').Device} Device */

/**
 * The element with this id, which must exist.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/**
 * The element with this id, which must exist and be a `type` (an input, a button, …).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T, name: string}} type
 * @returns {T}
 */
export function $as(id, type) {
  const el = $(id);
  if (!(el instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return el;
}

/**
 * The first element under `root` that `selector` finds, if it is an HTML element.
 * @param {ParentNode} root
 * @param {string} selector
 * @returns {HTMLElement | null}
 */
export function find(root, selector) {
  const found = root.querySelector(selector);
  return found instanceof HTMLElement ? found : null;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * An element showing a translated string.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} className
 * @param {string} key
 * @param {Args} [args]
 */
export function tel(tag, className, key, args) {
  return setText(el(tag, className), key, args);
}

// ---------------------------------------------------------------------------------------------
// Views and status

const VIEWS = ['home', 'ask-name', 'fatal', 'not-found', 'room'];

/** @param {'home' | 'ask-name' | 'fatal' | 'not-found' | 'room'} name */
export function showView(name) {
  for (const v of VIEWS) $(v).hidden = v !== name;
  document.body.dataset.view = name;
}

/**
 * A problem that keeps us out of the room: `key`/`args`, and optionally a second paragraph.
 * @param {string} key
 * @param {Args} args
 * @param {string} [detailKey]
 */
export function showFatal(key, args, detailKey) {
  setText($('fatal-text'), key, args);
  const detail = $('fatal-detail');
  if (detailKey) setText(detail, detailKey);
  detail.hidden = !detailKey;
  showView('fatal');
}

/** @type {string | null} */
let titleRoom = null;
let titleUnread = 0;

/**
 * The document title: the room (if any) and the number of unread chat messages.
 * @param {{room?: string | null, unread?: number}} [what]
 */
export function updateTitle({ room = titleRoom, unread = titleUnread } = {}) {
  titleRoom = room;
  titleUnread = unread;
  const base = room ? t('title.room', { room }) : t('title.home');
  document.title = unread > 0 ? `(${unread}) ${base}` : base;
}

/** @param {string | null} room */
export function setRoomTitle(room) {
  const title = $('room-title');
  title.textContent = room ? `# ${room}` : '';
  title.hidden = !room;
  if (room) setText($('room-heading'), 'room.heading', { room });
  updateTitle({ room });
}

/** @type {Record<string, string>} */
const STATE_KEYS = {
  connecting: 'conn.connecting',
  joined: 'conn.joined',
  reconnecting: 'conn.reconnecting',
  disconnected: 'conn.disconnected',
};

/**
 * Shows the connection state; `detailKey` adds a short note (e.g. the audio state).
 * @param {string} state
 * @param {string | null} [detailKey]
 */
export function setConnection(state, detailKey = null) {
  document.body.dataset.state = state;
  const conn = $('conn');
  conn.hidden = !(state in STATE_KEYS);
  conn.dataset.state = state;
  if (STATE_KEYS[state]) setText($('conn-text'), STATE_KEYS[state]);
  const detail = $('conn-detail');
  if (detailKey) setText(detail, detailKey);
  detail.hidden = !detailKey;
}

/**
 * @typedef {object} NoticeMessage
 * @property {string} key
 * @property {Args} [args]
 * @property {{key: string, args?: Args}} [lead] a first sentence
 * @property {string} [id] the id of the text's element
 * @property {boolean} [ticking] the text is updated often (see updateNoticeText)
 */

/**
 * @typedef {object} NoticeAction
 * @property {string} key
 * @property {Args} [args]
 * @property {() => void} onClick
 * @property {string} [id]
 * @property {boolean} [primary]
 */

/**
 * A persistent message in the room: `id` is the notice element, `message` what it says, or
 * null to hide it, `actions` its buttons.
 * @param {string} id
 * @param {NoticeMessage | null} message
 * @param {NoticeAction[]} [actions]
 */
export function setNotice(id, message, actions = []) {
  const n = $(id);
  n.replaceChildren();
  if (!message) {
    n.hidden = true;
    return;
  }
  const texts = el('span', 'notice-texts');
  if (message.lead) texts.appendChild(tel('span', 'notice-lead', message.lead.key, message.lead.args));
  const text = tel('span', 'notice-text', message.key, message.args);
  if (message.id) text.id = message.id;
  // A text that keeps changing (a countdown) is announced when the notice appears, not per tick.
  if (message.ticking) text.setAttribute('aria-live', 'off');
  texts.appendChild(text);
  n.appendChild(texts);
  for (const action of actions) {
    const b = tel('button', 'notice-action', action.key, action.args);
    b.type = 'button';
    if (action.id) b.id = action.id;
    if (action.primary) b.classList.add('primary-lite');
    b.addEventListener('click', action.onClick);
    n.appendChild(b);
  }
  n.hidden = false;
}

/**
 * Updates the text of a shown notice without rebuilding it (keeps focus on its buttons).
 * @param {string} id
 * @param {string} key
 * @param {Args} args
 */
export function updateNoticeText(id, key, args) {
  const text = find($(id), '.notice-text');
  if (text) setText(text, key, args);
}

/**
 * A short-lived message in the corner.
 * @param {string} key
 * @param {Args} args
 * @param {'info' | 'error'} [kind]
 */
export function toast(key, args, kind = 'info', ms = 6000) {
  const box = $('toasts');
  const item = tel('div', `toast toast-${kind}`, key, args);
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.appendChild(item);
  while (box.children.length > 4 && box.firstElementChild) box.firstElementChild.remove();
  setTimeout(() => item.remove(), ms);
  return item;
}

/**
 * Shows (or with a null key, clears) the error under a form field.
 * @param {string} id
 * @param {string | null} key
 * @param {Args} [args]
 */
export function setFieldError(id, key, args) {
  const p = $(id);
  if (key) setText(p, key, args);
  else {
    delete p.dataset.i18n;
    p.textContent = '';
  }
  p.hidden = !key;
  const input = document.querySelector(`[aria-describedby~="${id}"]`);
  if (input) input.setAttribute('aria-invalid', key ? 'true' : 'false');
}

// ---------------------------------------------------------------------------------------------
// Language picker

/**
 * @param {{code: string, name: string}[]} languages
 * @param {string} current
 * @param {(code: string) => void} onChange
 */
export function fillLanguages(languages, current, onChange) {
  const select = $as('lang-select', HTMLSelectElement);
  select.replaceChildren();
  for (const { code, name } of languages) {
    const opt = el('option', '', name);
    opt.value = code;
    opt.lang = code;
    select.appendChild(opt);
  }
  select.value = current;
  select.addEventListener('change', () => onChange(select.value));
}

// ---------------------------------------------------------------------------------------------
// Home: recent rooms

/** @param {number} at */
function relativeTime(at) {
  const diff = Date.now() - at;
  const lang = getLanguage();
  let rtf;
  try {
    rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  } catch {
    return '';
  }
  const minutes = Math.round(diff / 60_000);
  if (minutes < 60) return rtf.format(-Math.max(0, minutes), 'minute');
  const hours = Math.round(minutes / 60);
  if (hours < 24) return rtf.format(-hours, 'hour');
  return rtf.format(-Math.round(hours / 24), 'day');
}

/** @typedef {import('./prefs.js').RecentRoom} RecentRoom */

/**
 * The list of recent rooms, each with a link to rejoin and a forget button.
 * @param {RecentRoom[]} items
 * @param {{href: (item: RecentRoom) => string, onForget: (item: RecentRoom, li: HTMLElement) => void}} actions
 */
export function renderRecent(items, { href, onForget }) {
  const card = $('recent');
  const list = $('recent-list');
  list.replaceChildren();
  card.hidden = items.length === 0;
  for (const item of items) {
    const li = el('li', 'recent-item');
    li.dataset.room = item.room;
    const link = el('a', 'recent-link');
    link.href = href(item);
    link.appendChild(el('span', 'recent-room', `# ${item.room}`));
    const sub = el('span', 'recent-sub');
    sub.appendChild(tel('span', 'recent-as', 'recent.as', { name: item.name }));
    if (item.at) {
      const when = el('time', 'recent-when', relativeTime(item.at));
      when.dateTime = new Date(item.at).toISOString();
      when.dataset.at = String(item.at);
      sub.append(' · ', when);
    }
    link.appendChild(sub);
    setAttr(link, 'title', 'recent.rejoin', { room: item.room, name: item.name });
    const forget = el('button', 'icon-btn recent-forget');
    forget.type = 'button';
    setAttr(forget, 'aria-label', 'recent.forget', { room: item.room });
    setAttr(forget, 'title', 'recent.forget', { room: item.room });
    forget.appendChild(icon('close'));
    forget.addEventListener('click', () => onForget(item, li));
    li.append(link, forget);
    list.appendChild(li);
  }
}

/** Re-words relative times after a language switch. */
export function refreshRecentTimes() {
  for (const time of document.querySelectorAll('#recent-list time[data-at]')) {
    if (!(time instanceof HTMLTimeElement)) continue;
    time.textContent = relativeTime(Number(time.dataset.at));
  }
}

// ---------------------------------------------------------------------------------------------
// Members

/** @typedef {{onToggleLocalMute: (id: string) => void, onRename: () => void}} MemberHandlers */

/** @type {MemberHandlers} */
let memberHandlers = { onToggleLocalMute: () => {}, onRename: () => {} };

/**
 * Callbacks for the per-member buttons.
 * @param {Partial<MemberHandlers>} handlers
 */
export function setMemberHandlers(handlers) {
  memberHandlers = { ...memberHandlers, ...handlers };
}

/** @param {string} id */
function memberSelector(id) {
  return `#members .member[data-member-id="${CSS.escape(id)}"]`;
}

/**
 * The level bar of member `id`, for the audio visualiser.
 * @param {string} id
 */
export function levelBar(id) {
  return find(document, `${memberSelector(id)} .level-fill`);
}

/**
 * @typedef {object} MemberView
 * @property {Set<string>} [locallyMuted] the ids muted for us only
 * @property {boolean} [allMuted] everyone is muted for us
 * @property {(id: string) => boolean} [speaking] whether a member is shown speaking (else
 *   their `speaking` flag)
 */

/**
 * Renders the member list: the members `shown` (ids, in order) of `members`; `selfId` is ours.
 * Items are kept per id and updated in place, so frequent speaking changes stay cheap, and
 * only the members shown have an item at all, however many are in the room.
 * @param {string[]} shown
 * @param {Map<string, Member>} members
 * @param {string | null} selfId
 * @param {MemberView} [view]
 */
export function renderMembers(shown, members, selfId, { locallyMuted = new Set(), allMuted = false, speaking } = {}) {
  const list = $('members');
  const wanted = new Set(shown);
  /** @type {Map<string, HTMLElement>} */
  const existing = new Map();
  for (const li of [...list.children]) {
    if (!(li instanceof HTMLElement) || !li.dataset.memberId) continue;
    if (wanted.has(li.dataset.memberId) && members.has(li.dataset.memberId)) existing.set(li.dataset.memberId, li);
    else li.remove();
  }

  /** @type {HTMLElement | null} */
  let prev = null;
  for (const id of shown) {
    const m = members.get(id);
    if (!m) continue;
    let li = existing.get(id);
    if (!li) li = memberItem(id);
    const talking = speaking ? speaking(id) : m.speaking;
    updateMemberItem(li, m, id === selfId, locallyMuted.has(id), allMuted, talking);
    /** @type {Element | null} */
    const want = prev ? prev.nextElementSibling : list.firstElementChild;
    if (want !== li) list.insertBefore(li, want);
    prev = li;
  }
}

/**
 * The member list's count, and what is said about those it does not show.
 * @param {{total: number, hidden: number, searchable: boolean, noMatch: boolean}} view
 *   `total`: everyone in the room; `hidden`: members that match but are not shown yet;
 *   `searchable`: the room is large enough for the search field; `noMatch`: a search found
 *   nobody.
 */
export function setMemberPaging({ total, hidden, searchable, noMatch }) {
  $('member-count').textContent = `(${total})`;
  const more = $('members-more');
  if (hidden > 0) setText($('members-more-label'), 'people.more', { n: hidden });
  more.hidden = hidden === 0;
  $('members-search-row').hidden = !searchable;
  $('members-none').hidden = !noMatch;
}

/** The words for each connection quality. */
const QUALITY_KEYS = {
  good: 'member.qualityGood',
  fair: 'member.qualityFair',
  poor: 'member.qualityPoor',
  unconnected: 'member.qualityUnconnected',
};

/** @param {string} id */
function memberItem(id) {
  const li = el('li', 'member');
  li.dataset.memberId = id;
  const avatar = el('span', 'avatar');
  avatar.setAttribute('aria-hidden', 'true');

  const who = el('div', 'who');
  const nameLine = el('div', 'name-line');
  const name = el('span', 'name');
  name.addEventListener('click', () => {
    if (li.classList.contains('self')) memberHandlers.onRename();
  });
  nameLine.append(name, tel('span', 'you', 'member.you'));
  const status = el('div', 'status-line');
  const mic = el('span', 'mic-off');
  setAttr(mic, 'title', 'member.micOff');
  mic.appendChild(icon('micOff'));
  mic.appendChild(tel('span', 'visually-hidden', 'member.mutedSr'));
  const heard = el('span', 'heard-off');
  setAttr(heard, 'title', 'member.mutedForMe');
  heard.appendChild(icon('speakerOff'));
  heard.appendChild(tel('span', 'visually-hidden', 'member.mutedForMeSr'));
  const level = el('span', 'level');
  level.setAttribute('aria-hidden', 'true');
  level.appendChild(el('span', 'level-fill'));
  const speaking = tel('span', 'visually-hidden speaking-sr', 'member.speakingSr');
  // The connection as the server sees it: three bars, and words when audio never connected.
  const quality = el('span', 'quality');
  quality.hidden = true;
  const bars = el('span', 'quality-bars');
  bars.setAttribute('aria-hidden', 'true');
  bars.append(el('span', 'bar'), el('span', 'bar'), el('span', 'bar'));
  quality.append(bars, el('span', 'quality-text'));
  status.append(mic, heard, level, quality, speaking);
  who.append(nameLine, status);

  const mute = el('button', 'icon-btn member-mute');
  mute.type = 'button';
  mute.setAttribute('aria-pressed', 'false');
  mute.append(icon('speaker'), icon('speakerOff'));
  mute.addEventListener('click', () => memberHandlers.onToggleLocalMute(li.dataset.memberId ?? id));

  const rename = el('button', 'icon-btn member-rename');
  rename.type = 'button';
  setAttr(rename, 'aria-label', 'member.rename');
  setAttr(rename, 'title', 'member.rename');
  rename.appendChild(icon('pencil'));
  rename.addEventListener('click', () => memberHandlers.onRename());

  li.append(avatar, who, mute, rename);
  return li;
}

/**
 * The part of `li` found by `selector`, which memberItem made.
 * @param {HTMLElement} li
 * @param {string} selector
 */
function part(li, selector) {
  const found = find(li, selector);
  if (!found) throw new Error(`a member item without ${selector}`);
  return found;
}

/**
 * @param {HTMLElement} li
 * @param {Member} m
 * @param {boolean} isSelf
 * @param {boolean} mutedForMe
 * @param {boolean} allMuted
 * @param {boolean} speaking
 */
function updateMemberItem(li, m, isSelf, mutedForMe, allMuted, speaking) {
  const name = part(li, '.name');
  if (name.textContent !== m.name) {
    name.textContent = m.name;
    // A long name is cut on screen; pointing at it shows it whole.
    name.title = m.name;
  }
  const avatar = part(li, '.avatar');
  // Who they are: their tag, which stays when they come back, else this connection's id.
  const who = m.tag ?? m.id;
  if (avatar.dataset.name !== m.name || avatar.dataset.who !== who) {
    avatar.dataset.name = m.name;
    avatar.dataset.who = who;
    avatar.replaceChildren(avatarSvg(m.name, who));
    li.style.setProperty('--hue', String(nameHue(m.name, who)));
  }
  part(li, '.you').hidden = !isSelf;
  part(li, '.mic-off').hidden = !m.muted;
  part(li, '.heard-off').hidden = isSelf || !(mutedForMe || allMuted);
  part(li, '.speaking-sr').hidden = !speaking;
  const quality = part(li, '.quality');
  if (li.dataset.quality !== (m.quality ?? '')) {
    quality.hidden = !m.quality;
    if (m.quality) {
      const key = QUALITY_KEYS[m.quality];
      setAttr(quality, 'title', key);
      setText(part(li, '.quality-text'), key);
    }
    li.dataset.quality = m.quality ?? '';
  }
  const mute = part(li, '.member-mute');
  mute.hidden = isSelf;
  if (!isSelf) {
    mute.setAttribute('aria-pressed', String(mutedForMe));
    setAttr(mute, 'aria-label', 'member.muteForMe', { name: m.name });
    setAttr(mute, 'title', 'member.muteForMe', { name: m.name });
  }
  part(li, '.member-rename').hidden = !isSelf;
  li.classList.toggle('self', isSelf);
  li.dataset.muted = String(!!m.muted);
  li.dataset.speaking = String(speaking);
  li.dataset.mutedForMe = String(!!mutedForMe);
}

/**
 * Own microphone button: "Mute" / "Unmute", or "No microphone" when there is none.
 * @param {{muted: boolean, enabled: boolean, noMic?: boolean}} state
 */
export function setMuteButton({ muted, enabled, noMic = false }) {
  const b = $as('mute-btn', HTMLButtonElement);
  b.disabled = !enabled;
  b.classList.toggle('active', !!muted && !noMic);
  setText($('mute-label'), noMic ? 'ctl.noMic' : muted ? 'ctl.unmute' : 'ctl.mute');
  const slot = b.querySelector('.icon');
  const want = muted || noMic ? 'micOff' : 'mic';
  if (!slot || !slot.classList.contains(`icon-${want}`)) {
    const next = icon(want);
    if (slot) slot.replaceWith(next);
    else b.prepend(next);
  }
}

/** @param {boolean} on */
export function setDeafenButton(on) {
  const b = $('deafen-btn');
  b.setAttribute('aria-pressed', String(!!on));
  b.classList.toggle('active', !!on);
}

// ---------------------------------------------------------------------------------------------
// Devices

/**
 * Fills a device <select>: `selected` a deviceId, `unnamedKey` the message for devices without
 * a label ("Microphone 2").
 * @param {string} id
 * @param {Device[]} devices
 * @param {string | null} selected
 * @param {string} unnamedKey
 */
export function fillDeviceSelect(id, devices, selected, unnamedKey) {
  const select = $as(id, HTMLSelectElement);
  select.replaceChildren();
  if (devices.length === 0) {
    const opt = tel('option', '', 'dev.none');
    opt.value = '';
    select.appendChild(opt);
    select.disabled = true;
    return;
  }
  select.disabled = false;
  devices.forEach((d, i) => {
    const opt = d.label
      ? el('option', '', d.label)
      : d.deviceId === 'default'
        ? tel('option', '', 'dev.default')
        : tel('option', '', unnamedKey, { n: i + 1 });
    opt.value = d.deviceId;
    select.appendChild(opt);
  });
  if (selected && devices.some((d) => d.deviceId === selected)) select.value = selected;
}

// ---------------------------------------------------------------------------------------------
// Remote audio: one <audio> element per audio stream we receive (a track of a member's own, or
// an audio slot), keyed by the stream's key.

/** @param {string} key */
function audioFor(key) {
  const found = $('remote-audio').querySelector(`audio[data-track-key="${CSS.escape(key)}"]`);
  return found instanceof HTMLAudioElement ? found : null;
}

/** Every remote audio element. */
function allAudio() {
  return [...$('remote-audio').querySelectorAll('audio')];
}

/**
 * Plays a received audio track through an <audio> element of its own: `key` is the stream's,
 * `memberId` the member heard on it (its publisher, or whom a slot carries now; null: nobody).
 * Besides making it heard, this is what lets the track feed Web Audio in Chromium. `muted`:
 * silenced for us only; `sinkId`: the output device, for a new element. `onBlocked` is called
 * if the browser refuses to start playback without a click. Playback starts when the element
 * is given a stream, not on every call.
 * @param {string} key
 * @param {string | null} memberId
 * @param {MediaStream} stream
 * @param {{muted?: boolean, sinkId?: string | null, onBlocked?: () => void}} [options]
 */
export function playRemoteAudio(key, memberId, stream, { muted = false, sinkId = null, onBlocked } = {}) {
  let audio = audioFor(key);
  if (!audio) {
    audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.trackKey = key;
    $('remote-audio').appendChild(audio);
    if (sinkId && typeof audio.setSinkId === 'function') audio.setSinkId(sinkId).catch(() => {});
  }
  if (memberId === null) delete audio.dataset.memberId;
  else if (audio.dataset.memberId !== memberId) audio.dataset.memberId = memberId;
  if (audio.muted !== muted) audio.muted = muted;
  if (audio.srcObject === stream) return audio;
  audio.srcObject = stream;
  audio.play().catch((err) => {
    if (err && err.name === 'NotAllowedError' && onBlocked) onBlocked();
  });
  return audio;
}

/**
 * Stops and removes the audio elements of every track but those in `keep`.
 * @param {Set<string>} keep
 */
export function removeRemoteAudioExcept(keep) {
  for (const audio of allAudio()) {
    if (keep.has(audio.dataset.trackKey ?? '')) continue;
    audio.srcObject = null;
    audio.remove();
  }
}

/**
 * Sends every remote audio element to output device `sinkId`.
 * @param {string} sinkId
 */
export async function setRemoteSink(sinkId) {
  await Promise.all(allAudio().map((a) => (typeof a.setSinkId === 'function' ? a.setSinkId(sinkId) : null)));
}

/** Starts every remote audio element again (after a click, when autoplay was refused). */
export function resumeRemoteAudio() {
  return Promise.allSettled(allAudio().map((a) => a.play()));
}
