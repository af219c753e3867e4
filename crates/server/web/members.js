// @ts-check
// The member list: who is in the room, drawn from the store, with the buttons to silence
// someone for ourselves and to rename ourselves; and the hint shown while we are alone.
//
// Ourselves first, then who speaks or spoke lately, then everyone else (`memberOrder`). A
// room may hold hundreds, so the list shows the first `LIST_PAGE` of them and a button shows
// `LIST_PAGE` more at a time; in a room that large a search field finds anyone by name. Only the
// members shown have an item in the page.

import * as connection from './connection.js';
import { capNickname, nickProblem, showProblem } from './forms.js';
import * as prefs from './prefs.js';
import { LIST_PAGE, memberCount, shownMembers, speakingNow, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').StoreEvent} StoreEvent */

/** From this many shown, the list scrolls by itself. */
const LONG_LIST = 12;

/** What the list shows beyond the store: how many members, and the search. */
const view = { limit: LIST_PAGE, query: '' };

function openRename() {
  const state = store.getState();
  if (state.connection.status !== 'joined') return;
  const input = ui.$as('rename-input', HTMLInputElement);
  ui.$('rename-form').hidden = false;
  input.value = state.name ?? '';
  showProblem('rename-error', null);
  input.focus();
  input.select();
}

function closeRename() {
  ui.$('rename-form').hidden = true;
  const pencil = ui.find(document, '#members .member.self .member-rename');
  if (pencil) pencil.focus();
}

/** @param {SubmitEvent} ev */
function submitRename(ev) {
  ev.preventDefault();
  const input = ui.$as('rename-input', HTMLInputElement);
  const problem = nickProblem(input.value);
  showProblem('rename-error', problem);
  if (problem) {
    input.focus();
    return;
  }
  const name = input.value.trim();
  if (name !== store.getState().name && !connection.send({ type: 'rename', name })) {
    ui.toast('chat.notSent', {}, 'error');
    return;
  }
  closeRename();
}

/** @param {State} state */
function renderList(state) {
  const { shown, hidden, matches } = shownMembers(state, view);
  ui.renderMembers(shown, state.members, state.selfId, {
    locallyMuted: state.localMutes.ids,
    allMuted: state.localMutes.all,
    speaking: (id) => speakingNow(state, id),
  });
  ui.$('members').classList.toggle('members-long', shown.length >= LONG_LIST);
  ui.setMemberPaging({
    total: memberCount(state),
    hidden,
    searchable: state.members.size > LIST_PAGE || view.query !== '',
    noMatch: view.query.trim() !== '' && matches === 0,
  });
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 * @param {StoreEvent | null} event
 */
function render(state, prev, event) {
  if (
    !prev ||
    state.members !== prev.members ||
    state.selfId !== prev.selfId ||
    state.localMutes !== prev.localMutes ||
    state.talkers !== prev.talkers ||
    state.slotVoices !== prev.slotVoices ||
    state.membersPending !== prev.membersPending
  ) {
    renderList(state);
  }
  // Who we muted for ourselves is remembered for the room, by tag: after a reload too.
  if (prev && state.localMutes.tags !== prev.localMutes.tags) prefs.mutedTags.set(state.room ?? '', [...state.localMutes.tags]);
  if (!prev || state.members !== prev.members || state.connection.status !== prev.connection.status) {
    // "It looks lonely here": shown while we are in the room alone.
    ui.$('lonely-hint').hidden = !(state.connection.status === 'joined' && state.members.size === 1);
  }
  // A nickname the server refuses once we are in the room was a rename.
  if (event && event.type === 'server_error' && event.code === 'invalid_nickname' && state.connection.status === 'joined') {
    showProblem('rename-error', { key: 'srv.invalid_nickname' });
  }
}

let mounted = false;

/** Wires the list's buttons and the rename form, and renders from the store (once). */
export function mount() {
  if (mounted) return;
  mounted = true;
  ui.setMemberHandlers({
    onToggleLocalMute: (id) => store.dispatch({ type: 'local_mute_toggled', id }),
    onRename: openRename,
  });
  const form = ui.$as('rename-form', HTMLFormElement);
  capNickname(ui.$as('rename-input', HTMLInputElement));
  form.addEventListener('submit', submitRename);
  ui.$('rename-cancel').addEventListener('click', closeRename);
  ui.$('members-more').addEventListener('click', () => {
    view.limit += LIST_PAGE;
    renderList(store.getState());
  });
  const search = ui.$as('members-search', HTMLInputElement);
  search.addEventListener('input', () => {
    view.query = search.value;
    view.limit = LIST_PAGE;
    renderList(store.getState());
  });
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      closeRename();
    }
  });
  store.subscribe(render);
  render(store.getState(), null, null);
}
