// @ts-check
// The connection to the server: one signalling session at a time, joined to the room, with its
// peer connection; when it is lost, reconnection after a growing, jittered delay. What the
// server says goes into the store as events; the connection's status and notice are drawn from
// the store.

import * as media from './media.js';
import * as mic from './mic.js';
import { PeerSession } from './peer.js';
import * as prefs from './prefs.js';
import { Signalling } from './signal.js';
import { store } from './state.js';
import * as ui from './ui.js';
import * as video from './video.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').StoreEvent} StoreEvent */
/** @typedef {import('./state.js').Member} Member */
/** @typedef {import('./state.js').Track} Track */
/** @typedef {import('./state.js').ConnectionNotice} ConnectionNotice */
/** @typedef {import('./signal.js').ClientMsg} ClientMsg */
/** @typedef {import('./signal.js').ChatMessage} ChatMessage */
/** @typedef {import('./signal.js').TrackSource} TrackSource */

/** Reconnection: the first retry after about half a second, doubling up to 8 s, with jitter. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 8000;
const RETRY_JITTER = 0.25;
/** A connection that has not joined by then is given up and retried. */
const JOIN_TIMEOUT_MS = 10_000;
/** How long a failed media connection is given to recover before we start afresh. */
const MEDIA_FAILED_GRACE_MS = 3000;
/** How long leaving waits for the server's `bye`. */
const LEAVE_WAIT_MS = 1000;
/** More audio slots than any server gives: what a `joined` says beyond this is not believed. */
const MAX_AUDIO_SLOTS = 64;
/** The most members one `local_mutes` may name (the protocol's limit). */
const MAX_LOCAL_MUTES = 1024;

// Errors that, before we have ever been in the room, mean we will not get in.
const JOIN_REFUSALS = new Set([
  'invalid_room_name',
  'invalid_nickname',
  'room_full',
  'server_full',
  'unsupported_version',
  'shutting_down',
  'cluster_unavailable',
  'too_many_joins',
  'too_many_connections',
  'origin_not_allowed',
  'wrong_password',
  'too_many_attempts',
  'room_locked',
  'removed_from_room',
  'token_required',
  'token_invalid',
  'token_expired',
]);
// Of those, the ones that may pass: while reconnecting, we keep trying.
const TRANSIENT_REFUSALS = new Set([
  'room_full',
  'server_full',
  'shutting_down',
  'cluster_unavailable',
  'too_many_joins',
  'too_many_connections',
]);
// `bye` reasons after which we reconnect on our own.
const RECONNECT_BYES = new Set(['server_shutdown', 'media_failed']);
const KNOWN_BYES = new Set([
  'left',
  'server_shutdown',
  'protocol_violation',
  'media_failed',
  'removed',
  'room_closed',
]);

/** Server error codes we explain in words; the rest get a general message. */
const EXPLAINED = new Set([
  'wrong_password',
  'too_many_attempts',
  'room_locked',
  'removed_from_room',
  'not_moderator',
  'invalid_room_name',
  'room_full',
  'server_full',
  'unsupported_version',
  'shutting_down',
  'cluster_unavailable',
  'too_many_joins',
  'too_many_connections',
  'origin_not_allowed',
  'muted_for_everyone',
  'invalid_nickname',
  'rate_limited',
  'chat_too_long',
  'chat_empty',
  'chat_not_found',
  'not_author',
  'invalid_sdp',
  'media_failed',
  'token_required',
  'token_invalid',
  'token_expired',
]);

/** @param {string} code */
export function errorKey(code) {
  return EXPLAINED.has(code) ? `srv.${code}` : 'srv.other';
}

/**
 * One signalling connection and what hangs on it.
 * @typedef {object} Session
 * @property {Signalling} sig
 * @property {PeerSession | null} peer
 * @property {boolean} joined
 * @property {string | null} bye The reason of the server's `bye` on this connection.
 * @property {ReturnType<typeof setTimeout> | undefined} joinTimer
 * @property {ReturnType<typeof setTimeout> | undefined} failTimer
 */

