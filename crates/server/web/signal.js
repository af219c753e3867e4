// @ts-check
// The signalling connection: one WebSocket to /ws carrying JSON messages (docs/protocol.md).
// This module knows the wire format and nothing about the page.

export const PROTOCOL_VERSION = 1;

// -----------------------------------------------------------------------------------------------
// The messages, as docs/protocol.md describes them. What arrives is not trusted to match:
// connection.js checks every field it uses.

/** @typedef {'audio' | 'video'} TrackKind */
/** @typedef {'microphone' | 'camera' | 'screen'} TrackSource */

/**
 * @typedef {object} WireMember
 * @property {number} id
 * @property {string} name
 * @property {boolean} muted
 * @property {boolean} speaking
 * @property {number} source Their source id in the room: the CSRC naming them on audio slots.
 * @property {string} [tag] Who they are beyond this connection (from their client's key).
 * @property {boolean} [camera] Their camera sends now.
 * @property {boolean} [screen] Their screen share sends now.
 */

/**
 * A track a member publishes.
 * @typedef {object} WireTrack
 * @property {number} peer The publishing member.
 * @property {string} id The track's id in the publisher's session (its mid there).
 * @property {TrackKind} kind
 * @property {TrackSource} source
 * @property {string} stream The msid stream id of the track in the server's SDP: the
 *   `streams[0].id` of the browser's `track` event.
 */

/**
 * @typedef {object} ChatMessage
 * @property {number} seq Increases per room.
 * @property {number} from
 * @property {string} name The sender's nickname when it was sent.
 * @property {string} text
 * @property {number} ts Milliseconds since the Unix epoch.
 * @property {string} [tag] The sender's tag, if they had one.
 * @property {number} [reply_to] The seq of the message it answers.
 * @property {{emoji: string, by: {id: number, tag?: string}[]}[]} [reactions] Who reacted how.
 * @property {number} [edited] When its text last changed.
 * @property {boolean} [deleted] Deleted by its author: no text.
 */

/**
 * @typedef {object} WireIceServer
 * @property {string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * A room's topic, language and state.
 * @typedef {object} WireRoomInfo
 * @property {string} topic
 * @property {string} language
 * @property {boolean} private
 * @property {boolean} locked
 */

/**
 * What a `join` may ask beyond a room and a name.
 * @typedef {{password?: string, topic?: string, language?: string, token?: string}} JoinExtras
 */

/**
 * Messages the server sends.
 * @typedef {(
 *   | {type: 'joined', v: number, room: string, id: number, name?: string, tag?: string, members: WireMember[], members_total: number, audio_slots: number, tracks: WireTrack[], chat: ChatMessage[], ice_servers?: WireIceServer[], room_info?: WireRoomInfo, moderators?: number[], hands?: number[]}
 *   | {type: 'room', info: WireRoomInfo}
 *   | {type: 'moderators', ids: number[]}
 *   | {type: 'hands', ids: number[]}
 *   | {type: 'chat_cleared'}
 *   | {type: 'more_members', members: WireMember[]}
 *   | {type: 'member_joined', member: WireMember}
 *   | {type: 'member_left', id: number}
 *   | {type: 'member_renamed', id: number, name: string}
 *   | {type: 'mute', id: number, muted: boolean, forced?: boolean}
 *   | {type: 'notice', text: string}
 *   | {type: 'video', id: number, camera: boolean, screen: boolean}
 *   | {type: 'video_layers', track: string, active: string[]}
 *   | {type: 'ice_servers', ice_servers: WireIceServer[]}
 *   | {type: 'speakers', ids: number[]}
 *   | {type: 'quality', members: {id: number, quality: string}[]}
 *   | {type: 'track_added', track: WireTrack}
 *   | {type: 'track_removed', track: WireTrack}
 *   | {type: 'answer', sdp: string}
 *   | {type: 'offer', sdp: string}
 *   | {type: 'chat', message: ChatMessage}
 *   | {type: 'chat_ack', client_ref: string | null, message: ChatMessage}
 *   | {type: 'chat_updated', message: ChatMessage}
 *   | {type: 'pong'}
 *   | {type: 'error', code: string, message: string}
 *   | {type: 'bye', reason: string}
 * )} ServerMsg
 */

