// The signalling connection: one WebSocket to /ws carrying JSON messages (docs/protocol.md).
// This module knows the wire format and nothing about the page.

export const PROTOCOL_VERSION = 1;

/** The WebSocket address of the server that served this page. */
export function signallingUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * A signalling session. Server messages are delivered to handlers registered with `on(type, fn)`;
 * `on('*', fn)` sees every message. Lifecycle callbacks: `onopen()`, `onclose({code, reason})`.
 */
export class Signalling {
  constructor(url = signallingUrl()) {
    this.url = url;
    this.ws = null;
    this.handlers = new Map();
    this.onopen = null;
    this.onclose = null;
    this.pingTimer = null;
    this.closed = false;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
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
      this.pingTimer = null;
      const first = !this.closed;
      this.closed = true;
      if (first && this.onclose) this.onclose({ code: ev.code, reason: ev.reason });
    });
    // An 'error' event is always followed by 'close'; nothing to do here.
  }

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

  /** Sends one message; returns false if the connection is not open. */
  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  join(room, name, muted = false) {
    return this.send({ type: 'join', v: PROTOCOL_VERSION, room, name, muted });
  }

  close() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }
}
