// free4chat web client: routing, room state, reconnection, and the wiring between signalling,
// media and page.

import { Signalling } from '/signal.js';
import {
  PeerSession,
  canChooseSpeaker,
  listAudioDevices,
  micErrorInfo,
  openMicrophone,
  stopStream,
} from '/media.js';
import * as ui from '/ui.js';
import * as i18n from '/i18n.js';
import { hydrateIcons } from '/icons.js';
import { LevelMeters } from '/levels.js';
import { randomNickname, randomRoomName } from '/names.js';
import * as prefs from '/prefs.js';

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const NICK_MAX = 32;
const CHAT_MAX = 2000;

/** Reconnection: the first retry after about half a second, doubling up to 8 s, with jitter. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 8000;
const RETRY_JITTER = 0.25;
/** A connection that has not joined by then is given up and retried. */
const JOIN_TIMEOUT_MS = 10_000;
/** How long a failed media connection is given to recover before we start afresh. */
const MEDIA_FAILED_GRACE_MS = 3000;

/** Narrow screens, where the chat folds away (the same width as in style.css). */
const NARROW = '(max-width: 759px)';

// Errors that, before we have ever been in the room, mean we will not get in.
const JOIN_REFUSALS = new Set([
  'invalid_room_name',
  'invalid_nickname',
  'room_full',
  'server_full',
  'unsupported_version',
  'shutting_down',
]);
// Of those, the ones that may pass: while reconnecting, we keep trying.
const TRANSIENT_REFUSALS = new Set(['room_full', 'server_full', 'shutting_down']);
// `bye` reasons after which we reconnect on our own.
const RECONNECT_BYES = new Set(['server_shutdown', 'media_failed']);
const KNOWN_BYES = new Set(['left', 'server_shutdown', 'protocol_violation', 'media_failed']);

// In-app browsers that commonly lack microphone access.
const IN_APP_UA = /FBAN|FBAV|FB_IAB|Instagram|Line\/|MicroMessenger|WeChat|Weibo|QQ\/|Twitter|Snapchat|TikTok|musical_ly|BytedanceWebview|LinkedInApp|; wv\)/i;

// -----------------------------------------------------------------------------------------------
// Observable state. `window.f4c` is read by the end-to-end tests and is handy in the console.

const f4c = {
  /** 'idle' | 'connecting' | 'joined' | 'reconnecting' | 'disconnected' */
  state: 'idle',
  room: null,
  /** Our own nickname as last confirmed. */
  name: null,
  /** Our member id, as a decimal string (the key used in `members` and `remoteStreams`). */
  selfId: null,
  /** id (decimal string) → {id, name, muted, speaking}, ourselves included. */
  members: new Map(),
  /** publishing member id (decimal string) → MediaStream. */
  remoteStreams: new Map(),
  /** The RTCPeerConnection with the server, once joined. */
  pc: null,
  /** Chat messages in display order: history, others' messages and our acknowledged ones. */
  chat: [],
  /** Ids of every member (ourselves included) ever reported speaking. */
  everSpoke: new Set(),
  /** Every `error` the server sent: {code, message}. */
  errors: [],
  /** The reason of the server's last `bye`, if any. */
  bye: null,
  /** Our microphone state. */
  muted: false,
  /** The microphone problem in words (current language), if the microphone could not be opened. */
  micError: null,
  /** The same as a stable code: 'denied' | 'not_found' | 'busy' | 'unsupported' | 'other' | 'no_audio' | 'ended'. */
  micErrorCode: null,
  /** Reconnection: attempt (0 while connected), delayMs of the pending retry, count of rejoins. */
  reconnect: { attempt: 0, delayMs: 0, rejoins: 0 },
  /** Member ids we silenced for ourselves only. */
  locallyMuted: new Set(),
  /** Everyone silenced for ourselves only. */
  allMutedForMe: false,
  /** Chat messages that arrived while the chat was folded away. */
  unread: 0,
  /** The language shown. */
  lang: i18n.DEFAULT_LANGUAGE,
  /** The chosen output device, if any. */
  speakerId: null,
  /** Messages this page sent, by type (counts), for tests: e.g. sent.mute. */
  sent: {},
};
window.f4c = f4c;

/** The current connection: {sig, peer, joined, bye, timers}. Replaced on every (re)connect. */
let session = null;
let micStream = null;
let micTrack = null;
/** The pending microphone request, shared by everyone who waits for it. */
let micRequest = null;
/** The last microphone failure: {key, args, code}. */
let lastMicFailure = null;
/** We muted ourselves because there was no microphone (undone when one appears). */
let mutedForNoMic = false;
let leaving = false;
let everJoined = false;
let retryTimer = null;
let countdownTimer = null;
let pendingMuteEchoes = 0;
let chatCounter = 0;
const seenChat = new Set();
let audioOpts = { raw: false };
let chatCollapsed = false;
const narrow = window.matchMedia(NARROW);

