// free4chat web client: routing, room state, and the wiring between signalling, media and page.

import { Signalling } from '/signal.js';
import { PeerSession, openMicrophone, describeMicError, stopStream } from '/media.js';
import * as ui from '/ui.js';

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const NICK_MAX = 32;
const CHAT_MAX = 2000;
const NICK_KEY = 'free4chat.nickname';

const ROOM_RULE = 'A room name is 1 to 64 characters: letters, digits, "-" and "_".';

const BYE_TEXT = {
  left: 'You left the room.',
  server_shutdown: 'The server is shutting down.',
  protocol_violation: 'The server ended the connection after repeated refused messages.',
  media_failed: 'The audio connection failed.',
};

// Errors that, before we are in the room, mean we will not get in.
const JOIN_REFUSALS = new Set([
  'invalid_room_name',
  'invalid_nickname',
  'room_full',
  'server_full',
  'unsupported_version',
  'shutting_down',
]);

// -----------------------------------------------------------------------------------------------
// Observable state. `window.f4c` is read by the end-to-end tests and is handy in the console.

const f4c = {
  /** 'idle' | 'connecting' | 'joined' | 'disconnected' */
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
  /** The reason of the server's `bye`, if any. */
  bye: null,
  /** Our microphone state. */
  muted: false,
  /** The microphone error text, if the microphone could not be opened. */
  micError: null,
};
window.f4c = f4c;

let sig = null; // Signalling
let peer = null; // PeerSession
let micStream = null;
let micTrack = null;
let leaving = false;
let pendingMuteEchoes = 0;
let chatCounter = 0;
const seenChat = new Set();

function setState(state, detail) {
  f4c.state = state;
  ui.setConnection(state, detail);
}

// -----------------------------------------------------------------------------------------------
// Validation shared by the forms.

function nickProblem(raw) {
  const name = raw.trim();
  const len = [...name].length;
  if (len === 0) return 'Please enter a nickname.';
  if (len > NICK_MAX) return `A nickname is at most ${NICK_MAX} characters.`;
  if (/\p{Cc}/u.test(name)) return 'A nickname cannot contain control characters.';
  return null;
}

function roomProblem(room) {
  if (room === '') return 'Please enter a room name.';
  if (!ROOM_RE.test(room)) return ROOM_RULE;
  return null;
}

function storedNick() {
  try {
    return localStorage.getItem(NICK_KEY) ?? '';
  } catch {
    return '';
  }
}

function storeNick(name) {
  try {
    localStorage.setItem(NICK_KEY, name);
  } catch {
    // Storage may be unavailable (private mode); remembering is only a convenience.
  }
}

// -----------------------------------------------------------------------------------------------
// Home page

function homePage() {
  ui.showView('home');
  const form = ui.$('home-form');
  const roomInput = ui.$('home-room');
  const nameInput = ui.$('home-name');
  nameInput.value = storedNick();

  roomInput.addEventListener('input', () => {
    const v = roomInput.value.trim();
    ui.setFieldError('home-room-error', v === '' ? '' : roomProblem(v));
  });
  nameInput.addEventListener('input', () => ui.setFieldError('home-name-error', ''));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = roomInput.value.trim();
    const nick = nameInput.value.trim();
    const rp = roomProblem(room);
    ui.setFieldError('home-room-error', rp);
    const np = nick === '' ? null : nickProblem(nick);
    ui.setFieldError('home-name-error', np);
    if (rp) {
      roomInput.focus();
      return;
    }
    if (np) {
      nameInput.focus();
      return;
    }
    if (nick) storeNick(nick);
    const query = nick ? `?name=${encodeURIComponent(nick)}` : '';
    window.location.assign(`/room/${encodeURIComponent(room)}${query}`);
  });
  roomInput.focus();
}

// -----------------------------------------------------------------------------------------------
// Room page

