// @ts-check
// Our microphone in the room: opening it (once at a time), what went wrong if it could not be
// opened, sending it on the current peer connection, and muting it. The microphone's state is
// in the store; this module keeps the track's `enabled` in step with it and shows the
// microphone notice.

import { micErrorInfo, openMicrophone, stopStream } from './devices.js';
import * as i18n from './i18n.js';
import * as prefs from './prefs.js';
import { renderingFromStore, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').MicProblem} MicProblem */
/** @typedef {import('./peer.js').PeerSession} PeerSession */

/** Raw audio (no echo cancellation, noise suppression or gain control), as the URL asks. */
let raw = false;
/** The peer connection our microphone is sent on, once there is one. @type {PeerSession | null} */
let peer = null;
/** The pending microphone request, shared by everyone who waits for it. @type {Promise<MicProblem | null> | null} */
let request = null;

/** @param {{raw: boolean}} options */
export function configure(options) {
  raw = options.raw;
}

/** Called before the microphone is closed to be opened again, to let go of copies of its track. */
let beforeReopen = () => {};

/** @param {() => void} fn */
export function onBeforeReopen(fn) {
  beforeReopen = fn;
}

/** Whether the address asked for raw audio: no processing, whatever was chosen. */
export function isRaw() {
  return raw;
}

/** The audio processing the person chose (Devices). */
function wantedProcessing() {
  return { noiseSuppression: prefs.processing.noiseSuppression(), echoCancellation: prefs.processing.echoCancellation() };
}

/**
 * Applies the chosen audio processing to the microphone we have: in place if the browser can,
 * else by opening it again with it. Resolves false if that failed.
 */
export async function applyProcessing() {
  const track = store.getState().mic.track;
  if (!track || raw) return true;
  const want = wantedProcessing();
  try {
    await track.applyConstraints({ ...track.getConstraints(), ...want });
  } catch {
    // Some browsers cannot change processing on a live track: opened again below.
  }
  const got = track.getSettings();
  if (got.noiseSuppression === want.noiseSuppression && got.echoCancellation === want.echoCancellation) return true;
  const deviceId = got.deviceId ?? prefs.devices.mic();
  // Closed first: Chromium gives a new track of a device that is still open (by this track, or
  // copies of it) the processing of the open one.
  beforeReopen();
  stopStream(store.getState().mic.stream);
  const problem = await acquire({ deviceId, exact: !!deviceId });
  if (problem) {
    ui.toast('dev.switchFailed', { reason: i18n.t(problem.key, problem.args) }, 'error');
    return false;
  }
  await publish();
  return true;
}

/**
 * Opens the microphone (once at a time) and makes it ours. Resolves with null once we have it,
 * or with what went wrong.
 * @param {{deviceId?: string | null, exact?: boolean}} [options]
 * @returns {Promise<MicProblem | null>}
 */
export function acquire({ deviceId = prefs.devices.mic(), exact = false } = {}) {
  if (request) return request;
  request = (async () => {
    let stream;
    try {
      stream = await openMicrophone({ raw, processing: wantedProcessing(), deviceId, exact });
    } catch (err) {
      const e = /** @type {{name?: string, message?: string} | null} */ (err);
      console.warn('microphone:', e && e.name, e && e.message);
      const problem = micErrorInfo(err);
      store.dispatch({ type: 'mic_failed', problem });
      return problem;
    }
    if (store.getState().connection.leaving) {
      stopStream(stream);
      return null;
    }
    const track = stream.getAudioTracks()[0] ?? null;
    if (!track) {
      stopStream(stream);
      /** @type {MicProblem} */
      const problem = { key: 'mic.noAudio', args: {}, code: 'no_audio' };
      store.dispatch({ type: 'mic_failed', problem });
      return problem;
    }
    use(stream, track);
    return null;
  })().finally(() => {
    request = null;
  });
  return request;
}

/**
 * Makes `track` our microphone: sent from now on, replacing any previous one.
 * @param {MediaStream} stream
 * @param {MediaStreamTrack} track
 */
function use(stream, track) {
  const old = store.getState().mic.stream;
  track.enabled = !store.getState().mic.muted;
  track.addEventListener('ended', () => {
    const state = store.getState();
    if (state.mic.track !== track || state.connection.leaving) return;
    store.dispatch({ type: 'mic_ended', track });
  });
  if (old && old !== stream) stopStream(old);
  store.dispatch({ type: 'mic_ready', stream, track });
}

/**
 * A new peer connection: sends our microphone on it, opening it first if we have not tried
 * yet; without one, asks to receive audio only and shows us as muted. `isCurrent` tells
 * whether the connection is still the one in use once the microphone is open.
 * @param {PeerSession} session
 * @param {() => boolean} isCurrent
 */
export async function attach(session, isCurrent) {
  peer = session;
  if (!store.getState().mic.track && !store.getState().mic.problem) await acquire();
  if (!isCurrent() || session.closed) return;
  const { track, stream } = store.getState().mic;
  if (track && stream) {
    session.addLocalTrack(track, stream, 'microphone');
  } else {
    // Listen only: ask for audio without sending any, and show ourselves as muted.
    session.addReceiveOnlyAudio();
    if (!store.getState().mic.muted) store.dispatch({ type: 'muted_set', muted: true, forNoMic: true });
  }
}

/** Sends the current microphone track on the current connection. */
async function publish() {
  const { track, stream } = store.getState().mic;
  if (!peer || peer.closed || !track || !stream) return;
  try {
    await peer.setMicTrack(track, stream);
  } catch (err) {
    console.error('could not send the microphone', err);
    const reason = err instanceof Error ? err.message : String(err);
    ui.toast('dev.switchFailed', { reason }, 'error');
  }
}

/** We muted ourselves for want of a microphone, and now have one: unmute. */
function unmuteIfMutedForNoMic() {
  if (store.getState().mic.mutedForNoMic) store.dispatch({ type: 'muted_set', muted: false });
}

/** Mutes or unmutes our microphone, for everyone. */
export function toggleMuted() {
  store.dispatch({ type: 'muted_set', muted: !store.getState().mic.muted });
}

/** The "Try again" button of the microphone notice. */
async function retry() {
  const button = document.getElementById('mic-retry-btn');
  if (button instanceof HTMLButtonElement) button.disabled = true;
  const problem = await acquire();
  if (problem) {
    // The notice was rebuilt with the (possibly new) reason; put focus back on its button.
    const again = document.getElementById('mic-retry-btn');
    if (again) again.focus();
    return;
  }
  await publish();
  unmuteIfMutedForNoMic();
  ui.toast('mic.ready', {}, 'info', 3000);
}

/**
 * Switches to the microphone `deviceId`. Resolves false if it could not be opened.
 * @param {string} deviceId
 */
export async function choose(deviceId) {
  if (!deviceId) return true;
  const current = store.getState().mic.track;
  if (current && current.getSettings().deviceId === deviceId) return true;
  const problem = await acquire({ deviceId, exact: true });
  if (problem) {
    ui.toast('dev.switchFailed', { reason: i18n.t(problem.key, problem.args) }, 'error');
    return false;
  }
  prefs.devices.setMic(deviceId);
  await publish();
  unmuteIfMutedForNoMic();
  return true;
}

/** Stops the microphone (we are leaving). */
export function release() {
  stopStream(store.getState().mic.stream);
  store.dispatch({ type: 'mic_released' });
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  const mic = state.mic;
  if (mic.track && (!prev || mic.track !== prev.mic.track || mic.muted !== prev.mic.muted)) {
    mic.track.enabled = !mic.muted;
  }
  if (!prev || mic.problem !== prev.mic.problem) {
    const problem = mic.problem;
    if (!problem) {
      ui.setNotice('mic-notice', null);
      return;
    }
    const actions =
      problem.code === 'unsupported'
        ? []
        : [{ key: 'mic.retry', onClick: retry, id: 'mic-retry-btn', primary: true }];
    ui.setNotice('mic-notice', { key: problem.key, args: problem.args, id: 'mic-error-text' }, actions);
  }
}

/** Starts rendering from the store (once). */
export const mount = renderingFromStore(render);