const levels = new LevelMeters((id) => ui.levelBar(id));

function setState(state, detailKey = null) {
  f4c.state = state;
  ui.setConnection(state, detailKey);
  updateLonely();
}

/** "It looks lonely here": shown while we are in the room alone. */
function updateLonely() {
  ui.$('lonely-hint').hidden = !(f4c.state === 'joined' && f4c.members.size === 1);
}

// -----------------------------------------------------------------------------------------------
// Language

function initLanguage() {
  const stored = prefs.language.get();
  const lang = stored && i18n.isLanguage(stored) ? stored : i18n.pickLanguage(navigator.languages ?? [navigator.language]);
  i18n.setLanguage(lang);
  f4c.lang = i18n.getLanguage();
  document.documentElement.lang = f4c.lang;
  i18n.onLanguageChange((code) => {
    f4c.lang = code;
    document.documentElement.lang = code;
    i18n.translate(document);
    ui.updateTitle();
    ui.refreshChatTimes();
    ui.refreshRecentTimes();
    if (micProblem) f4c.micError = i18n.t(micProblem.key, micProblem.args ?? {});
  });
  ui.fillLanguages(i18n.LANGUAGES, f4c.lang, (code) => {
    prefs.language.set(code);
    i18n.setLanguage(code);
  });
  i18n.translate(document);
}

// -----------------------------------------------------------------------------------------------
// Validation shared by the forms: a message key, or null when fine.

function nickProblem(raw) {
  const name = raw.trim();
  const len = [...name].length;
  if (len === 0) return { key: 'err.nickEmpty' };
  if (len > NICK_MAX) return { key: 'err.nickLong', args: { max: NICK_MAX } };
  if (/\p{Cc}/u.test(name)) return { key: 'err.nickControl' };
  return null;
}

function roomProblem(room) {
  if (room === '') return { key: 'err.roomEmpty' };
  if (!ROOM_RE.test(room)) return { key: 'err.roomRule' };
  return null;
}

function showProblem(fieldErrorId, problem) {
  ui.setFieldError(fieldErrorId, problem ? problem.key : null, problem ? problem.args : undefined);
}

function roomHref(room, name) {
  return `/room/${encodeURIComponent(room)}${name ? `?name=${encodeURIComponent(name)}` : ''}`;
}

// -----------------------------------------------------------------------------------------------
// Home page

function homePage() {
  ui.showView('home');
  ui.updateTitle({ room: null });
  const form = ui.$('home-form');
  const roomInput = ui.$('home-room');
  const nameInput = ui.$('home-name');
  nameInput.value = prefs.nickname.get();

  roomInput.addEventListener('input', () => {
    const v = roomInput.value.trim();
    showProblem('home-room-error', v === '' ? null : roomProblem(v));
  });
  nameInput.addEventListener('input', () => showProblem('home-name-error', null));
  ui.$('home-room-dice').addEventListener('click', () => {
    roomInput.value = randomRoomName();
    showProblem('home-room-error', null);
  });
  ui.$('home-name-dice').addEventListener('click', () => {
    nameInput.value = randomNickname();
    showProblem('home-name-error', null);
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = roomInput.value.trim();
    const nick = nameInput.value.trim();
    const rp = roomProblem(room);
    showProblem('home-room-error', rp);
    const np = nick === '' ? null : nickProblem(nick);
    showProblem('home-name-error', np);
    if (rp) {
      roomInput.focus();
      return;
    }
    if (np) {
      nameInput.focus();
      return;
    }
    if (nick) prefs.nickname.set(nick);
    window.location.assign(roomHref(room, nick));
  });

  const renderRecent = () =>
    ui.renderRecent(prefs.recent.list(), {
      href: (item) => roomHref(item.room, item.name),
      onForget: (item) => {
        prefs.recent.forget(item.room);
        renderRecent();
        const next = document.querySelector('#recent-list .recent-forget') ?? roomInput;
        next.focus();
      },
    });
  renderRecent();
  roomInput.focus();
}

// -----------------------------------------------------------------------------------------------
// Room page

function roomPage(room) {
  if (!ROOM_RE.test(room)) {
    ui.setRoomTitle(null);
    ui.showFatal('fatal.badRoom', { room }, 'err.roomRule');
    return;
  }
  ui.setRoomTitle(room);
  const params = new URLSearchParams(window.location.search);
  audioOpts = { raw: params.get('audio') === 'raw' };
  const given = params.get('name');
  if (given !== null && !nickProblem(given)) {
    enterRoom(room, given.trim());
    return;
  }
  askName(room, given);
}