/**
 * What the room page does when the server keeps us out for good.
 * @typedef {object} Hooks
 * @property {(key: string, args: Record<string, string>) => void} onFatal We never got in and will not.
 * @property {() => void} onNameRefused The server refused our nickname before we ever got in.
 * @property {string | null} [token] The join token we join with, which names us and the room.
 */

/** What our `join` asks beyond the room and a name (rooms.js). @type {import('./signal.js').JoinExtras} */
let joinExtras = {};

/** @param {import('./signal.js').JoinExtras} extras */
export function setJoinExtras(extras) {
  joinExtras = extras;
}

/**
 * Handlers of messages the store does not keep (moderation.js), wired on every connection.
 * @type {[string, (msg: any) => void][]}
 */
const extraHandlers = [];

/**
 * Calls `fn` with every message of `type` on the current connection.
 * @param {string} type
 * @param {(msg: any) => void} fn
 */
export function onServer(type, fn) {
  extraHandlers.push([type, fn]);
}

/** The current connection, replaced on every (re)connect. @type {Session | null} */
let session = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retryTimer;
/** @type {Hooks} */
let hooks = { onFatal: () => {}, onNameRefused: () => {} };

// -----------------------------------------------------------------------------------------------
// What arrives, checked: ids as decimal strings, text as text, unknown values as defaults.

const SOURCES = new Set(['microphone', 'camera', 'screen']);

/** @param {unknown} v @returns {v is Record<string, unknown>} */
function isObject(v) {
  return typeof v === 'object' && v !== null;
}

/**
 * A count or a CSRC as the server sends it: a whole number from 0 to 2^32 - 1, else 0.
 * @param {unknown} v
 */
function u32From(v) {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff ? v : 0;
}

/** @param {unknown} m @returns {Member | null} */
function memberFrom(m) {
  if (!isObject(m)) return null;
  const tag = typeof m.tag === 'string' && /^[0-9a-f]{32}$/.test(m.tag) ? m.tag : null;
  return {
    id: String(m.id),
    name: String(m.name),
    muted: !!m.muted,
    speaking: !!m.speaking,
    source: u32From(m.source),
    tag,
    camera: m.camera === true,
    screen: m.screen === true,
  };
}

const QUALITIES = new Set(['good', 'fair', 'poor', 'unconnected']);

/** @param {unknown} q @returns {{id: string, quality: import('./state.js').Quality} | null} */
function qualityFrom(q) {
  if (!isObject(q) || typeof q.quality !== 'string' || !QUALITIES.has(q.quality)) return null;
  return { id: String(q.id), quality: /** @type {import('./state.js').Quality} */ (q.quality) };
}

/** @param {unknown} t @returns {Track | null} */
function trackFrom(t) {
  if (!isObject(t)) return null;
  const peer = String(t.peer);
  const id = String(t.id);
  const kind = t.kind === 'video' ? 'video' : 'audio';
  const source = typeof t.source === 'string' && SOURCES.has(t.source) ? /** @type {TrackSource} */ (t.source) : kind === 'audio' ? 'microphone' : 'camera';
  const stream = typeof t.stream === 'string' && t.stream !== '' ? t.stream : `${peer}-${id}`;
  return { peer, id, kind, source, stream };
}

/** @param {unknown} m @returns {ChatMessage | null} */
function chatFrom(m) {
  return isObject(m) ? /** @type {ChatMessage} */ (/** @type {unknown} */ (m)) : null;
}

/**
 * @template T
 * @param {unknown} list
 * @param {(v: unknown) => T | null} from
 * @returns {T[]}
 */
function listOf(list, from) {
  if (!Array.isArray(list)) return [];
  return list.map(from).filter((v) => v !== null);
}

/**
 * The relays offered in `joined`, in RTCPeerConnection's shape; anything malformed is left out.
 * @param {unknown} list
 * @returns {RTCIceServer[]}
 */
