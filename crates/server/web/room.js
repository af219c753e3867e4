// @ts-check
// The room page: asking for a nickname if the address gives none, entering the room, and the
// room's own controls (microphone, "mute all for me", devices, copy link, leave, tips), drawn
// from the store. The member list, the chat, the connection and the media render themselves.

import * as chat from './chat.js';
import * as connection from './connection.js';
import { canChooseSpeaker, listAudioDevices } from './devices.js';
import { capNickname, isRoomName, nickProblem, roomHref, showProblem } from './forms.js';
import * as hotmic from './hotmic.js';
import * as i18n from './i18n.js';
import * as invite from './invite.js';
import * as media from './media.js';
import * as members from './members.js';
import * as mic from './mic.js';
import * as moderation from './moderation.js';
import { localNickname } from './nicknames.js';
import * as precheck from './precheck.js';
import * as prefs from './prefs.js';
import * as processing from './processing.js';
import { joinExtras, rememberJoin } from './rooms.js';
import { muteButton, store } from './state.js';
import * as talk from './talk.js';
import * as ui from './ui.js';
import * as video from './video.js';
import * as volume from './volume.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').StoreEvent} StoreEvent */
/** @typedef {import('./state.js').Text} Text */

/**
 * The room page for `room`: in at once with a good `?name=`, else after asking for one.
 * @param {string} room
 */
export function roomPage(room) {
  if (!isRoomName(room)) {
    ui.setRoomTitle(null);
    ui.showFatal('fatal.badRoom', { room }, 'err.roomRule');
    return;
  }
  ui.setRoomTitle(room);
  const params = new URLSearchParams(window.location.search);
  mic.configure({ raw: params.get('audio') === 'raw' });
  video.configure({ camera: params.get('video') === '1' });
  // A join token from the application that embeds the room names us: no name to ask for.
  const token = joinToken(params, window.location.hash);
  if (token) {
    enterRoom(room, '', token);
    return;
  }
  const given = params.get('name');
  if (given !== null && !nickProblem(given)) {
    enterRoom(room, given.trim());
    return;
  }
  askName(room, given);
}

/**
 * The join token the address carries, in its fragment (`#token=…`, which is never sent to a
 * server or put in a referrer) or its query (`?token=…`).
 * @param {URLSearchParams} params
 * @param {string} hash
 * @returns {string | null}
 */
