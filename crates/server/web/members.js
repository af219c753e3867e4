// @ts-check
// The member list: who is in the room, drawn from the store, with the buttons to silence
// someone for ourselves and to rename ourselves; and the hint shown while we are alone.

import * as connection from './connection.js';
import { nickProblem, showProblem } from './forms.js';
import { store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').StoreEvent} StoreEvent */

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

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 * @param {StoreEvent | null} event
 */
function render(state, prev, event) {
  if (!prev || state.members !== prev.members || state.selfId !== prev.selfId || state.localMutes !== prev.localMutes) {
    ui.renderMembers(state.members, state.selfId, {
      locallyMuted: state.localMutes.ids,
      allMuted: state.localMutes.all,
    });
  }
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
  form.addEventListener('submit', submitRename);
  ui.$('rename-cancel').addEventListener('click', closeRename);
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      closeRename();
    }
  });
  store.subscribe(render);
  render(store.getState(), null, null);
}