function iceServersFrom(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((s) => isObject(s) && Array.isArray(s.urls) && s.urls.every((/** @type {unknown} */ u) => typeof u === 'string'))
    .map((s) => {
      /** @type {RTCIceServer} */
      const server = { urls: s.urls };
      if (typeof s.username === 'string') server.username = s.username;
      if (typeof s.credential === 'string') server.credential = s.credential;
      return server;
    });
}

// -----------------------------------------------------------------------------------------------
// Connecting

/**
 * Sends one message on the joined connection; false if there is none.
 * @param {ClientMsg} msg
 */
export function send(msg) {
  return !!session && session.joined && session.sig.send(msg);
}

/** Opens a signalling connection and joins the room (first time, or again after a loss). */
function connect() {
  clearRetry();
  if (store.getState().connection.leaving) return;
  const sig = new Signalling();
  /** @type {Session} */
  const sess = { sig, peer: null, joined: false, bye: null, joinTimer: undefined, failTimer: undefined };
  session = sess;
  store.dispatch({ type: 'connecting' });

  // Count what we send (the tests check that muting someone "for me" tells the server nothing).
  sig.onsend = (msg) => store.dispatch({ type: 'message_sent', msgType: msg.type });
  sig.onopen = () => {
    const state = store.getState();
    const token = hooks.token ? { token: hooks.token } : {};
    sig.join(state.room ?? '', state.name ?? '', state.mic.muted, prefs.clientKey(), { ...joinExtras, ...token });
  };
  // A connection we have already given up on must not touch the page.
  sig.onclose = () => {
    if (session === sess) connectionLost(sess);
  };
  /**
   * @param {StoreEvent | null} event
   */
  const tell = (event) => {
    if (session === sess && event) store.dispatch(event);
  };
  sig.on('joined', (msg) => session === sess && onJoined(msg, sess));
  for (const [type, fn] of extraHandlers) {
    sig.on(/** @type {any} */ (type), (msg) => {
      if (session === sess) fn(msg);
    });
  }
  sig.on('chat_cleared', () => tell({ type: 'chat_cleared' }));
  sig.on('member_joined', (msg) => {
    const member = memberFrom(msg.member);
    tell(member && { type: 'member_joined', member });
  });
  sig.on('member_left', (msg) => tell({ type: 'member_left', id: String(msg.id) }));
  sig.on('member_renamed', (msg) => {
    if (session !== sess) return;
    const id = String(msg.id);
    const name = String(msg.name);
    store.dispatch({ type: 'member_renamed', id, name });
    const state = store.getState();
    if (id === state.selfId && state.members.has(id)) {
      // Our new nickname is the one to come back with.
      prefs.nickname.set(name);
      prefs.recent.remember(state.room ?? '', name);
    }
  });
  sig.on('mute', (msg) => tell({ type: 'mute', id: String(msg.id), muted: !!msg.muted, forced: !!msg.forced }));
  sig.on('video', (msg) => tell({ type: 'video', id: String(msg.id), camera: msg.camera === true, screen: msg.screen === true }));
  sig.on('video_layers', (msg) => {
    if (session === sess) video.applyLayers(String(msg.track), listOf(msg.active, (r) => (typeof r === 'string' ? r : null)));
  });
  sig.on('notice', (msg) => tell({ type: 'notice', text: String(msg.text ?? '') }));
  // Fresh relay credentials, before ours expire, for as long as we stay.
  sig.on('ice_servers', (msg) => {
    if (session === sess && sess.peer) sess.peer.setIceServers(iceServersFrom(msg.ice_servers));
  });
  sig.on('more_members', (msg) => tell({ type: 'more_members', members: listOf(msg.members, memberFrom) }));
  sig.on('quality', (msg) => tell({ type: 'quality', members: listOf(msg.members, qualityFrom) }));
  sig.on('speakers', (msg) => tell({ type: 'speakers', ids: listOf(msg.ids, (id) => String(id)) }));
  sig.on('track_added', (msg) => {
    const track = trackFrom(msg.track);
    tell(track && { type: 'track_added', track });
  });
  sig.on('track_removed', (msg) => {
    const track = trackFrom(msg.track);
    tell(track && { type: 'track_removed', track });
  });
  sig.on('offer', (msg) => session === sess && sess.peer && sess.peer.handleOffer(String(msg.sdp)));
  sig.on('answer', (msg) => session === sess && sess.peer && sess.peer.handleAnswer(String(msg.sdp)));
  sig.on('chat', (msg) => {
    const message = chatFrom(msg.message);
    tell(message && { type: 'chat_message', message });
  });
  sig.on('chat_updated', (msg) => {
    const message = chatFrom(msg.message);
    tell(message && { type: 'chat_updated', message });
  });
  sig.on('chat_ack', (msg) => {
    const message = chatFrom(msg.message);
    tell(message && { type: 'chat_message', message });
  });
  sig.on('error', (msg) => session === sess && onServerError(String(msg.code ?? 'error'), String(msg.message ?? ''), sess));
  sig.on('bye', (msg) => {
    if (session !== sess) return;
    sess.bye = String(msg.reason ?? '');
    store.dispatch({ type: 'bye', reason: sess.bye });
  });
  sess.joinTimer = setTimeout(() => {
    if (session === sess && !sess.joined) sig.close();
  }, JOIN_TIMEOUT_MS);
  sig.connect();
}

