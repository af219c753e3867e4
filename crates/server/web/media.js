// Microphone capture and the one RTCPeerConnection a member has with the server.
//
// Negotiation follows the "perfect negotiation" pattern with this side POLITE: the server never
// yields, so when a server offer arrives while our own offer is pending, we roll ours back, answer
// the server, and offer again once the connection is stable (the browser fires
// `negotiationneeded` again for anything still unnegotiated).

/** Audio processing the browser applies to the microphone, unless raw audio is requested. */
export function audioConstraints(raw) {
  const on = !raw;
  return { echoCancellation: on, noiseSuppression: on, autoGainControl: on };
}

/**
 * Why the microphone could not be opened, as a message key (see messages.js) and its values.
 * `retry`: whether trying again may help without changing anything else.
 */
export function micErrorInfo(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return { key: 'mic.denied', args: {}, code: 'denied' };
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return { key: 'mic.notFound', args: {}, code: 'not_found' };
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return { key: 'mic.busy', args: {}, code: 'busy' };
    case 'NotSupportedError':
      return { key: 'mic.insecure', args: {}, code: 'unsupported' };
    default:
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        return { key: 'mic.insecure', args: {}, code: 'unsupported' };
      }
      return {
        key: 'mic.other',
        args: { reason: err && err.message ? err.message : String(err) },
        code: 'other',
      };
  }
}

/**
 * Opens the microphone. `deviceId`: a device to use; `exact` makes it a requirement rather than
 * a preference. Rejects with the browser's error (see micErrorInfo).
 */
export async function openMicrophone({ raw = false, deviceId = null, exact = false } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const err = new Error('getUserMedia is not available');
    err.name = 'NotSupportedError';
    throw err;
  }
  const audio = audioConstraints(raw);
  if (deviceId) audio.deviceId = exact ? { exact: deviceId } : { ideal: deviceId };
  return navigator.mediaDevices.getUserMedia({ audio, video: false });
}

/** The audio inputs and outputs the browser lists (labels are empty before permission). */
export async function listAudioDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
    return { inputs: [], outputs: [] };
  }
  let all = [];
  try {
    all = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return { inputs: [], outputs: [] };
  }
  const pick = (kind) =>
    all
      .filter((d) => d.kind === kind && d.deviceId !== 'communications')
      .map((d) => ({ deviceId: d.deviceId, label: d.label }));
  return { inputs: pick('audioinput'), outputs: pick('audiooutput') };
}

/** Whether this browser can send audio elements to a chosen output device. */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/** The hostnames browsers use to hide local addresses; the server cannot resolve them. */
function isMdnsCandidate(line) {
  return /\s[0-9a-f-]+\.local\s/i.test(line);
}

/**
 * The peer connection with the server.
 *
 * options:
 *   iceServers   — passed to RTCPeerConnection (none are needed for a directly reachable server)
 *   send(msg)    — sends a signalling message ({type:'offer'|'answer'|'candidate', ...})
 *   onTrack(event)            — a remote track arrived
 *   onStateChange(state)      — the connection state changed ('new'|'connecting'|'connected'|...)
 *   onError(err)              — negotiation failed
 */
export class PeerSession {
  constructor({ iceServers = [], send, onTrack, onStateChange, onError } = {}) {
    this.send = send;
    this.onError = onError ?? ((err) => console.error('negotiation failed', err));
    this.closed = false;
    this.micTransceiver = null;
    this.placeholder = null;
    // Every negotiation step runs on this chain, one at a time, in arrival order.
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
   * Publishes a local track. A send-only transceiver is used rather than addTrack so that a
   * server offer can never claim it for media we receive: our track is always negotiated by an
   * offer of our own.
   */
  addLocalTrack(track, stream) {
    this.micTransceiver = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    return this.micTransceiver;
  }

  /**
   * Sends `track` from now on: replaces the published track in place (no renegotiation) if
   * there is one, or publishes it (a renegotiation) if there is none yet.
   */
  async setMicTrack(track, stream) {
    if (this.closed) return;
    const tr = this.micTransceiver;
    if (tr && !tr.stopped && tr.currentDirection !== 'stopped') {
      await tr.sender.replaceTrack(track);
      return;
    }
    this.addLocalTrack(track, stream);
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

  /** Whether a `track` event belongs to our own receive-only placeholder. */
  isPlaceholder(ev) {
    return !!this.placeholder && ev.transceiver === this.placeholder;
  }

  async makeOffer() {
    const pc = this.pc;
    // Offer only from a stable state; if something is pending, the browser fires
    // negotiationneeded again once we are back to stable.
    if (pc.signalingState !== 'stable') return;
    await pc.setLocalDescription();
    this.send({ type: 'offer', sdp: pc.localDescription.sdp });
  }

  /** A server offer (a renegotiation). We are polite: our own pending offer gives way. */
  handleOffer(sdp) {
    return this.enqueue(async () => {
      const pc = this.pc;
      if (pc.signalingState === 'have-local-offer') {
        // Glare: the server ignores our offer, so drop it and answer the server's instead.
        await pc.setLocalDescription({ type: 'rollback' });
      }
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription();
      this.send({ type: 'answer', sdp: pc.localDescription.sdp });
    });
  }

  /** The server's answer to our offer. */
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

/** Stops every track of a stream (releases the microphone). */
export function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}