export function joinToken(params, hash) {
  const fromHash = new URLSearchParams(hash.replace(/^#/, '')).get('token');
  const token = fromHash ?? params.get('token');
  // A JWT: three base64url parts; anything else is not worth sending.
  return token && token.length <= 4096 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)
    ? token
    : null;
}

/**
 * @param {string} room
 * @param {string | null} given the nickname the address gave, if any
 * @param {Text | null} [refusal] why the last one was refused
 */
function askName(room, given, refusal = null, password = false) {
  ui.showView('ask-name');
  // A private room: its password, asked for beside the nickname.
  ui.$('ask-password-row').hidden = !password;
  i18n.setText(ui.$('ask-name-heading'), 'ask.heading', { room });
  const input = ui.$as('ask-name-input', HTMLInputElement);
  input.value = given ?? prefs.nickname.get();
  capNickname(input);
  showProblem('ask-name-error', refusal ?? (given !== null ? nickProblem(given) : null));
  // Assigned, not added: this form can be shown again after the server refuses a nickname.
  input.oninput = () => showProblem('ask-name-error', null);
  ui.$('ask-name-dice').onclick = () => {
    input.value = localNickname(i18n.getLanguage());
    showProblem('ask-name-error', null);
    input.focus();
  };
  ui.$as('ask-name-form', HTMLFormElement).onsubmit = (ev) => {
    ev.preventDefault();
    const problem = nickProblem(input.value);
    showProblem('ask-name-error', problem);
    if (problem) {
      input.focus();
      return;
    }
    if (password) {
      rememberJoin(room, { ...joinExtras(room), password: ui.$as('ask-password', HTMLInputElement).value });
    }
    const { muted } = precheck.finish();
    if (muted) store.dispatch({ type: 'muted_set', muted: true });
    enterRoom(room, input.value.trim());
  };
  if (password) ui.$('ask-password').focus();
  else input.focus();
  precheck.show({ raw: new URLSearchParams(window.location.search).get('audio') === 'raw' });
}

/**
 * @param {string} room
 * @param {string} name the nickname to ask for; '' with a token, which names us
 * @param {string | null} [token] a join token
 */
function enterRoom(room, name, token = null) {
  // A name a token gave is the embedding application's, not one to offer next time.
  if (!token) prefs.nickname.set(name);
  // Nor can it be changed in the room.
  document.body.classList.toggle('named-by-token', !!token);
  store.dispatch({ type: 'room_entered', room, name, mutedTags: prefs.mutedTags.get(room) });
  ui.showView('room');
  ui.setRoomTitle(room);
  mount();
  ui.$('headphones-tip').hidden = prefs.dismissed.has('headphones');
  connection.setJoinExtras(joinExtras(room));
  connection.start({
    token,
    onFatal: (key, args) => {
      if (key === 'srv.wrong_password') askName(room, name, { key }, true);
      else ui.showFatal(key, args);
    },
    onNameRefused: () => askName(room, null, { key: 'srv.invalid_nickname' }),
  });
}

async function leave() {
  if (!(await connection.leave())) return;
  media.stopLevels();
  mic.release();
  video.stopAll();
  // Back from the start page must not walk straight into the room again with the microphone
  // open: the entry left behind has no nickname, so it asks first.
  window.history.replaceState(null, '', roomHref(store.getState().room ?? ''));
  window.location.assign('/');
}

async function copyLink() {
  const url = `${window.location.origin}/room/${encodeURIComponent(store.getState().room ?? '')}`;
  try {
    await navigator.clipboard.writeText(url);
    ui.toast('toast.linkCopied', { url }, 'info', 3000);
  } catch {
    ui.toast('toast.linkNotCopied', { url }, 'info', 12_000);
  }
}

// -----------------------------------------------------------------------------------------------
// Devices

async function refreshDevices() {
  const { inputs, outputs } = await listAudioDevices();
  const state = store.getState();
  const current = state.mic.track ? state.mic.track.getSettings().deviceId ?? null : prefs.devices.mic();
  ui.fillDeviceSelect('mic-select', inputs, current, 'dev.unnamedMic');
  const speakers = canChooseSpeaker();
  ui.$('speaker-row').hidden = !speakers;
  ui.$('speaker-unsupported').hidden = speakers;
  if (speakers) ui.fillDeviceSelect('speaker-select', outputs, state.speakerId ?? 'default', 'dev.unnamedSpeaker');
}

/** @param {string} deviceId */
async function chooseMic(deviceId) {
  if (!(await mic.choose(deviceId))) refreshDevices();
}

/** @param {string} deviceId */
async function chooseSpeaker(deviceId) {
  store.dispatch({ type: 'speaker_chosen', id: deviceId || null });
  prefs.devices.setSpeaker(deviceId);
  try {
    await ui.setRemoteSink(deviceId || 'default');
  } catch (err) {
    ui.toast('dev.speakerFailed', { reason: err instanceof Error ? err.message : String(err) }, 'error');
  }
}

// -----------------------------------------------------------------------------------------------
// Showing the controls

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 * @param {StoreEvent | null} event
 */
function render(state, prev, event) {
  if (!prev || state.mic !== prev.mic || state.connection.status !== prev.connection.status) {
    ui.setMuteButton(muteButton(state));
  }
  if (!prev || state.localMutes.all !== prev.localMutes.all) ui.setDeafenButton(state.localMutes.all);
  if (!prev || state.audioBlocked !== prev.audioBlocked) ui.$('audio-unlock-btn').hidden = !state.audioBlocked;
  // Device names can be read once a microphone is allowed.
  if (event && event.type === 'mic_ready') refreshDevices();
}

let mounted = false;

/** Wires the room's controls and starts every part of the room rendering (once). */
function mount() {
  if (mounted) return;
  mounted = true;
  store.dispatch({ type: 'speaker_chosen', id: prefs.devices.speaker() });
  members.mount();
  chat.mount();
  media.mount();
  volume.mount();
  mic.mount();
  video.mount();
  moderation.mount();

  ui.$('mute-btn').addEventListener('click', mic.toggleMuted);
  ui.$('deafen-btn').addEventListener('click', () => store.dispatch({ type: 'all_muted_toggled' }));
  ui.$('leave-btn').addEventListener('click', leave);
  ui.$('copy-link-btn').addEventListener('click', copyLink);
  ui.$('lonely-copy').addEventListener('click', copyLink);
  invite.mount(copyLink);
  ui.$('headphones-dismiss').addEventListener('click', () => {
    prefs.dismissed.add('headphones');
    ui.$('headphones-tip').hidden = true;
    ui.$('main').focus();
  });
  const devicesBtn = ui.$('devices-btn');
  /** @param {boolean} open */
  const showDevices = (open) => {
    devicesBtn.setAttribute('aria-expanded', String(open));
    ui.$('devices').hidden = !open;
    if (open) {
      refreshDevices();
      processing.refresh();
    }
  };
  devicesBtn.addEventListener('click', () => showDevices(devicesBtn.getAttribute('aria-expanded') !== 'true'));
  ui.$('devices').addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    showDevices(false);
    devicesBtn.focus();
  });
  const micSelect = ui.$as('mic-select', HTMLSelectElement);
  micSelect.addEventListener('change', () => chooseMic(micSelect.value));
  const speakerSelect = ui.$as('speaker-select', HTMLSelectElement);
  speakerSelect.addEventListener('change', () => chooseSpeaker(speakerSelect.value));
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener('devicechange', () => {
      if (!ui.$('devices').hidden) refreshDevices();
    });
  }
  ui.$('audio-unlock-btn').addEventListener('click', async () => {
    media.resumeLevels();
    await ui.resumeRemoteAudio();
    store.dispatch({ type: 'audio_unblocked' });
  });
  // Browsers start audio contexts suspended until the person interacts with the page.
  const wake = () => media.resumeLevels();
  window.addEventListener('pointerdown', wake, { passive: true });
  window.addEventListener('keydown', wake);

  store.subscribe(render);
  render(store.getState(), null, null);
  // After the controls' own rendering: it draws over the microphone button's label.
  talk.mount();
  processing.mount();
  hotmic.mount();
}