/**
 * @param {import('./signal.js').ServerMsgOf<'joined'>} msg
 * @param {Session} sess
 */
function onJoined(msg, sess) {
  sess.joined = true;
  clearTimeout(sess.joinTimer);
  clearRetry();
  // The name we asked for, which we come back with: the room may have given us another.
  const asked = store.getState().name ?? '';
  store.dispatch({
    type: 'joined',
    selfId: String(msg.id),
    name: typeof msg.name === 'string' && msg.name !== '' ? msg.name : null,
    tag: typeof msg.tag === 'string' && /^[0-9a-f]{32}$/.test(msg.tag) ? msg.tag : null,
    members: listOf(msg.members, memberFrom),
    membersTotal: u32From(msg.members_total),
    audioSlots: Math.min(u32From(msg.audio_slots), MAX_AUDIO_SLOTS),
    tracks: listOf(msg.tracks, trackFrom),
    chat: listOf(msg.chat, chatFrom),
  });
  // A room joined with a token is the embedding application's to link to, not ours.
  if (!hooks.token) prefs.recent.remember(store.getState().room ?? '', asked);
  startMedia(sess, iceServersFrom(msg.ice_servers)).catch((err) => {
    console.error('audio set-up failed', err);
    ui.toast('toast.audioSetup', { reason: err instanceof Error ? err.message : String(err) }, 'error');
  });
}

/**
 * @param {Session} sess
 * @param {RTCIceServer[]} iceServers
 */
async function startMedia(sess, iceServers) {
  const peer = new PeerSession({
    iceServers,
    send: (m) => sess.sig.send(m),
    onTrack: (ev) => {
      if (session === sess) media.onRemoteTrack(ev);
    },
    onStateChange: (state) => {
      if (session === sess) onMediaState(state, sess);
    },
    onError: (err) => {
      console.error('negotiation failed', err);
      ui.toast('toast.negotiation', { reason: err instanceof Error ? err.message : String(err) }, 'error');
    },
  });
  sess.peer = peer;
  store.dispatch({ type: 'peer_started', pc: peer.pc });
  await mic.attach(peer, () => session === sess);
  if (session === sess) await video.attach(peer, (m) => sess.sig.send(m));
}

/**
 * @param {RTCPeerConnectionState} state
 * @param {Session} sess
 */
