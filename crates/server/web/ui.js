// Everything that touches the page. User-supplied strings (nicknames, chat text, room names)
// only ever reach the DOM through textContent or attribute setters, never as markup.

import { avatarSvg, nameHue } from '/avatar.js';
import { icon } from '/icons.js';
import { getLanguage, setAttr, setText, t } from '/i18n.js';

export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An element showing a translated string. */
function tel(tag, className, key, args) {
  return setText(el(tag, className), key, args);
}

// ---------------------------------------------------------------------------------------------
// Views and status

const VIEWS = ['home', 'ask-name', 'fatal', 'room'];

export function showView(name) {
  for (const v of VIEWS) $(v).hidden = v !== name;
  document.body.dataset.view = name;
}

/** A problem that keeps us out of the room: `key`/`args`, and optionally a second paragraph. */
export function showFatal(key, args, detailKey) {
  setText($('fatal-text'), key, args);
  const detail = $('fatal-detail');
  if (detailKey) setText(detail, detailKey);
  detail.hidden = !detailKey;
  showView('fatal');
}

let titleRoom = null;
let titleUnread = 0;

/** The document title: the room (if any) and the number of unread chat messages. */
export function updateTitle({ room = titleRoom, unread = titleUnread } = {}) {
  titleRoom = room;
  titleUnread = unread;
  const base = room ? t('title.room', { room }) : t('title.home');
  document.title = unread > 0 ? `(${unread}) ${base}` : base;
}

export function setRoomTitle(room) {
  const title = $('room-title');
  title.textContent = room ? `# ${room}` : '';
  title.hidden = !room;
  if (room) setText($('room-heading'), 'room.heading', { room });
  updateTitle({ room });
}

const STATE_KEYS = {
  connecting: 'conn.connecting',
  joined: 'conn.joined',
  reconnecting: 'conn.reconnecting',
  disconnected: 'conn.disconnected',
};

/** Shows the connection state; `detailKey` adds a short note (e.g. the audio state). */
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
 * A persistent message in the room: `id` is the notice element, `message` {key, args, lead?, id?,
 * ticking?} or null to hide it (`lead`: a first sentence, {key, args}; `ticking`: the text is
 * updated often, see updateNoticeText), `actions` a list of
 * {key, onClick, id?, primary?}.
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

/** Updates the text of a shown notice without rebuilding it (keeps focus on its buttons). */
export function updateNoticeText(id, key, args) {
  const text = $(id).querySelector('.notice-text');
  if (text) setText(text, key, args);
}

/** A short-lived message in the corner. */
export function toast(key, args, kind = 'info', ms = 6000) {
  const box = $('toasts');
  const item = tel('div', `toast toast-${kind}`, key, args);
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.appendChild(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), ms);
  return item;
}

/** Shows (or with a null key, clears) the error under a form field. */
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

export function fillLanguages(languages, current, onChange) {
  const select = $('lang-select');
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

/** The list of recent rooms: [{room, name, at}], each with a link to rejoin and a forget button. */
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
    time.textContent = relativeTime(Number(time.dataset.at));
  }
}

// ---------------------------------------------------------------------------------------------
// Members

let memberHandlers = { onToggleLocalMute: () => {}, onRename: () => {} };

/** Callbacks for the per-member buttons: onToggleLocalMute(id), onRename(). */
export function setMemberHandlers(handlers) {
  memberHandlers = { ...memberHandlers, ...handlers };
}

function memberSelector(id) {
  return `#members .member[data-member-id="${CSS.escape(id)}"]`;
}

/** The level bar of member `id`, for the audio visualiser. */
export function levelBar(id) {
  return document.querySelector(`${memberSelector(id)} .level-fill`);
}

/**
 * Renders the member list: `members` is a Map id → {name, muted, speaking}; `selfId` is ours;
 * `locallyMuted` the ids muted for us only. Items are kept per id and updated in place, so
 * frequent speaking changes stay cheap.
 */