function askName(room, given, refusal = null) {
  ui.showView('ask-name');
  i18n.setText(ui.$('ask-name-heading'), 'ask.heading', { room });
  const input = ui.$('ask-name-input');
  input.value = given ?? prefs.nickname.get();
  showProblem('ask-name-error', refusal ?? (given !== null ? nickProblem(given) : null));
  // Assigned, not added: this form can be shown again after the server refuses a nickname.
  input.oninput = () => showProblem('ask-name-error', null);
  ui.$('ask-name-dice').onclick = () => {
    input.value = randomNickname();
    showProblem('ask-name-error', null);
    input.focus();
  };
  ui.$('ask-name-form').onsubmit = (ev) => {
    ev.preventDefault();
    const problem = nickProblem(input.value);
    showProblem('ask-name-error', problem);
    if (problem) {
      input.focus();
      return;
    }
    enterRoom(room, input.value.trim());
  };
  input.focus();
}

function enterRoom(room, name) {
  prefs.nickname.set(name);
  f4c.room = room;
  f4c.name = name;
  ui.showView('room');
  ui.setRoomTitle(room);
  ui.setMuteButton({ muted: false, enabled: false });
  wireRoomControls();
  setChatCollapsed(narrow.matches);
  ui.$('headphones-tip').hidden = prefs.dismissed.has('headphones');
  renderMembers();
  connect();
}

// -----------------------------------------------------------------------------------------------
// Connection and reconnection

/** Opens a signalling connection and joins the room (first time, or again after a loss). */
function connect() {
  clearRetry();
  if (leaving) return;
  const s = new Signalling();
  const sess = { sig: s, peer: null, joined: false, bye: null, joinTimer: null, failTimer: null };
  session = sess;
  f4c.bye = null;
  setState(f4c.reconnect.attempt > 0 ? 'reconnecting' : 'connecting');
  if (f4c.reconnect.attempt > 0) {
    ui.setNotice('conn-notice', { key: 'conn.reconnectingNow', args: { n: f4c.reconnect.attempt } });
  }

  // Count what we send (the tests check that muting someone "for me" tells the server nothing).
  const send = s.send.bind(s);
  s.send = (msg) => {
    const ok = send(msg);
    if (ok) f4c.sent[msg.type] = (f4c.sent[msg.type] ?? 0) + 1;
    return ok;
  };

  s.onopen = () => s.join(f4c.room, f4c.name, f4c.muted);
  // A connection we have already given up on must not touch the page.
  s.onclose = () => {
    if (session === sess) connectionLost(sess);
  };
  const on = (type, fn) =>
    s.on(type, (msg) => {
      if (session === sess) fn(msg, sess);
    });
  on('joined', onJoined);
  on('member_joined', onMemberJoined);
  on('member_left', onMemberLeft);
  on('member_renamed', onMemberRenamed);
  on('mute', onMute);
  on('speaking', onSpeaking);
  on('offer', (msg) => sess.peer && sess.peer.handleOffer(msg.sdp));
  on('answer', (msg) => sess.peer && sess.peer.handleAnswer(msg.sdp));
  on('chat', (msg) => addChat(msg.message));
  on('chat_ack', (msg) => addChat(msg.message));
  // track_added / track_removed need no action: the server's next offer adds or stops the
  // track, and the peer connection's track events follow from that.
  on('error', onServerError);
  on('bye', (msg) => {
    sess.bye = String(msg.reason ?? '');
    f4c.bye = sess.bye;
  });
  sess.joinTimer = setTimeout(() => {
    if (session === sess && !sess.joined) s.close();
  }, JOIN_TIMEOUT_MS);
  s.connect();
}

/** Ends the current connection's peer connection and remote audio; keeps the microphone. */
function dropSession(sess) {
  clearTimeout(sess.joinTimer);
  clearTimeout(sess.failTimer);
  if (sess.peer) sess.peer.close();
  sess.sig.close();
  if (session === sess) session = null;
  f4c.pc = null;
  for (const id of [...f4c.remoteStreams.keys()]) dropRemoteStream(id);
  for (const m of f4c.members.values()) m.speaking = false;
  pendingMuteEchoes = 0;
}

function connectionLost(sess) {
  const wasJoined = sess.joined;
  dropSession(sess);
  ui.setChatEnabled(false);
  ui.setMuteButton({ ...muteButtonState(), enabled: false });
  renderMembers();
  if (leaving) return;
  const bye = sess.bye;
  const byeKey = KNOWN_BYES.has(bye) ? `bye.${bye}` : 'bye.other';
  if (bye && !RECONNECT_BYES.has(bye)) {
    // The server ended this on purpose: do not retry by ourselves.
    setState('disconnected');
    ui.setNotice('conn-notice', { key: byeKey }, [
      { key: 'conn.rejoin', onClick: rejoinNow, id: 'rejoin-btn', primary: true },
    ]);
    return;
  }
  if (!wasJoined && !everJoined) {
    // Never got in: keep trying, but say so.
    scheduleReconnect('conn.unreachable');
    return;
  }
  scheduleReconnect(bye ? byeKey : 'conn.lost');
}