function roomPage(room) {
  if (!ROOM_RE.test(room)) {
    ui.showFatal(`"${room}" is not a valid room name. ${ROOM_RULE}`);
    return;
  }
  ui.setRoomTitle(room);
  const params = new URLSearchParams(window.location.search);
  const opts = { raw: params.get('audio') === 'raw' };
  const given = params.get('name');
  if (given !== null && !nickProblem(given)) {
    joinRoom(room, given.trim(), opts);
    return;
  }
  askName(room, given, opts);
}

function askName(room, given, opts) {
  ui.showView('ask-name');
  ui.$('ask-name-room').textContent = `#${room}`;
  const input = ui.$('ask-name-input');
  input.value = given ?? storedNick();
  ui.setFieldError('ask-name-error', given !== null ? nickProblem(given) : '');
  // Assigned, not added: this form can be shown again after the server refuses a nickname.
  input.oninput = () => ui.setFieldError('ask-name-error', '');
  ui.$('ask-name-form').onsubmit = (ev) => {
    ev.preventDefault();
    const problem = nickProblem(input.value);
    ui.setFieldError('ask-name-error', problem);
    if (problem) {
      input.focus();
      return;
    }
    joinRoom(room, input.value.trim(), opts);
  };
  input.focus();
}

function joinRoom(room, name, opts) {
  storeNick(name);
  f4c.room = room;
  f4c.name = name;
  f4c.bye = null;
  ui.setNotice(null);
  ui.showView('room');
  ui.setRoomTitle(room);
  ui.setMuteButton({ muted: false, enabled: false });
  ui.renderMembers(f4c.members, f4c.selfId);
  setState('connecting');
  wireRoomControls();

  const s = new Signalling();
  sig = s;
  s.onopen = () => s.join(room, name, false);
  // A connection we have already given up on (a refused join) must not touch the page.
  s.onclose = (e) => {
    if (sig === s) onSignallingClosed(e);
  };
  sig.on('joined', (msg) => onJoined(msg, opts));
  sig.on('member_joined', onMemberJoined);
  sig.on('member_left', onMemberLeft);
  sig.on('member_renamed', onMemberRenamed);
  sig.on('mute', onMute);
  sig.on('speaking', onSpeaking);
  sig.on('offer', (msg) => peer && peer.handleOffer(msg.sdp));
  sig.on('answer', (msg) => peer && peer.handleAnswer(msg.sdp));
  sig.on('chat', (msg) => addChat(msg.message));
  sig.on('chat_ack', (msg) => addChat(msg.message));
  // track_added / track_removed need no action: the server's next offer adds or stops the
  // track, and the peer connection's track events follow from that.
  sig.on('error', onServerError);
  sig.on('bye', onBye);
  sig.connect();
}

function memberFrom(m) {
  return { id: String(m.id), name: String(m.name), muted: !!m.muted, speaking: !!m.speaking };
}

function renderMembers() {
  ui.renderMembers(f4c.members, f4c.selfId);
}

function onJoined(msg, opts) {
  f4c.selfId = String(msg.id);
  f4c.members.clear();
  f4c.members.set(f4c.selfId, { id: f4c.selfId, name: f4c.name, muted: f4c.muted, speaking: false });
  for (const m of msg.members ?? []) {
    const member = memberFrom(m);
    f4c.members.set(member.id, member);
    if (member.speaking) f4c.everSpoke.add(member.id);
  }
  renderMembers();
  for (const message of msg.chat ?? []) addChat(message);
  setState('joined', 'audio connecting…');
  ui.setChatEnabled(true);
  startMedia(msg.iceServers, opts).catch((err) => {
    console.error('audio set-up failed', err);
    ui.toast(`Audio could not be set up: ${err && err.message ? err.message : err}`, 'error');
  });
}

