// @ts-check
// The chat beyond plain messages: what a message's item shows besides its text (the message it
// answers, "edited", "deleted", its reactions) and the buttons to reply, react, and, on our own
// messages, to edit or delete; and the draft those start (a reply, an edit) above the field.
// The server keeps the chat; this module only asks it for changes, which come back to every
// member as `chat_updated` (see docs/protocol.md).

import * as connection from './connection.js';
import * as i18n from './i18n.js';
import { store } from './state.js';
import * as chatlog from './chatlog.js';
import * as ui from './ui.js';

/** @typedef {import('./signal.js').ChatMessage} ChatMessage */

/** The reactions on offer, as the server takes them. */
export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];
/** How much of a message a reply quotes. */
const QUOTE_CHARS = 80;

/**
 * The draft in the chat field: a reply to a message, or an edit of one of ours.
 * @type {{kind: 'reply' | 'edit', seq: number, name: string} | null}
 */
let draft = null;

/** The draft, for sending. */
export function currentDraft() {
  return draft;
}

/** Whether we wrote `message`: our tag on it, or without one our member id. @param {ChatMessage} message */
function ours(message) {
  const state = store.getState();
  const myTag = state.selfId ? state.members.get(state.selfId)?.tag : null;
  if (typeof message.tag === 'string') return !!myTag && message.tag === myTag;
  return String(message.from) === state.selfId;
}

/** Whether a reactor is us. @param {{id: number, tag?: string}} who */
function isUs(who) {
  const state = store.getState();
  const myTag = state.selfId ? state.members.get(state.selfId)?.tag : null;
  if (typeof who.tag === 'string' || myTag) return !!myTag && who.tag === myTag;
  return String(who.id) === state.selfId;
}