function clearRetry() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  retryTimer = null;
  countdownTimer = null;
}

function scheduleReconnect(reasonKey) {
  clearRetry();
  const attempt = f4c.reconnect.attempt + 1;
  f4c.reconnect.attempt = attempt;
  const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
  const delay = Math.round(base * (1 - RETRY_JITTER + Math.random() * 2 * RETRY_JITTER));
  f4c.reconnect.delayMs = delay;
  const due = Date.now() + delay;
  setState('reconnecting');
  const args = () => ({ s: Math.max(1, Math.ceil((due - Date.now()) / 1000)), n: attempt });
  ui.setNotice(
    'conn-notice',
    { key: 'conn.reconnectIn', args: args(), lead: { key: reasonKey, args: { code: '' } }, ticking: true },
    [{ key: 'conn.reconnectNow', onClick: rejoinNow, id: 'reconnect-now-btn' }],
  );
  countdownTimer = setInterval(() => ui.updateNoticeText('conn-notice', 'conn.reconnectIn', args()), 250);
  retryTimer = setTimeout(connect, delay);
}

/** "Reconnect now" / "Rejoin": try at once. */
function rejoinNow() {
  if (session) return;
  connect();
}

window.addEventListener('online', () => {
  if (retryTimer) rejoinNow();
});

function memberFrom(m) {
  return { id: String(m.id), name: String(m.name), muted: !!m.muted, speaking: !!m.speaking };
}

function renderMembers() {
  ui.renderMembers(f4c.members, f4c.selfId, {
    locallyMuted: f4c.locallyMuted,
    allMuted: f4c.allMutedForMe,
  });
  updateLonely();
}

function onJoined(msg, sess) {
  sess.joined = true;
  clearTimeout(sess.joinTimer);
  const rejoined = everJoined;
  everJoined = true;

  // People muted "for me" keep that across a reconnection (their ids change): match by name.
  const mutedNames = new Set([...f4c.locallyMuted].map((id) => f4c.members.get(id)?.name).filter(Boolean));
  f4c.locallyMuted.clear();

  if (f4c.selfId) levels.detach(f4c.selfId);
  f4c.selfId = String(msg.id);
  if (micStream) levels.attach(f4c.selfId, micStream);
  f4c.members.clear();
  f4c.members.set(f4c.selfId, { id: f4c.selfId, name: f4c.name, muted: f4c.muted, speaking: false });
  for (const m of msg.members ?? []) {
    const member = memberFrom(m);
    f4c.members.set(member.id, member);
    if (member.speaking) f4c.everSpoke.add(member.id);
    if (mutedNames.has(member.name)) f4c.locallyMuted.add(member.id);
  }
  if (rejoined) {
    f4c.reconnect.rejoins += 1;
    ui.appendSystemLine('sys.reconnected', {});
  }
  f4c.reconnect.attempt = 0;
  f4c.reconnect.delayMs = 0;
  clearRetry();
  ui.setNotice('conn-notice', null);
  setState('joined', 'conn.audioConnecting');
  renderMembers();
  for (const message of msg.chat ?? []) addChat(message, { history: true });
  ui.setChatEnabled(true);
  prefs.recent.remember(f4c.room, f4c.name);
  startMedia(sess, iceServersFrom(msg.ice_servers)).catch((err) => {
    console.error('audio set-up failed', err);
    ui.toast('toast.audioSetup', { reason: err && err.message ? err.message : String(err) }, 'error');
  });
}

/** The relays offered in `joined`, in RTCPeerConnection's shape; anything malformed is left out. */
function iceServersFrom(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((s) => s && Array.isArray(s.urls) && s.urls.every((u) => typeof u === 'string'))
    .map((s) => {
      const server = { urls: s.urls };
      if (typeof s.username === 'string') server.username = s.username;
      if (typeof s.credential === 'string') server.credential = s.credential;
      return server;
    });
}

async function startMedia(sess, iceServers) {
  const peer = new PeerSession({
    iceServers,
    send: (m) => sess.sig.send(m),
    onTrack: (ev) => session === sess && onRemoteTrack(ev),
    onStateChange: (state) => session === sess && onMediaState(state, sess),
    onError: (err) => {
      console.error('negotiation failed', err);
      ui.toast('toast.negotiation', { reason: err && err.message ? err.message : String(err) }, 'error');
    },
  });
  sess.peer = peer;
  f4c.pc = peer.pc;

  if (!micTrack && !f4c.micErrorCode) await acquireMic();
  if (session !== sess || peer.closed) return;
  if (micTrack) {
    peer.addLocalTrack(micTrack, micStream);
    ui.setMuteButton(muteButtonState());
  } else {
    // Listen only: ask for audio without sending any, and show ourselves as muted.
    peer.addReceiveOnlyAudio();
    noMicMuted();
  }
}

