// @ts-check
// The browser's audio devices: opening the microphone, why it could not be opened, and the
// inputs and outputs on offer. Nothing here knows about the room.

/** @typedef {import('./state.js').MicProblem} MicProblem */

/**
 * Which of the browser's audio processing the person wants on their microphone.
 * @typedef {object} Processing
 * @property {boolean} noiseSuppression
 * @property {boolean} echoCancellation
 */

/**
 * Audio processing the browser applies to the microphone: none for raw audio, else what the
 * person chose (both on unless said otherwise), with automatic gain control.
 * @param {boolean} raw
 * @param {Processing} [processing]
 */
export function audioConstraints(raw, processing = { noiseSuppression: true, echoCancellation: true }) {
  return {
    echoCancellation: !raw && processing.echoCancellation,
    noiseSuppression: !raw && processing.noiseSuppression,
    autoGainControl: !raw,
  };
}

/**
 * Why the microphone could not be opened, as a message key (see messages.js), its values and a
 * stable code.
 * @param {unknown} err what getUserMedia rejected with
 * @returns {MicProblem}
 */
export function micErrorInfo(err) {
  // Browsers reject with DOMExceptions and errors of their own kinds: read them by shape.
  const e = /** @type {{name?: unknown, message?: unknown} | null} */ (err && typeof err === 'object' ? err : null);
  const name = e && typeof e.name === 'string' ? e.name : undefined;
  const message = e && typeof e.message === 'string' ? e.message : '';
  switch (name) {
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
        args: { reason: message || String(err) },
        code: 'other',
      };
  }
}

/**
 * Opens the microphone. `deviceId`: a device to use; `exact` makes it a requirement rather than
 * a preference. Rejects with the browser's error (see micErrorInfo).
 * @param {{raw?: boolean, processing?: Processing, deviceId?: string | null, exact?: boolean}} [options]
 */
export async function openMicrophone({ raw = false, processing, deviceId = null, exact = false } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const err = new Error('getUserMedia is not available');
    err.name = 'NotSupportedError';
    throw err;
  }
  /** @type {MediaTrackConstraints} */
  const audio = audioConstraints(raw, processing);
  if (deviceId) audio.deviceId = exact ? { exact: deviceId } : { ideal: deviceId };
  return navigator.mediaDevices.getUserMedia({ audio, video: false });
}

/** @typedef {{deviceId: string, label: string}} Device */

/**
 * The audio inputs and outputs the browser lists (labels are empty before permission).
 * @returns {Promise<{inputs: Device[], outputs: Device[]}>}
 */
export async function listAudioDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
    return { inputs: [], outputs: [] };
  }
  /** @type {MediaDeviceInfo[]} */
  let all = [];
  try {
    all = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return { inputs: [], outputs: [] };
  }
  const pick = (/** @type {MediaDeviceKind} */ kind) =>
    all
      .filter((d) => d.kind === kind && d.deviceId !== 'communications')
      .map((d) => ({ deviceId: d.deviceId, label: d.label }));
  return { inputs: pick('audioinput'), outputs: pick('audiooutput') };
}

/** Whether this browser can send audio elements to a chosen output device. */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * Stops every track of a stream (releases the microphone).
 * @param {MediaStream | null} stream
 */
export function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}