async function startMedia(iceServers, opts) {
  peer = new PeerSession({
    iceServers,
    send: (m) => sig && sig.send(m),
    onTrack: onRemoteTrack,
    onStateChange: onMediaState,
    onError: (err) => {
      console.error('negotiation failed', err);
      ui.toast(`Audio negotiation failed: ${err && err.message ? err.message : err}`, 'error');
    },
  });
  f4c.pc = peer.pc;

  let stream;
  try {
    stream = await openMicrophone({ raw: opts.raw });
  } catch (err) {
    if (!peer || peer.closed) return;
    f4c.micError = describeMicError(err);
    ui.setNotice(f4c.micError);
    // Listen only: ask for audio without sending any, and show ourselves as muted.
    peer.addReceiveOnlyAudio();
    setMuted(true, { enabled: false, label: 'No microphone' });
    return;
  }
  if (!peer || peer.closed || leaving) {
    stopStream(stream);
    return;
  }
  micStream = stream;
  micTrack = stream.getAudioTracks()[0] ?? null;
  if (!micTrack) {
    f4c.micError = 'The microphone gave no audio. You can still listen and chat.';
    ui.setNotice(f4c.micError);
    peer.addReceiveOnlyAudio();
    setMuted(true, { enabled: false, label: 'No microphone' });
    return;
  }
  micTrack.enabled = !f4c.muted;
  micTrack.addEventListener('ended', () => {
    if (f4c.state === 'joined') ui.setNotice('The microphone stopped. Rejoin to talk again.');
  });
  peer.addLocalTrack(micTrack, stream);
  ui.setMuteButton({ muted: f4c.muted, enabled: true });
}

function onMediaState(state) {
  if (f4c.state !== 'joined') return;
  switch (state) {
    case 'connected':
      setState('joined');
      break;
    case 'failed':
      setState('joined', 'audio failed');
      ui.toast('The audio connection failed.', 'error');
      break;
    case 'disconnected':
      setState('joined', 'audio interrupted');
      break;
    default:
      setState('joined', 'audio connecting…');
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
  ui.attachRemoteAudio(id, stream, () => {
    const b = ui.$('audio-unlock-btn');
    b.hidden = false;
  });
  stream.onremovetrack = () => {
    if (stream.getTracks().length === 0 && f4c.remoteStreams.get(id) === stream) {
      dropRemoteStream(id);
    }
  };
}

function dropRemoteStream(id) {
  f4c.remoteStreams.delete(id);
  ui.detachRemoteAudio(id);
}

function onMemberJoined(msg) {
  const member = memberFrom(msg.member);
  f4c.members.set(member.id, member);
  if (member.speaking) f4c.everSpoke.add(member.id);
  renderMembers();
  ui.appendSystemLine(`${member.name} joined`);
}

function onMemberLeft(msg) {
  const id = String(msg.id);
  const member = f4c.members.get(id);
  f4c.members.delete(id);
  dropRemoteStream(id);
  renderMembers();
  if (member) ui.appendSystemLine(`${member.name} left`);
}

function onMemberRenamed(msg) {
  const id = String(msg.id);
  const member = f4c.members.get(id);
  if (!member) return;
  const old = member.name;
  member.name = String(msg.name);
  if (id === f4c.selfId) {
    f4c.name = member.name;
    storeNick(member.name);
  }
  renderMembers();
  if (old !== member.name) ui.appendSystemLine(`${old} is now ${member.name}`);
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
    enabled: !!micTrack,
    label: f4c.micError ? 'No microphone' : undefined,
  };
}

function setMuted(muted, { enabled = !!micTrack, label } = {}) {
  f4c.muted = muted;
  if (micTrack) micTrack.enabled = !muted;
  const self = f4c.members.get(f4c.selfId);
  if (self) self.muted = muted;
  renderMembers();
  ui.setMuteButton({ muted, enabled, label });
  if (sig && sig.send({ type: 'mute', muted })) pendingMuteEchoes += 1;
}