export function renderMembers(members, selfId, { locallyMuted = new Set(), allMuted = false } = {}) {
  const list = $('members');
  const order = [...members.keys()];
  if (selfId !== null && members.has(selfId)) {
    order.splice(order.indexOf(selfId), 1);
    order.unshift(selfId);
  }
  const existing = new Map();
  for (const li of list.children) existing.set(li.dataset.memberId, li);
  for (const [id, li] of existing) if (!members.has(id)) li.remove();

  let prev = null;
  for (const id of order) {
    const m = members.get(id);
    let li = existing.get(id);
    if (!li) li = memberItem(id);
    updateMemberItem(li, m, id === selfId, locallyMuted.has(id), allMuted);
    const want = prev ? prev.nextElementSibling : list.firstElementChild;
    if (want !== li) list.insertBefore(li, want);
    prev = li;
  }
  $('member-count').textContent = `(${members.size})`;
}

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
  status.append(mic, heard, level, speaking);
  who.append(nameLine, status);

  const mute = el('button', 'icon-btn member-mute');
  mute.type = 'button';
  mute.setAttribute('aria-pressed', 'false');
  mute.append(icon('speaker'), icon('speakerOff'));
  mute.addEventListener('click', () => memberHandlers.onToggleLocalMute(li.dataset.memberId));

  const rename = el('button', 'icon-btn member-rename');
  rename.type = 'button';
  setAttr(rename, 'aria-label', 'member.rename');
  setAttr(rename, 'title', 'member.rename');
  rename.appendChild(icon('pencil'));
  rename.addEventListener('click', () => memberHandlers.onRename());

  li.append(avatar, who, mute, rename);
  return li;
}

function updateMemberItem(li, m, isSelf, mutedForMe, allMuted) {
  const name = li.querySelector('.name');
  if (name.textContent !== m.name) name.textContent = m.name;
  const avatar = li.querySelector('.avatar');
  if (avatar.dataset.name !== m.name) {
    avatar.dataset.name = m.name;
    avatar.replaceChildren(avatarSvg(m.name));
    li.style.setProperty('--hue', String(nameHue(m.name)));
  }
  li.querySelector('.you').hidden = !isSelf;
  li.querySelector('.mic-off').hidden = !m.muted;
  li.querySelector('.heard-off').hidden = isSelf || !(mutedForMe || allMuted);
  li.querySelector('.speaking-sr').hidden = !m.speaking;
  const mute = li.querySelector('.member-mute');
  mute.hidden = isSelf;
  if (!isSelf) {
    mute.setAttribute('aria-pressed', String(mutedForMe));
    setAttr(mute, 'aria-label', 'member.muteForMe', { name: m.name });
    setAttr(mute, 'title', 'member.muteForMe', { name: m.name });
  }
  li.querySelector('.member-rename').hidden = !isSelf;
  li.classList.toggle('self', isSelf);
  li.dataset.muted = String(!!m.muted);
  li.dataset.speaking = String(!!m.speaking);
  li.dataset.mutedForMe = String(!!mutedForMe);
}

/** Own microphone button: "Mute" / "Unmute", or "No microphone" when there is none. */
export function setMuteButton({ muted, enabled, noMic = false }) {
  const b = $('mute-btn');
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

export function setDeafenButton(on) {
  const b = $('deafen-btn');
  b.setAttribute('aria-pressed', String(!!on));
  b.classList.toggle('active', !!on);
}

// ---------------------------------------------------------------------------------------------
// Chat

function formatTime(d) {
  const lang = getLanguage();
  const sameDay = new Date().toDateString() === d.toDateString();
  const opts = sameDay
    ? { hour: '2-digit', minute: '2-digit' }
    : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  try {
    return d.toLocaleString(lang, opts);
  } catch {
    return d.toLocaleString(undefined, opts);
  }
}

function atBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

// An address runs until white space, quotes, angle brackets, or characters that in practice
// follow a link without a space (CJK text and punctuation, emoji).
const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u2000-\u206f\u2e80-\uffff\u{1f000}-\u{1faff}]+/giu;
const CLOSERS = { ')': '(', ']': '[', '}': '{' };

function count(s, ch) {
  return s.split(ch).length - 1;
}

/** Cuts punctuation that ends a sentence off a link; keeps closing brackets opened inside it. */
function trimLink(candidate) {
  let url = candidate;
  while (url.length > 0) {
    const last = url[url.length - 1];
    if (CLOSERS[last]) {
      if (count(url, last) > count(url, CLOSERS[last])) {
        url = url.slice(0, -1);
        continue;
      }
      return url;
    }
    if (!'.,;:!?*'.includes(last)) return url;
    url = url.slice(0, -1);
  }
  return url;
}

/**
 * Chat text as DOM nodes: plain text, with http(s) addresses as links that open in a new tab
 * and tell the target nothing about us. Built with DOM calls only; nothing is parsed as markup.
 */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const raw = trimLink(match[0]);
    let url;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    if (match.index > last) frag.appendChild(document.createTextNode(text.slice(last, match.index)));
    const a = el('a', 'chat-link', raw);
    a.href = url.href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.referrerPolicy = 'no-referrer';
    frag.appendChild(a);
    last = match.index + raw.length;
  }
  if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
  return frag;
}

