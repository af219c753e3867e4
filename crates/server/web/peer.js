// @ts-check
// The one RTCPeerConnection a member has with the server.
//
// Negotiation follows the "perfect negotiation" pattern with this side POLITE: the server never
// yields, so when a server offer arrives while our own offer is pending, we roll ours back, answer
// the server, and offer again once the connection is stable (the browser fires
// `negotiationneeded` again for anything still unnegotiated).
//
// Every offer says what each track we send carries (`sources`: mid → "microphone", "camera" or
// "screen"), so the others are told, with each track, what it is.

/** @typedef {import('./signal.js').ClientMsg} ClientMsg */
/** @typedef {import('./signal.js').TrackSource} TrackSource */

/**
 * The hostnames browsers use to hide local addresses; the server cannot resolve them.
 * @param {string} line
 */
function isMdnsCandidate(line) {
  return /\s[0-9a-f-]+\.local\s/i.test(line);
}

/**
 * Whether a transceiver still sends (a stopped one has no mid worth declaring).
 * @param {RTCRtpTransceiver} tr
 */
function sends(tr) {
  return tr.currentDirection !== 'stopped' && (tr.direction === 'sendonly' || tr.direction === 'sendrecv');
}

/**
 * @typedef {object} PeerOptions
 * @property {RTCIceServer[]} [iceServers] passed to RTCPeerConnection (none are needed for a
 *   directly reachable server)
 * @property {(msg: ClientMsg) => unknown} send sends a signalling message (offer, answer, candidate)
 * @property {(ev: RTCTrackEvent) => void} [onTrack] a remote track arrived
 * @property {(state: RTCPeerConnectionState) => void} [onStateChange] the connection state changed
 * @property {(err: unknown) => void} [onError] negotiation failed
 */