/** Opens the microphone (once at a time); true when we have one. */
function acquireMic({ deviceId = prefs.devices.mic(), exact = false } = {}) {
  if (micRequest) return micRequest;
  micRequest = (async () => {
    let stream;
    try {
      stream = await openMicrophone({ raw: audioOpts.raw, deviceId, exact });
    } catch (err) {
      console.warn('microphone:', err && err.name, err && err.message);
      lastMicFailure = micErrorInfo(err);
      if (!micTrack) setMicProblem(lastMicFailure);
      return false;
    }
    if (leaving) {
      stopStream(stream);
      return false;
    }
    const track = stream.getAudioTracks()[0] ?? null;
    if (!track) {
      stopStream(stream);
      lastMicFailure = { key: 'mic.noAudio', args: {}, code: 'no_audio' };
      if (!micTrack) setMicProblem(lastMicFailure);
      return false;
    }
    useMic(stream, track);
    return true;
  })().finally(() => {
    micRequest = null;
  });
  return micRequest;
}

/** Makes `track` our microphone: sent from now on, replacing any previous one. */
function useMic(stream, track) {
  const old = micStream;
  micStream = stream;
  micTrack = track;
  track.enabled = !f4c.muted;
  track.addEventListener('ended', () => {
    if (micTrack !== track || leaving) return;
    micTrack = null;
    setMicProblem({ key: 'mic.ended', args: {}, code: 'ended' });
    ui.setMuteButton(muteButtonState());
  });
  if (old && old !== stream) stopStream(old);
  clearMicProblem();
  if (f4c.selfId) levels.attach(f4c.selfId, stream);
  refreshDevices();
}

/** The microphone problem shown, if any: {key, args, code}. */
let micProblem = null;

function setMicProblem(info) {
  micProblem = info;
  f4c.micErrorCode = info.code;
  f4c.micError = i18n.t(info.key, info.args ?? {});
  const actions =
    info.code === 'unsupported'
      ? []
      : [{ key: 'mic.retry', onClick: retryMic, id: 'mic-retry-btn', primary: true }];
  ui.setNotice('mic-notice', { key: info.key, args: info.args ?? {}, id: 'mic-error-text' }, actions);
}

function clearMicProblem() {
  micProblem = null;
  f4c.micError = null;
  f4c.micErrorCode = null;
  ui.setNotice('mic-notice', null);
}

/** No microphone: show ourselves as muted to everyone, and the button as "No microphone". */
function noMicMuted() {
  if (!f4c.muted) {
    mutedForNoMic = true;
    setMuted(true);
  }
  ui.setMuteButton(muteButtonState());
}

/** The "Try again" button of the microphone notice. */
async function retryMic() {
  const button = document.getElementById('mic-retry-btn');
  if (button) button.disabled = true;
  const ok = await acquireMic();
  if (!ok) {
    // The notice was rebuilt with the (possibly new) reason; put focus back on its button.
    const again = document.getElementById('mic-retry-btn');
    if (again) again.focus();
    return;
  }
  await publishMic();
  if (mutedForNoMic) {
    mutedForNoMic = false;
    setMuted(false);
  }
  ui.setMuteButton(muteButtonState());
  ui.toast('mic.ready', {}, 'info', 3000);
}

/** Sends the current microphone track on the current connection. */
async function publishMic() {
  const peer = session && session.peer;
  if (!peer || peer.closed || !micTrack) return;
  try {
    await peer.setMicTrack(micTrack, micStream);
  } catch (err) {
    console.error('could not send the microphone', err);
    ui.toast('dev.switchFailed', { reason: err && err.message ? err.message : String(err) }, 'error');
  }
}

function onMediaState(state, sess) {
  if (f4c.state !== 'joined') return;
  clearTimeout(sess.failTimer);
  switch (state) {
    case 'connected':
      setState('joined');
      break;
    case 'failed':
      setState('joined', 'conn.audioFailed');
      // Give the server a moment to say so itself (bye media_failed); then start afresh.
      sess.failTimer = setTimeout(() => {
        if (session === sess && sess.peer && sess.peer.pc.connectionState === 'failed') sess.sig.close();
      }, MEDIA_FAILED_GRACE_MS);
      break;
    case 'disconnected':
      setState('joined', 'conn.audioInterrupted');
      break;
    default:
      setState('joined', 'conn.audioConnecting');
  }
}