/** Adds one chat message ({seq, from, name, text, ts}). */
export function appendChat(message, isMine) {
  const log = $('chat-log');
  const stick = atBottom(log) || isMine;
  const li = el('li', isMine ? 'chat-msg mine' : 'chat-msg');
  li.dataset.seq = String(message.seq);
  li.dataset.from = String(message.from);
  const name = String(message.name);
  li.style.setProperty('--hue', String(nameHue(name)));
  const avatar = el('span', 'avatar avatar-small');
  avatar.setAttribute('aria-hidden', 'true');
  avatar.appendChild(avatarSvg(name));
  const body = el('div', 'chat-body-text');
  const meta = el('div', 'meta');
  meta.appendChild(el('span', 'chat-name', name));
  const d = new Date(Number(message.ts));
  if (!Number.isNaN(d.getTime())) {
    const time = el('time', 'chat-time', formatTime(d));
    time.dateTime = d.toISOString();
    meta.appendChild(time);
  }
  const text = el('div', 'chat-text');
  text.appendChild(linkify(String(message.text)));
  body.append(meta, text);
  li.append(avatar, body);
  log.appendChild(li);
  if (stick) log.scrollTop = log.scrollHeight;
}

/** A line about the room itself ("Bob joined"), translated. */
export function appendSystemLine(key, args) {
  const log = $('chat-log');
  const stick = atBottom(log);
  log.appendChild(tel('li', 'chat-system', key, args));
  if (stick) log.scrollTop = log.scrollHeight;
}

/** Re-words every chat time after a language switch. */
export function refreshChatTimes() {
  for (const time of document.querySelectorAll('#chat-log time[datetime]')) {
    const d = new Date(time.dateTime);
    if (!Number.isNaN(d.getTime())) time.textContent = formatTime(d);
  }
}

export function setChatEnabled(enabled) {
  $('chat-input').disabled = !enabled;
  $('chat-send').disabled = !enabled;
}

/** Collapses or expands the chat (the toggle is shown on narrow screens). */
export function setChatCollapsed(collapsed) {
  $('chat-panel').classList.toggle('collapsed', collapsed);
  $('chat-toggle').setAttribute('aria-expanded', String(!collapsed));
}

export function setUnread(n) {
  const badge = $('chat-unread');
  badge.textContent = n > 99 ? '99+' : String(n);
  badge.hidden = n === 0;
  const sr = $('chat-unread-sr');
  if (n > 0) setText(sr, 'chat.unreadSr', { n });
  else {
    delete sr.dataset.i18n;
    sr.textContent = '';
  }
}

// ---------------------------------------------------------------------------------------------
// Devices

/**
 * Fills a device <select>: `devices` [{deviceId, label}], `selected` a deviceId, `unnamedKey`
 * the message for devices without a label ("Microphone 2").
 */
export function fillDeviceSelect(id, devices, selected, unnamedKey) {
  const select = $(id);
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
// Remote audio

function audioFor(id) {
  return $('remote-audio').querySelector(`audio[data-member-id="${CSS.escape(id)}"]`);
}

/**
 * Plays a member's stream through an <audio> element (one per stream). Besides making it heard,
 * this is what lets the stream feed Web Audio in Chromium. `muted`: silenced for us only;
 * `sinkId`: the output device. `onBlocked` is called if the browser refuses to start playback
 * without a click.
 */
export function attachRemoteAudio(id, stream, { muted = false, sinkId = null, onBlocked } = {}) {
  const box = $('remote-audio');
  let audio = audioFor(id);
  if (!audio) {
    audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.memberId = id;
    box.appendChild(audio);
  }
  audio.muted = muted;
  if (sinkId && typeof audio.setSinkId === 'function') audio.setSinkId(sinkId).catch(() => {});
  if (audio.srcObject !== stream) audio.srcObject = stream;
  const p = audio.play();
  if (p && typeof p.catch === 'function') {
    p.catch((err) => {
      if (err && err.name === 'NotAllowedError' && onBlocked) onBlocked();
    });
  }
  return audio;
}

export function detachRemoteAudio(id) {
  const audio = audioFor(id);
  if (audio) {
    audio.srcObject = null;
    audio.remove();
  }
}

/** Silences (or not) member `id`'s audio on this page only. */
export function setRemoteMuted(id, muted) {
  const audio = audioFor(id);
  if (audio) audio.muted = muted;
}

/** Sends every remote audio element to output device `sinkId`. */
export async function setRemoteSink(sinkId) {
  const all = [...$('remote-audio').querySelectorAll('audio')];
  await Promise.all(all.map((a) => (typeof a.setSinkId === 'function' ? a.setSinkId(sinkId) : null)));
}

/** Starts every remote audio element again (after a click, when autoplay was refused). */
export function resumeRemoteAudio() {
  const all = [...$('remote-audio').querySelectorAll('audio')];
  return Promise.allSettled(all.map((a) => a.play()));
}
