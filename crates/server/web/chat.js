// @ts-check
// The chat: the log drawn from the store (messages and lines about the room), the count of
// unread messages while it cannot be seen, folding it away on narrow screens, and sending.

import * as chatextras from './chatextras.js';
import * as connection from './connection.js';
import { store } from './state.js';
import * as chatlog from './chatlog.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */

const CHAT_MAX = 2000;
/** Narrow screens, where the chat folds away (the same width as in style.css). */
const NARROW = '(max-width: 759px)';

/** How many entries of the log are on the page. */
let shown = 0;
let sentCount = 0;

function sendChat() {
  const input = ui.$as('chat-input', HTMLTextAreaElement);
  const text = input.value;
  if (text.trim() === '') return;
  if ([...text].length > CHAT_MAX) {
    ui.toast('chat.tooLong', { max: CHAT_MAX }, 'error');
    return;
  }
  sentCount += 1;
  const clientRef = `c${Date.now().toString(36)}-${sentCount}`;
  const draft = chatextras.currentDraft();
  /** @type {import('./signal.js').ClientMsg} */
  const msg =
    draft?.kind === 'edit'
      ? { type: 'chat_edit', seq: draft.seq, text }
      : draft?.kind === 'reply'
        ? { type: 'chat', text, client_ref: clientRef, reply_to: draft.seq }
        : { type: 'chat', text, client_ref: clientRef };
  if (connection.send(msg)) {
    chatextras.clearDraft();
    input.value = '';
    input.style.height = '';
  } else {
    ui.toast('chat.notSent', {}, 'error');
  }
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  const chat = state.chat;
  if (!prev || chat.log !== prev.chat.log) {
    // Messages that changed (edited, deleted, reacted to) are drawn again in their place.
    if (prev) {
      const changed = new Set();
      for (let i = 0; i < Math.min(shown, chat.log.length); i++) {
        const entry = chat.log[i];
        if (entry === prev.chat.log[i] || entry.type !== 'message') continue;
        changed.add(entry.message.seq);
        chatlog.replaceChat(entry.message, entry.mine);
      }
      // So do the replies that quote them.
      for (const entry of changed.size > 0 ? chat.log.slice(0, shown) : []) {
        if (entry.type === 'message' && typeof entry.message.reply_to === 'number' && changed.has(entry.message.reply_to)) {
          chatlog.replaceChat(entry.message, entry.mine);
        }
      }
    }
    // The log only grows: add what is new.
    for (const entry of chat.log.slice(shown)) {
      if (entry.type === 'message') chatlog.appendChat(entry.message, entry.mine);
      else chatlog.appendSystemLine(entry.text.key, entry.text.args);
    }
    shown = chat.log.length;
  }
  if (!prev || chat.unread !== prev.chat.unread) {
    chatlog.setUnread(chat.unread);
    ui.updateTitle({ unread: chat.unread });
  }
  if (!prev || chat.collapsed !== prev.chat.collapsed) chatlog.setChatCollapsed(chat.collapsed);
  if (!prev || state.connection.status !== prev.connection.status) {
    chatlog.setChatEnabled(state.connection.status === 'joined');
  }
}

let mounted = false;

/** Wires the chat's controls and renders from the store (once). */
export function mount() {
  if (mounted) return;
  mounted = true;
  chatextras.mount();
  const narrow = window.matchMedia(NARROW);
  const pageChanged = () => store.dispatch({ type: 'page_changed', narrow: narrow.matches, hidden: document.hidden });
  pageChanged();
  store.dispatch({ type: 'chat_collapsed', collapsed: narrow.matches });
  document.addEventListener('visibilitychange', pageChanged);
  narrow.addEventListener('change', pageChanged);

  const input = ui.$as('chat-input', HTMLTextAreaElement);
  // Someone reading back is not pulled down by new messages; a button takes them there.
  ui.$('chat-log').addEventListener('scroll', chatlog.chatScrolled, { passive: true });
  ui.$('chat-jump').addEventListener('click', () => {
    chatlog.scrollChatToLatest();
    input.focus();
  });
  ui.$('chat-toggle').addEventListener('click', () => {
    const collapsed = !store.getState().chat.collapsed;
    store.dispatch({ type: 'chat_collapsed', collapsed });
    if (!collapsed) input.focus();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendChat();
    }
  });
  input.addEventListener('input', () => {
    // Grow with the text, up to a few lines.
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  });
  ui.$('chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendChat();
  });
  // "Today" becomes "Yesterday" at midnight.
  setInterval(chatlog.refreshChatTimes, 60_000);
  store.subscribe(render);
  render(store.getState(), null);
}