function onRemoteTrack(ev) {
  const stream = ev.streams[0];
  if (!stream) {
    console.warn('a remote track without a stream; cannot tell whose it is');
    return;
  }
  const id = stream.id;
  f4c.remoteStreams.set(id, stream);
  ui.attachRemoteAudio(id, stream, {
    muted: f4c.allMutedForMe || f4c.locallyMuted.has(id),
    sinkId: f4c.speakerId,
    onBlocked: () => {
      ui.$('audio-unlock-btn').hidden = false;
    },
  });
  levels.attach(id, stream);
  stream.onremovetrack = () => {
    if (stream.getTracks().length === 0 && f4c.remoteStreams.get(id) === stream) {
      dropRemoteStream(id);
    }
  };
}

function dropRemoteStream(id) {
  f4c.remoteStreams.delete(id);
  levels.detach(id);
  ui.detachRemoteAudio(id);
}

function onMemberJoined(msg) {
  const member = memberFrom(msg.member);
  f4c.members.set(member.id, member);
  if (member.speaking) f4c.everSpoke.add(member.id);
  renderMembers();
  ui.appendSystemLine('sys.joined', { name: member.name });
}

function onMemberLeft(msg) {
  const id = String(msg.id);
  const member = f4c.members.get(id);
  f4c.members.delete(id);
  f4c.locallyMuted.delete(id);
  dropRemoteStream(id);
  renderMembers();
  if (member) ui.appendSystemLine('sys.left', { name: member.name });
}

function onMemberRenamed(msg) {
  const id = String(msg.id);
  const member = f4c.members.get(id);
  if (!member) return;
  const old = member.name;
  member.name = String(msg.name);
  if (id === f4c.selfId) {
    f4c.name = member.name;
    prefs.nickname.set(member.name);
    prefs.recent.remember(f4c.room, member.name);
  }
  renderMembers();
  if (old !== member.name) ui.appendSystemLine('sys.renamed', { old, name: member.name });
}

function onMute(msg) {
  const id = String(msg.id);
  const member = f4c.members.get(id);
  if (!member) return;
  if (id === f4c.selfId) {
    // Our own change, echoed. While later toggles are still on their way, keep what we showed.
    if (pendingMuteEchoes > 0) pendingMuteEchoes -= 1;
    if (pendingMuteEchoes > 0) return;
    f4c.muted = !!msg.muted;
    if (micTrack) micTrack.enabled = !f4c.muted;
    ui.setMuteButton(muteButtonState());
  }
  member.muted = !!msg.muted;
  renderMembers();
}

function onSpeaking(msg) {
  const id = String(msg.id);
  const member = f4c.members.get(id);
  if (msg.speaking) f4c.everSpoke.add(id);
  if (!member) return;
  member.speaking = !!msg.speaking;
  renderMembers();
}

function muteButtonState() {
  return {
    muted: f4c.muted,
    enabled: !!micTrack && f4c.state === 'joined',
    noMic: !micTrack && !!f4c.micErrorCode,
  };
}

function setMuted(muted) {
  f4c.muted = muted;
  if (micTrack) micTrack.enabled = !muted;
  const self = f4c.members.get(f4c.selfId);
  if (self) self.muted = muted;
  renderMembers();
  ui.setMuteButton(muteButtonState());
  if (session && session.joined && session.sig.send({ type: 'mute', muted })) pendingMuteEchoes += 1;
}

// -----------------------------------------------------------------------------------------------
// Muting others for ourselves only (the server is not told)

function applyLocalMutes() {
  for (const id of f4c.remoteStreams.keys()) {
    ui.setRemoteMuted(id, f4c.allMutedForMe || f4c.locallyMuted.has(id));
  }
  ui.setDeafenButton(f4c.allMutedForMe);
  renderMembers();
}

function toggleLocalMute(id) {
  if (f4c.locallyMuted.has(id)) f4c.locallyMuted.delete(id);
  else f4c.locallyMuted.add(id);
  applyLocalMutes();
}

function toggleAllMuted() {
  f4c.allMutedForMe = !f4c.allMutedForMe;
  applyLocalMutes();
}

// -----------------------------------------------------------------------------------------------
// Renaming ourselves

function openRename() {
  if (f4c.state !== 'joined') return;
  const form = ui.$('rename-form');
  const input = ui.$('rename-input');
  form.hidden = false;
  input.value = f4c.name ?? '';
  showProblem('rename-error', null);
  input.focus();
  input.select();
}

function closeRename() {
  ui.$('rename-form').hidden = true;
  const pencil = document.querySelector('#members .member.self .member-rename');
  if (pencil) pencil.focus();
}

function submitRename(ev) {
  ev.preventDefault();
  const input = ui.$('rename-input');
  const problem = nickProblem(input.value);
  showProblem('rename-error', problem);
  if (problem) {
    input.focus();
    return;
  }
  const name = input.value.trim();
  if (name !== f4c.name) {
    if (!session || !session.joined || !session.sig.send({ type: 'rename', name })) {
      ui.toast('chat.notSent', {}, 'error');
      return;
    }
  }
  closeRename();
}