function onMediaState(state, sess) {
  if (store.getState().connection.status !== 'joined') return;
  clearTimeout(sess.failTimer);
  store.dispatch({ type: 'media_state', state });
  if (state === 'failed') {
    // Give the server a moment to say so itself (bye media_failed); then start afresh.
    sess.failTimer = setTimeout(() => {
      if (session === sess && sess.peer && sess.peer.pc.connectionState === 'failed') sess.sig.close();
    }, MEDIA_FAILED_GRACE_MS);
  }
}

/**
 * Ends a connection's peer connection and what we receive on it; keeps the microphone.
 * @param {Session} sess
 */
function dropSession(sess) {
  clearTimeout(sess.joinTimer);
  clearTimeout(sess.failTimer);
  if (sess.peer) sess.peer.close();
  sess.sig.close();
  if (session === sess) session = null;
  store.dispatch({ type: 'session_ended' });
}

/** @param {Session} sess */
function connectionLost(sess) {
  const wasJoined = sess.joined;
  dropSession(sess);
  const state = store.getState();
  if (state.connection.leaving) return;
  const bye = sess.bye;
  const byeKey = bye && KNOWN_BYES.has(bye) ? `bye.${bye}` : 'bye.other';
  if (bye && !RECONNECT_BYES.has(bye)) {
    // The server ended this on purpose: do not retry by ourselves.
    store.dispatch({ type: 'disconnected', notice: { key: byeKey, action: 'rejoin' } });
    return;
  }
  if (!wasJoined && !state.connection.everJoined) {
    // Never got in: keep trying, but say so.
    scheduleReconnect('conn.unreachable');
    return;
  }
  // An attempt that failed before it joined changes nothing about why we are away (a server
  // that is restarting is not reachable for a moment): the reason given first stays.
  const reason = !wasJoined && state.connection.attempt > 0 ? state.connection.notice?.lead?.key : undefined;
  scheduleReconnect(reason ?? (bye ? byeKey : 'conn.lost'));
}

function clearRetry() {
  clearTimeout(retryTimer);
  retryTimer = undefined;
}

/** @param {string} reason the message key of why we reconnect */
function scheduleReconnect(reason) {
  clearRetry();
  const attempt = store.getState().connection.attempt + 1;
  const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
  const delayMs = Math.round(base * (1 - RETRY_JITTER + Math.random() * 2 * RETRY_JITTER));
  store.dispatch({ type: 'reconnect_scheduled', attempt, delayMs, due: Date.now() + delayMs, reason });
  retryTimer = setTimeout(connect, delayMs);
}

/** "Reconnect now" / "Rejoin": try at once. */
export function rejoinNow() {
  if (session) return;
  connect();
}

/**
 * @param {string} code
 * @param {string} message
 * @param {Session} sess
 */
function onServerError(code, message, sess) {
  store.dispatch({ type: 'server_error', code, message });
  console.warn('server error', code, message);
  if (!sess.joined && JOIN_REFUSALS.has(code)) {
    const everJoined = store.getState().connection.everJoined;
    // The server keeps the connection open after an error: close it ourselves, quietly.
    session = null;
    dropSession(sess);
    // A restarting server, or a cluster that cannot reach the room's node for a moment, is
    // worth waiting for even on the first try.
    if ((everJoined && TRANSIENT_REFUSALS.has(code)) || code === 'shutting_down' || code === 'cluster_unavailable') {
      scheduleReconnect(errorKey(code));
      return;
    }
    if (everJoined) {
      store.dispatch({ type: 'disconnected', notice: { key: errorKey(code), args: { code }, action: 'rejoin' } });
      return;
    }
    store.dispatch({ type: 'disconnected' });
    if (code === 'invalid_nickname') hooks.onNameRefused();
    else hooks.onFatal(errorKey(code), { code });
    return;
  }
  // Candidates are a courtesy; their refusal does not concern the person using the page.
  if (code === 'invalid_candidate') return;
  // The `bye` that follows says it in words.
  if (code === 'shutting_down' || code === 'media_failed' || code === 'cluster_unavailable') return;
  ui.toast(errorKey(code), { code }, 'error');
}