/** The peer connection with the server. */
export class PeerSession {
  /** @param {PeerOptions} options */
  constructor({ iceServers = [], send, onTrack, onStateChange, onError }) {
    this.send = send;
    this.onError = onError ?? ((/** @type {unknown} */ err) => console.error('negotiation failed', err));
    this.closed = false;
    /** @type {RTCRtpTransceiver | null} */
    this.micTransceiver = null;
    /** @type {RTCRtpTransceiver | null} */
    this.placeholder = null;
    /** What each transceiver we publish on carries. @type {Map<RTCRtpTransceiver, TrackSource>} */
    this.sources = new Map();
    // Every negotiation step runs on this chain, one at a time, in arrival order.
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();

    const pc = new RTCPeerConnection({
      iceServers: Array.isArray(iceServers) ? iceServers : [],
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    this.pc = pc;

    pc.addEventListener('negotiationneeded', () => this.enqueue(() => this.makeOffer()));
    pc.addEventListener('track', (ev) => {
      if (onTrack && !this.isPlaceholder(ev)) onTrack(ev);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (onStateChange) onStateChange(pc.connectionState);
    });
    pc.addEventListener('icecandidate', (ev) => {
      if (this.closed) return;
      if (ev.candidate === null) {
        this.send({ type: 'candidate', candidate: '' });
        return;
      }
      const line = ev.candidate.candidate;
      // An empty line is a per-section end marker; the null event above ends them all.
      if (!line || isMdnsCandidate(line)) return;
      this.send({ type: 'candidate', candidate: line });
    });
  }

  /**
   * Fresh relay credentials from the server (`ice_servers`), for whatever the connection
   * gathers from now on. The relays it holds keep the credentials they were made with, which
   * the server keeps honouring while we stay in the room.
   * @param {RTCIceServer[]} iceServers
   */
  setIceServers(iceServers) {
    if (this.closed) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (err) {
      console.warn('fresh relay credentials not applied', err);
    }
  }

  /** @param {() => Promise<void>} step */
  enqueue(step) {
    const run = this.chain.then(async () => {
      if (this.closed) return;
      try {
        await step();
      } catch (err) {
        if (!this.closed) this.onError(err);
      }
    });
    this.chain = run;
    return run;
  }

  /**
   * Publishes a local track that carries `source`. A send-only transceiver is used rather than
   * addTrack so that a server offer can never claim it for media we receive: our track is
   * always negotiated by an offer of our own.
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {TrackSource} [source]
   */
  addLocalTrack(track, stream, source = 'microphone') {
    const tr = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    this.sources.set(tr, source);
    if (source === 'microphone') this.micTransceiver = tr;
    return tr;
  }

  /**
   * Sends `track` from now on: replaces the published track in place (no renegotiation) if
   * there is one, or publishes it (a renegotiation) if there is none yet.
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   */
  async setMicTrack(track, stream) {
    if (this.closed) return;
    const tr = this.micTransceiver;
    if (tr && tr.currentDirection !== 'stopped' && tr.direction !== 'stopped') {
      await tr.sender.replaceTrack(track);
      return;
    }
    this.addLocalTrack(track, stream, 'microphone');
  }

  /**
   * Sends `track` (or, with null, nothing) as our camera or screen share, or as the sound of
   * the screen share (`source` 'screen', `kind` 'audio'). The first track of a source and kind
   * is published on a send-only transceiver of its own (a renegotiation); later ones, and
   * turning it off, replace the track in place, which renegotiates nothing. A camera is sent in
   * the simulcast layers `encodings` gives.
   * @param {'camera' | 'screen'} source
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   * @param {RTCRtpEncodingParameters[]} [encodings]
   */
  async setSourceTrack(source, kind, track, encodings) {
    if (this.closed) return;
    const tr = this.transceiverOf(source, kind);
    if (tr && tr.currentDirection !== 'stopped') {
      await tr.sender.replaceTrack(track);
      return;
    }
    if (!track) return;
    const init = /** @type {RTCRtpTransceiverInit} */ ({ direction: 'sendonly', streams: [new MediaStream([track])] });
    if (encodings) init.sendEncodings = encodings;
    const added = this.pc.addTransceiver(track, init);
    this.sources.set(added, source);
  }

  /**
   * Our transceiver that sends `source`'s media of `kind`, if published. A screen share has
   * two, its picture and its sound; the receiver's track always has the transceiver's kind,
   * whatever the sender holds.
   * @param {TrackSource} source
   * @param {'audio' | 'video'} kind
   */
  transceiverOf(source, kind) {
    return [...this.sources].find(([t, s]) => s === source && t.receiver.track.kind === kind)?.[0] ?? null;
  }

  /**
   * The sender of our camera or screen share, once published.
   * @param {'camera' | 'screen'} source
   */
  videoSender(source) {
    return this.transceiverOf(source, 'video')?.sender ?? null;
  }

  /** The track we currently send, if any. */
  get micTrack() {
    return this.micTransceiver ? this.micTransceiver.sender.track : null;
  }

  /**
   * Asks to receive audio without sending any (no microphone). The server sends others' audio
   * on transceivers of its own offers, so this one never carries a member's audio: its `track`
   * event is not reported (see `isPlaceholder`).
   */
  addReceiveOnlyAudio() {
    this.placeholder = this.pc.addTransceiver('audio', { direction: 'recvonly' });
    return this.placeholder;
  }

  /**
   * Whether a `track` event belongs to our own receive-only placeholder.
   * @param {RTCTrackEvent} ev
   */
  isPlaceholder(ev) {
    return !!this.placeholder && ev.transceiver === this.placeholder;
  }

  /**
   * What our sending m-lines carry, by mid, as the offer's `sources` declares it. Mids are
   * known once the local description is set.
   * @returns {Record<string, TrackSource>}
   */
  declaredSources() {
    /** @type {Record<string, TrackSource>} */
    const out = {};
    for (const [tr, source] of this.sources) {
      if (tr.mid !== null && sends(tr)) out[tr.mid] = source;
    }
    return out;
  }

  async makeOffer() {
    const pc = this.pc;
    // Offer only from a stable state; if something is pending, the browser fires
    // negotiationneeded again once we are back to stable.
    if (pc.signalingState !== 'stable') return;
    await pc.setLocalDescription();
    const sdp = pc.localDescription ? pc.localDescription.sdp : '';
    const sources = this.declaredSources();
    this.send(Object.keys(sources).length > 0 ? { type: 'offer', sdp, sources } : { type: 'offer', sdp });
  }

  /**
   * A server offer (a renegotiation). We are polite: our own pending offer gives way.
   * @param {string} sdp
   */
  handleOffer(sdp) {
    return this.enqueue(async () => {
      const pc = this.pc;
      if (pc.signalingState === 'have-local-offer') {
        // Glare: the server ignores our offer, so drop it and answer the server's instead.
        await pc.setLocalDescription({ type: 'rollback' });
      }
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription();
      this.send({ type: 'answer', sdp: pc.localDescription ? pc.localDescription.sdp : '' });
    });
  }

  /**
   * The server's answer to our offer.
   * @param {string} sdp
   */
  handleAnswer(sdp) {
    return this.enqueue(async () => {
      const pc = this.pc;
      if (pc.signalingState !== 'have-local-offer') {
        // An answer to an offer we already rolled back; nothing to apply it to.
        console.warn('ignoring an answer in signalling state', pc.signalingState);
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp });
    });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.pc.close();
    } catch {
      // Already closed.
    }
  }
}