/**
 * Messages a client sends.
 * @typedef {(
 *   | {type: 'join', v: number, room: string, name: string, muted?: boolean, key?: string, password?: string, topic?: string, language?: string, token?: string}
 *   | {type: 'set_room', topic?: string, language?: string, locked?: boolean}
 *   | {type: 'mute_member', id: number, muted: boolean}
 *   | {type: 'remove_member', id: number}
 *   | {type: 'make_moderator', id: number}
 *   | {type: 'clear_chat'}
 *   | {type: 'hand', raised: boolean}
 *   | {type: 'lower_hand', id: number}
 *   | {type: 'offer', sdp: string, sources?: Record<string, TrackSource>}
 *   | {type: 'answer', sdp: string}
 *   | {type: 'candidate', candidate: string}
 *   | {type: 'mute', muted: boolean}
 *   | {type: 'local_mutes', ids: number[]}
 *   | {type: 'video', camera: boolean, screen: boolean}
 *   | {type: 'video_view', tracks: {peer: number, id: string, width: number, height: number}[]}
 *   | {type: 'rename', name: string}
 *   | {type: 'chat', text: string, client_ref?: string, reply_to?: number}
 *   | {type: 'chat_edit', seq: number, text: string}
 *   | {type: 'chat_delete', seq: number}
 *   | {type: 'chat_react', seq: number, emoji: string, on: boolean}
 *   | {type: 'leave'}
 *   | {type: 'ping'}
 * )} ClientMsg
 */

/**
 * @template {ServerMsg['type']} T
 * @typedef {Extract<ServerMsg, {type: T}>} ServerMsgOf
 */

/** The WebSocket address of the server that served this page. */
export function signallingUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * A signalling session. Server messages are delivered to handlers registered with `on(type, fn)`;
 * `on('*', fn)` sees every message. Lifecycle callbacks: `onopen()`, `onclose({code, reason})`;
 * `onsend(msg)` sees every message sent.
 */
export class Signalling {
  constructor(url = signallingUrl()) {
    this.url = url;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {Map<string, ((msg: any) => void)[]>} */
    this.handlers = new Map();
    /** @type {(() => void) | null} */
    this.onopen = null;
    /** @type {((ev: {code: number, reason: string}) => void) | null} */
    this.onclose = null;
    /** @type {((msg: ClientMsg) => void) | null} */
    this.onsend = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    this.closed = false;
  }

  /**
   * @template {ServerMsg['type'] | '*'} T
   * @param {T} type
   * @param {(msg: T extends ServerMsg['type'] ? ServerMsgOf<T> : ServerMsg) => void} fn
   */
  on(type, fn) {
    let list = this.handlers.get(type);
    if (!list) {
      list = [];
      this.handlers.set(type, list);
    }
    list.push(fn);
    return this;
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('open', () => {
      // A keep-alive so idle connections survive proxies that drop quiet sockets.
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), 25_000);
      if (this.onopen) this.onopen();
    });
    ws.addEventListener('message', (ev) => this.dispatch(ev.data));
    ws.addEventListener('close', (ev) => {
      clearInterval(this.pingTimer);
      this.pingTimer = undefined;
      const first = !this.closed;
      this.closed = true;
      if (first && this.onclose) this.onclose({ code: ev.code, reason: ev.reason });
    });
    // An 'error' event is always followed by 'close'; nothing to do here.
  }

  /** @param {unknown} data */
  dispatch(data) {
    if (typeof data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('signalling: ignoring a frame that is not JSON');
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    for (const fn of this.handlers.get(msg.type) ?? []) fn(msg);
    for (const fn of this.handlers.get('*') ?? []) fn(msg);
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends one message; returns false if the connection is not open.
   * @param {ClientMsg} msg
   */
  send(msg) {
    if (!this.ws || !this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    if (this.onsend) this.onsend(msg);
    return true;
  }

  /**
   * @param {string} room
   * @param {string} name
   * @param {boolean} muted
   * @param {string | null} key our client key (prefs.clientKey), if we have one
   * @param {JoinExtras} [extras] a password, a new room's topic and language, a join token
   */
  join(room, name, muted = false, key = null, extras = {}) {
    return this.send({ type: 'join', v: PROTOCOL_VERSION, room, name, muted, ...(key ? { key } : {}), ...extras });
  }

  close() {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }
}
