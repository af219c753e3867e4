// @ts-check
// The chat log on the page: each message's item (avatar, name, time, text with its links made
// clickable, and what chatextras.js adds), the lines about the room and naming each day,
// grouping a sender's consecutive messages, following the newest, and the unread badge. User
// text only ever reaches the page through textContent.

import { avatarSvg, nameHue } from './avatar.js';
import { dayKey, formatDay, formatTime } from './chattime.js';
import { setText } from './i18n.js';
import { $, $as, el, find, tel } from './ui.js';

/** @typedef {import('./i18n.js').Args} Args */
/** @typedef {import('./signal.js').ChatMessage} ChatMessage */

/** @param {HTMLElement} log */
function atBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

// An address runs until white space, quotes, angle brackets, or characters that in practice
// follow a link without a space (CJK text and punctuation, emoji).
const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u2000-\u206f\u2e80-\uffff\u{1f000}-\u{1faff}]+/giu;
/** @type {Record<string, string>} */
const CLOSERS = { ')': '(', ']': '[', '}': '{' };

/** @param {string} s @param {string} ch */
function count(s, ch) {
  return s.split(ch).length - 1;
}

/** Cuts punctuation that ends a sentence off a link; keeps closing brackets opened inside it. */
/** @param {string} candidate */
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
 * @param {string} text
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

/** How close in time one sender's messages must be to be shown as one group. */
const GROUP_MS = 120_000;

/**
 * What chatextras.js adds to a message's item (reply, reactions, actions), once it is built.
 * @type {(li: HTMLElement, message: ChatMessage, isMine: boolean) => void}
 */
let decorateChat = () => {};

/** @param {typeof decorateChat} fn */
export function setChatDecorator(fn) {
  decorateChat = fn;
}

/**
 * Draws message `message` again in its place (it was edited, deleted or reacted to).
 * @param {ChatMessage} message
 * @param {boolean} isMine
 */
export function replaceChat(message, isMine) {
  const old = find($('chat-log'), `li.chat-msg[data-seq="${Number(message.seq)}"][data-ts="${Number(message.ts)}"]`);
  if (!old) return;
  const li = chatItem(message, isMine);
  li.classList.toggle('grouped', old.classList.contains('grouped'));
  old.replaceWith(li);
}

/**
 * Adds one chat message.
 * @param {ChatMessage} message
 * @param {boolean} isMine
 */
export function appendChat(message, isMine) {
  const log = $('chat-log');
  const stick = atBottom(log) || isMine;
  const li = chatItem(message, isMine);
  const d = new Date(Number(message.ts));
  // A new day begins with a line that names it.
  if (!Number.isNaN(d.getTime()) && log.dataset.lastDay !== dayKey(d)) {
    log.dataset.lastDay = dayKey(d);
    const day = el('li', 'chat-day', formatDay(d));
    day.dataset.ts = String(d.getTime());
    log.appendChild(day);
  }
  // A message that follows one of the same sender's within two minutes joins it: no second
  // avatar, name and time on screen (screen readers still hear who and when).
  const prev = log.lastElementChild;
  if (
    prev instanceof HTMLElement &&
    prev.classList.contains('chat-msg') &&
    prev.dataset.who === li.dataset.who &&
    prev.querySelector('.chat-name')?.textContent === String(message.name) &&
    Number(message.ts) - Number(prev.dataset.ts) < GROUP_MS
  ) {
    li.classList.add('grouped');
  }
  log.appendChild(li);
  if (stick) log.scrollTop = log.scrollHeight;
  else $('chat-jump').hidden = false;
}

/**
 * One chat message's item.
 * @param {ChatMessage} message
 * @param {boolean} isMine
 */
function chatItem(message, isMine) {
  const li = el('li', isMine ? 'chat-msg mine' : 'chat-msg');
  li.dataset.seq = String(message.seq);
  li.dataset.from = String(message.from);
  const name = String(message.name);
  const from = typeof message.tag === 'string' && /^[0-9a-f]{32}$/.test(message.tag) ? message.tag : String(message.from);
  li.style.setProperty('--hue', String(nameHue(name, from)));
  li.dataset.who = from;
  li.dataset.ts = String(Number(message.ts));
  const d = new Date(Number(message.ts));
  const avatar = el('span', 'avatar avatar-small');
  avatar.setAttribute('aria-hidden', 'true');
  avatar.appendChild(avatarSvg(name, from));
  const body = el('div', 'chat-body-text');
  const meta = el('div', 'meta');
  const shownName = el('span', 'chat-name', name);
  shownName.title = name;
  meta.appendChild(shownName);
  if (!Number.isNaN(d.getTime())) {
    const time = el('time', 'chat-time', formatTime(d));
    time.dateTime = d.toISOString();
    meta.appendChild(time);
  }
  const text = el('div', 'chat-text');
  text.appendChild(linkify(String(message.text)));
  body.append(meta, text);
  li.append(avatar, body);
  decorateChat(li, message, isMine);
  return li;
}

/**
 * A line about the room itself ("Bob joined"), translated.
 * @param {string} key
 * @param {Args} [args]
 */
export function appendSystemLine(key, args) {
  const log = $('chat-log');
  const stick = atBottom(log);
  log.appendChild(tel('li', 'chat-system', key, args));
  if (stick) log.scrollTop = log.scrollHeight;
  else $('chat-jump').hidden = false;
}

/** Shows the newest chat line, and hides "Jump to the latest". */
export function scrollChatToLatest() {
  const log = $('chat-log');
  log.scrollTop = log.scrollHeight;
  $('chat-jump').hidden = true;
}

/** "Jump to the latest" goes once the log is scrolled down to the newest line by hand. */
export function chatScrolled() {
  if (atBottom($('chat-log'))) $('chat-jump').hidden = true;
}

/** Re-words every chat time and day after a language switch (or as days pass). */
export function refreshChatTimes() {
  for (const time of document.querySelectorAll('#chat-log time[datetime]')) {
    if (!(time instanceof HTMLTimeElement)) continue;
    const d = new Date(time.dateTime);
    if (!Number.isNaN(d.getTime())) time.textContent = formatTime(d);
  }
  for (const day of document.querySelectorAll('#chat-log .chat-day')) {
    if (day instanceof HTMLElement) day.textContent = formatDay(new Date(Number(day.dataset.ts)));
  }
}

/** @param {boolean} enabled */
export function setChatEnabled(enabled) {
  $as('chat-input', HTMLTextAreaElement).disabled = !enabled;
  $as('chat-send', HTMLButtonElement).disabled = !enabled;
}

/**
 * Collapses or expands the chat (the toggle is shown on narrow screens).
 * @param {boolean} collapsed
 */
export function setChatCollapsed(collapsed) {
  $('chat-panel').classList.toggle('collapsed', collapsed);
  $('chat-toggle').setAttribute('aria-expanded', String(!collapsed));
  // A folded log has no height, so it could not follow what arrived: it opens at the newest.
  if (!collapsed) scrollChatToLatest();
}

/** @param {number} n */
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