/**
 * Says `leave`, waits (briefly) for the server's `bye`, and ends the connection. Resolves
 * false if we were leaving already.
 */
export async function leave() {
  if (store.getState().connection.leaving) return false;
  store.dispatch({ type: 'leaving' });
  clearRetry();
  const sess = session;
  if (sess && sess.sig.isOpen) {
    const bye = new Promise((resolve) => {
      sess.sig.on('bye', resolve);
      const prev = sess.sig.onclose;
      sess.sig.onclose = (e) => {
        resolve(undefined);
        if (prev) prev(e);
      };
      setTimeout(resolve, LEAVE_WAIT_MS);
    });
    sess.sig.send({ type: 'leave' });
    await bye;
  }
  if (session) dropSession(session);
  return true;
}

// -----------------------------------------------------------------------------------------------
// Showing it

/** @type {Record<string, {key: string, id: string, primary?: boolean}>} */
const ACTIONS = {
  rejoin: { key: 'conn.rejoin', id: 'rejoin-btn', primary: true },
  reconnect_now: { key: 'conn.reconnectNow', id: 'reconnect-now-btn' },
};

/** @type {ReturnType<typeof setInterval> | undefined} */
let countdownTimer;

/** @param {{due: number, attempt: number}} countdown */
function countdownArgs(countdown) {
  return { s: Math.max(1, Math.ceil((countdown.due - Date.now()) / 1000)), n: countdown.attempt };
}

/** @param {ConnectionNotice | null} notice */
function renderNotice(notice) {
  clearInterval(countdownTimer);
  countdownTimer = undefined;
  if (!notice) {
    ui.setNotice('conn-notice', null);
    return;
  }
  const countdown = notice.countdown;
  const actions = notice.action ? [{ ...ACTIONS[notice.action], onClick: rejoinNow }] : [];
  ui.setNotice(
    'conn-notice',
    {
      key: notice.key,
      args: countdown ? countdownArgs(countdown) : notice.args,
      lead: notice.lead,
      ticking: !!countdown,
    },
    actions,
  );
  if (countdown) {
    countdownTimer = setInterval(() => ui.updateNoticeText('conn-notice', notice.key, countdownArgs(countdown)), 250);
  }
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 * @param {StoreEvent | null} event
 */
function render(state, prev, event) {
  const c = state.connection;
  if (!prev || c.status !== prev.connection.status || c.detail !== prev.connection.detail) {
    ui.setConnection(c.status, c.detail);
  }
  if (!prev || c.notice !== prev.connection.notice) renderNotice(c.notice);
  // Our own microphone state goes to everyone; the server's echo confirms it.
  if (event && event.type === 'muted_set' && send({ type: 'mute', muted: event.muted })) {
    store.dispatch({ type: 'mute_sent' });
  }
  if (prev && state.localMutes.ids !== prev.localMutes.ids) sendLocalMutes(state, event);
}

/**
 * On audio slots the server decides whom we hear, so it is told the whole list of members we
 * muted for ourselves whenever it changes, and after every (re)join, since it forgets the list
 * with the connection. (On streams of their own, those members' audio is silenced here alone.)
 * @param {State} state
 * @param {StoreEvent | null} event
 */
function sendLocalMutes(state, event) {
  if (state.audioSlots === 0 || state.connection.status !== 'joined') return;
  const ids = [...state.localMutes.ids].slice(0, MAX_LOCAL_MUTES).map(Number);
  // A fresh connection's list is empty: nothing to say unless someone is muted.
  if (event && event.type === 'joined' && ids.length === 0) return;
  send({ type: 'local_mutes', ids });
}

let started = false;

/**
 * Connects to the room the store names (again, after a refused nickname).
 * @param {Hooks} roomHooks
 */
export function start(roomHooks) {
  hooks = roomHooks;
  if (!started) {
    started = true;
    store.subscribe(render);
    render(store.getState(), null, null);
    window.addEventListener('online', () => {
      if (retryTimer) rejoinNow();
    });
  }
  connect();
}