// -----------------------------------------------------------------------------------------------
// Chat

function chatVisible() {
  return !(chatCollapsed && narrow.matches);
}

function setChatCollapsed(collapsed) {
  chatCollapsed = collapsed;
  ui.setChatCollapsed(collapsed);
  if (chatVisible() && !document.hidden) setUnread(0);
}

function setUnread(n) {
  f4c.unread = n;
  ui.setUnread(n);
  ui.updateTitle({ unread: n });
}

function addChat(message, { history = false } = {}) {
  if (!message) return;
  // Sequence numbers start again in a room made afresh (after a server restart): the time
  // tells a repeat (history after a reconnection) from a new message.
  const key = `${message.seq}:${message.ts}`;
  if (seenChat.has(key)) return;
  seenChat.add(key);
  f4c.chat.push(message);
  const mine = String(message.from) === f4c.selfId;
  ui.appendChat(message, mine);
  if (!history && !mine && (!chatVisible() || document.hidden)) setUnread(f4c.unread + 1);
}

function sendChat() {
  const input = ui.$('chat-input');
  const text = input.value;
  if (text.trim() === '') return;
  if ([...text].length > CHAT_MAX) {
    ui.toast('chat.tooLong', { max: CHAT_MAX }, 'error');
    return;
  }
  chatCounter += 1;
  const clientRef = `c${Date.now().toString(36)}-${chatCounter}`;
  if (session && session.joined && session.sig.send({ type: 'chat', text, client_ref: clientRef })) {
    input.value = '';
    input.style.height = '';
  } else {
    ui.toast('chat.notSent', {}, 'error');
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && chatVisible()) setUnread(0);
});
narrow.addEventListener('change', () => {
  if (chatVisible() && !document.hidden) setUnread(0);
});

// -----------------------------------------------------------------------------------------------
// Server errors and leaving

/** Server error codes we explain in words; the rest get a general message. */
const EXPLAINED = new Set([
  'invalid_room_name',
  'room_full',
  'server_full',
  'unsupported_version',
  'shutting_down',
  'invalid_nickname',
  'rate_limited',
  'chat_too_long',
  'chat_empty',
  'invalid_sdp',
  'media_failed',
]);

function errorKey(code) {
  return EXPLAINED.has(code) ? `srv.${code}` : 'srv.other';
}

function onServerError(msg, sess) {
  const code = String(msg.code ?? 'error');
  const message = String(msg.message ?? '');
  f4c.errors.push({ code, message });
  console.warn('server error', code, message);
  if (!sess.joined && JOIN_REFUSALS.has(code)) {
    // The server keeps the connection open after an error: close it ourselves, quietly.
    session = null;
    dropSession(sess);
    // A restarting server is worth waiting for even on the first try.
    if ((everJoined && TRANSIENT_REFUSALS.has(code)) || code === 'shutting_down') {
      scheduleReconnect(errorKey(code));
      return;
    }
    setState('disconnected');
    if (code === 'invalid_nickname' && !everJoined) {
      askName(f4c.room, null, { key: 'srv.invalid_nickname' });
      return;
    }
    if (everJoined) {
      ui.setNotice('conn-notice', { key: errorKey(code), args: { code } }, [
        { key: 'conn.rejoin', onClick: rejoinNow, id: 'rejoin-btn', primary: true },
      ]);
      return;
    }
    ui.showFatal(errorKey(code), { code });
    return;
  }
  // Candidates are a courtesy; their refusal does not concern the person using the page.
  if (code === 'invalid_candidate') return;
  // The `bye` that follows says it in words.
  if (code === 'shutting_down' || code === 'media_failed') return;
  if (code === 'invalid_nickname') {
    showProblem('rename-error', { key: 'srv.invalid_nickname' });
  }
  ui.toast(errorKey(code), { code }, 'error');
}

async function leave() {
  if (leaving) return;
  leaving = true;
  clearRetry();
  const sess = session;
  if (sess && sess.sig.isOpen) {
    const bye = new Promise((resolve) => {
      sess.sig.on('bye', resolve);
      const prev = sess.sig.onclose;
      sess.sig.onclose = (e) => {
        resolve();
        if (prev) prev(e);
      };
      setTimeout(resolve, 1000);
    });
    sess.sig.send({ type: 'leave' });
    await bye;
  }
  if (session) dropSession(session);
  levels.detachAll();
  stopStream(micStream);
  micStream = null;
  micTrack = null;
  window.location.assign('/');
}

// -----------------------------------------------------------------------------------------------
// Devices