/** The message `seq` of the log, if it is there. @param {number} seq */
function findMessage(seq) {
  for (const entry of store.getState().chat.log) {
    if (entry.type === 'message' && entry.message.seq === seq) return entry.message;
  }
  return null;
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function make(tag, className, text) {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * A small button with a translated label.
 * @param {string} key
 * @param {() => void} onClick
 * @param {import('./i18n.js').Args} [args]
 */
function button(key, onClick, args) {
  const b = /** @type {HTMLButtonElement} */ (make('button', 'chat-action'));
  b.type = 'button';
  i18n.setText(b, key, args);
  b.addEventListener('click', onClick);
  return b;
}

/**
 * Adds to a message's item what it shows beyond its text, and its buttons (ui.js calls this
 * for every item it builds).
 * @param {HTMLElement} li
 * @param {ChatMessage} message
 */
export function decorate(li, message) {
  const body = li.querySelector('.chat-body-text');
  const text = li.querySelector('.chat-text');
  if (!(body instanceof HTMLElement) || !(text instanceof HTMLElement)) return;
  if (message.deleted) {
    li.classList.add('deleted');
    text.replaceChildren();
    i18n.setText(text, 'chat.deleted');
  } else if (message.edited) {
    // After the text, not in the line of name and time, which a grouped message hides.
    const mark = make('span', 'chat-edited');
    i18n.setText(mark, 'chat.edited');
    text.append(' ', mark);
  }
  if (typeof message.reply_to === 'number') {
    const quoted = findMessage(message.reply_to);
    const quote = make('div', 'chat-quote');
    if (quoted) {
      quote.append(make('span', 'chat-quote-name', String(quoted.name)));
      const snippet = make('span', 'chat-quote-text');
      if (quoted.deleted) i18n.setText(snippet, 'chat.deleted');
      else {
        const chars = [...String(quoted.text)];
        snippet.textContent = chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS).join('')}…` : chars.join('');
      }
      quote.append(snippet);
    } else {
      i18n.setText(quote, 'chat.deleted');
    }
    body.insertBefore(quote, text);
  }
  if (message.deleted) return;

  const reactions = Array.isArray(message.reactions) ? message.reactions : [];
  if (reactions.length > 0) {
    const row = make('div', 'chat-reactions');
    for (const r of reactions) {
      if (!REACTIONS.includes(r.emoji) || !Array.isArray(r.by)) continue;
      const mine = r.by.some(isUs);
      const b = /** @type {HTMLButtonElement} */ (make('button', 'chat-reaction'));
      b.type = 'button';
      b.append(make('span', 'chat-reaction-emoji', r.emoji), make('span', 'chat-reaction-count', String(r.by.length)));
      b.setAttribute('aria-pressed', String(mine));
      i18n.setAttr(b, 'aria-label', 'chat.reactions', { emoji: r.emoji, n: r.by.length });
      b.addEventListener('click', () => react(message.seq, r.emoji, !mine));
      row.append(b);
    }
    body.append(row);
  }

  // The buttons show while the message is pointed at or has focus, or after a tap on it (a
  // phone has no pointing): the message itself takes focus, so the keyboard reaches them too.
  body.tabIndex = 0;
  body.addEventListener('click', (ev) => {
    if (ev.target instanceof Element && ev.target.closest('a, button')) return;
    li.classList.toggle('open');
  });
  const actions = make('div', 'chat-actions');
  const picker = make('div', 'chat-picker');
  picker.hidden = true;
  for (const emoji of REACTIONS) {
    const b = /** @type {HTMLButtonElement} */ (make('button', 'chat-pick', emoji));
    b.type = 'button';
    i18n.setAttr(b, 'aria-label', 'chat.reactWith', { emoji });
    b.addEventListener('click', () => {
      picker.hidden = true;
      const given = reactions.find((r) => r.emoji === emoji)?.by.some(isUs) ?? false;
      react(message.seq, emoji, !given);
    });
    picker.append(b);
  }
  const reply = button('chat.reply', () => startDraft('reply', message));
  i18n.setAttr(reply, 'aria-label', 'chat.replyTo', { name: String(message.name) });
  const reactBtn = button('chat.react', () => {
    picker.hidden = !picker.hidden;
    reactBtn.setAttribute('aria-expanded', String(!picker.hidden));
    if (!picker.hidden) /** @type {HTMLElement | null} */ (picker.firstElementChild)?.focus();
  });
  reactBtn.setAttribute('aria-expanded', 'false');
  actions.append(reply, reactBtn);
  if (ours(message)) {
    actions.append(
      button('chat.edit', () => startDraft('edit', message)),
      button('chat.delete', () => {
        if (!connection.send({ type: 'chat_delete', seq: message.seq })) ui.toast('chat.notSent', {}, 'error');
      }),
    );
  }
  body.append(actions, picker);
}

/** @param {number} seq @param {string} emoji @param {boolean} on */
function react(seq, emoji, on) {
  if (!connection.send({ type: 'chat_react', seq, emoji, on })) ui.toast('chat.notSent', {}, 'error');
}

/**
 * Starts a reply to `message`, or an edit of it, in the chat field.
 * @param {'reply' | 'edit'} kind
 * @param {ChatMessage} message
 */
function startDraft(kind, message) {
  draft = { kind, seq: message.seq, name: String(message.name) };
  const input = ui.$as('chat-input', HTMLTextAreaElement);
  if (kind === 'edit') input.value = String(message.text);
  showDraft();
  input.focus();
}

/** Ends the draft (sent, or cancelled). */
export function clearDraft() {
  if (draft && draft.kind === 'edit') ui.$as('chat-input', HTMLTextAreaElement).value = '';
  draft = null;
  showDraft();
}

function showDraft() {
  const bar = ui.$('chat-draft');
  bar.hidden = !draft;
  if (!draft) return;
  const label = ui.$('chat-draft-text');
  if (draft.kind === 'reply') i18n.setText(label, 'chat.replyingTo', { name: draft.name });
  else i18n.setText(label, 'chat.editing');
}

let mounted = false;

/** Draws every message with its extras from now on, and wires the draft's bar (once). */
export function mount() {
  if (mounted) return;
  mounted = true;
  chatlog.setChatDecorator(decorate);
  ui.$('chat-draft-cancel').addEventListener('click', () => {
    clearDraft();
    ui.$('chat-input').focus();
  });
  ui.$('chat-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && draft) {
      ev.preventDefault();
      clearDraft();
    }
  });
}