function addChat(message) {
  if (!message || seenChat.has(message.seq)) return;
  seenChat.add(message.seq);
  f4c.chat.push(message);
  ui.appendChat(message, String(message.from) === f4c.selfId);
}

function sendChat() {
  const input = ui.$('chat-input');
  const text = input.value;
  if (text.trim() === '') return;
  if ([...text].length > CHAT_MAX) {
    ui.toast(`A chat message is at most ${CHAT_MAX} characters.`, 'error');
    return;
  }
  chatCounter += 1;
  const clientRef = `c${Date.now().toString(36)}-${chatCounter}`;
  if (sig && sig.send({ type: 'chat', text, client_ref: clientRef })) {
    input.value = '';
    input.style.height = '';
  } else {
    ui.toast('Not connected; the message was not sent.', 'error');
  }
}

function onServerError(msg) {
  const code = String(msg.code ?? 'error');
  const message = String(msg.message ?? '');
  f4c.errors.push({ code, message });
  console.warn('server error', code, message);
  if (f4c.selfId === null && JOIN_REFUSALS.has(code)) {
    const refused = sig;
    sig = null;
    if (refused) refused.close();
    teardown();
    setState('disconnected');
    if (code === 'invalid_nickname') {
      askName(f4c.room, null, {
        raw: new URLSearchParams(window.location.search).get('audio') === 'raw',
      });
      ui.setFieldError('ask-name-error', message || 'The server refused this nickname.');
      return;
    }
    ui.showFatal(`The server refused to let you in (${code}): ${message}`);
    return;
  }
  // Candidates are a courtesy; their refusal does not concern the person using the page.
  if (code === 'invalid_candidate') return;
  // The `bye` that follows says it in words.
  if (code === 'shutting_down') return;
  ui.toast(`${code}: ${message}`, 'error');
}

function onBye(msg) {
  f4c.bye = String(msg.reason ?? '');
  if (leaving) return;
  ui.setNotice(BYE_TEXT[f4c.bye] ?? `The server ended the connection (${f4c.bye}).`, {
    label: 'Rejoin',
    onClick: () => window.location.reload(),
  });
}

function onSignallingClosed() {
  const wasIn = f4c.state;
  teardown();
  setState('disconnected');
  ui.setChatEnabled(false);
  ui.setMuteButton({ ...muteButtonState(), enabled: false });
  for (const m of f4c.members.values()) m.speaking = false;
  renderMembers();
  if (leaving || wasIn === 'disconnected') return;
  if (!f4c.bye) {
    ui.setNotice(
      wasIn === 'joined' ? 'The connection to the server was lost.' : 'Could not reach the server.',
      { label: 'Rejoin', onClick: () => window.location.reload() },
    );
  }
}

/** Releases the microphone, the peer connection and remote audio, and closes the socket. */
function teardown() {
  if (peer) peer.close();
  stopStream(micStream);
  micStream = null;
  micTrack = null;
  for (const id of [...f4c.remoteStreams.keys()]) dropRemoteStream(id);
  if (sig) sig.close();
}

async function leave() {
  if (leaving) return;
  leaving = true;
  if (sig && sig.isOpen) {
    const bye = new Promise((resolve) => {
      sig.on('bye', resolve);
      const prev = sig.onclose;
      sig.onclose = (e) => {
        resolve();
        if (prev) prev(e);
      };
      setTimeout(resolve, 1000);
    });
    sig.send({ type: 'leave' });
    await bye;
  }
  teardown();
  window.location.assign('/');
}

let controlsWired = false;

function wireRoomControls() {
  if (controlsWired) return;
  controlsWired = true;
  ui.$('mute-btn').addEventListener('click', () => setMuted(!f4c.muted));
  ui.$('leave-btn').addEventListener('click', leave);
  const unlock = ui.$('audio-unlock-btn');
  unlock.addEventListener('click', async () => {
    await ui.resumeRemoteAudio();
    unlock.hidden = true;
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