async function refreshDevices() {
  const { inputs, outputs } = await listAudioDevices();
  const current = micTrack ? micTrack.getSettings().deviceId : prefs.devices.mic();
  ui.fillDeviceSelect('mic-select', inputs, current, 'dev.unnamedMic');
  const speakers = canChooseSpeaker();
  ui.$('speaker-row').hidden = !speakers;
  ui.$('speaker-unsupported').hidden = speakers;
  if (speakers) ui.fillDeviceSelect('speaker-select', outputs, f4c.speakerId ?? 'default', 'dev.unnamedSpeaker');
}

async function chooseMic(deviceId) {
  if (!deviceId) return;
  if (micTrack && micTrack.getSettings().deviceId === deviceId) return;
  const ok = await acquireMic({ deviceId, exact: true });
  if (!ok) {
    const why = lastMicFailure ? i18n.t(lastMicFailure.key, lastMicFailure.args ?? {}) : '';
    ui.toast('dev.switchFailed', { reason: why }, 'error');
    refreshDevices();
    return;
  }
  prefs.devices.setMic(deviceId);
  await publishMic();
  if (mutedForNoMic) {
    mutedForNoMic = false;
    setMuted(false);
  }
  ui.setMuteButton(muteButtonState());
}

async function chooseSpeaker(deviceId) {
  f4c.speakerId = deviceId || null;
  prefs.devices.setSpeaker(deviceId);
  try {
    await ui.setRemoteSink(deviceId || 'default');
  } catch (err) {
    ui.toast('dev.speakerFailed', { reason: err && err.message ? err.message : String(err) }, 'error');
  }
}

// -----------------------------------------------------------------------------------------------
// Room controls

async function copyLink() {
  const url = `${window.location.origin}/room/${encodeURIComponent(f4c.room)}`;
  try {
    await navigator.clipboard.writeText(url);
    ui.toast('toast.linkCopied', { url }, 'info', 3000);
  } catch {
    ui.toast('toast.linkNotCopied', { url }, 'info', 12_000);
  }
}

let controlsWired = false;

function wireRoomControls() {
  if (controlsWired) return;
  controlsWired = true;
  f4c.speakerId = prefs.devices.speaker();
  ui.setMemberHandlers({ onToggleLocalMute: toggleLocalMute, onRename: openRename });
  ui.$('mute-btn').addEventListener('click', () => {
    mutedForNoMic = false;
    setMuted(!f4c.muted);
  });
  ui.$('deafen-btn').addEventListener('click', toggleAllMuted);
  ui.$('leave-btn').addEventListener('click', leave);
  ui.$('copy-link-btn').addEventListener('click', copyLink);
  ui.$('lonely-copy').addEventListener('click', copyLink);
  ui.$('headphones-dismiss').addEventListener('click', () => {
    prefs.dismissed.add('headphones');
    ui.$('headphones-tip').hidden = true;
    ui.$('main').focus();
  });
  const devicesBtn = ui.$('devices-btn');
  devicesBtn.addEventListener('click', () => {
    const open = devicesBtn.getAttribute('aria-expanded') !== 'true';
    devicesBtn.setAttribute('aria-expanded', String(open));
    ui.$('devices').hidden = !open;
    if (open) refreshDevices();
  });
  ui.$('mic-select').addEventListener('change', (ev) => chooseMic(ev.target.value));
  ui.$('speaker-select').addEventListener('change', (ev) => chooseSpeaker(ev.target.value));
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener('devicechange', () => {
      if (!ui.$('devices').hidden) refreshDevices();
    });
  }
  const unlock = ui.$('audio-unlock-btn');
  unlock.addEventListener('click', async () => {
    levels.resume();
    await ui.resumeRemoteAudio();
    unlock.hidden = true;
  });
  // Browsers start audio contexts suspended until the person interacts with the page.
  const wake = () => levels.resume();
  window.addEventListener('pointerdown', wake, { passive: true });
  window.addEventListener('keydown', wake);

  ui.$('rename-form').addEventListener('submit', submitRename);
  ui.$('rename-cancel').addEventListener('click', closeRename);
  ui.$('rename-form').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      closeRename();
    }
  });

  ui.$('chat-toggle').addEventListener('click', () => {
    setChatCollapsed(!chatCollapsed);
    if (!chatCollapsed) ui.$('chat-input').focus();
  });
  const input = ui.$('chat-input');
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
}

// -----------------------------------------------------------------------------------------------
// Routing

function decodeSegment(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function route() {
  hydrateIcons(document);
  initLanguage();
  ui.$('inapp-warning').hidden = !IN_APP_UA.test(navigator.userAgent);
  const path = window.location.pathname;
  const m = path.match(/^\/room\/([^/]*)\/?$/);
  if (m) {
    roomPage(decodeSegment(m[1]));
  } else {
    ui.setRoomTitle(null);
    homePage();
  }
}

route();
