// @ts-check
// "You are muted. Talking?": while our microphone is muted, a copy of its track (the track we
// send is disabled, so it carries silence) is measured here, and when the person speaks for a
// moment the room says so, with a button to unmute. Nothing of the copy leaves the page.

import * as mic from './mic.js';
import { renderingFromStore, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */

/** How often the level is read. */
const TICK_MS = 100;
/** The level (RMS, full scale 1) from which a moment counts as speech: about -40 dBFS. */
const SPEECH_RMS = 0.01;
/** Speech in this many of the last `WINDOW` readings is talking. */
const WINDOW = 10;
const LOUD_READINGS = 5;
/** The notice goes after this long without speech. */
const QUIET_MS = 4000;

/**
 * The measuring of one muted track.
 * @typedef {object} Watch
 * @property {MediaStreamTrack} source The microphone track it copies.
 * @property {MediaStreamTrack} copy
 * @property {AudioContext} ctx
 * @property {AnalyserNode} analyser
 * @property {Float32Array<ArrayBuffer>} buf
 * @property {boolean[]} recent Speech in each of the last readings.
 * @property {number} lastSpeech When speech was last heard (performance.now()).
 * @property {ReturnType<typeof setInterval>} timer
 */

/** @type {Watch | null} */
let watch = null;
let shown = false;

/** @param {MediaStreamTrack} track */
function start(track) {
  const Ctx = window.AudioContext;
  if (!Ctx) return;
  const copy = track.clone();
  copy.enabled = true;
  let ctx;
  try {
    ctx = new Ctx();
  } catch {
    copy.stop();
    return;
  }
  ctx.resume().catch(() => {});
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(new MediaStream([copy])).connect(analyser);
  // Analysers only run when something downstream pulls them: a silent sink does.
  const sink = ctx.createGain();
  sink.gain.value = 0;
  analyser.connect(sink);
  sink.connect(ctx.destination);
  const w = {
    source: track,
    copy,
    ctx,
    analyser,
    buf: new Float32Array(analyser.fftSize),
    recent: /** @type {boolean[]} */ ([]),
    lastSpeech: -Infinity,
    timer: setInterval(() => measure(w), TICK_MS),
  };
  watch = w;
}

function stop() {
  if (watch) {
    clearInterval(watch.timer);
    watch.copy.stop();
    watch.ctx.close().catch(() => {});
    watch = null;
  }
  show(false);
}

/** @param {Watch} w */
function measure(w) {
  if (w.ctx.state === 'suspended') w.ctx.resume().catch(() => {});
  w.analyser.getFloatTimeDomainData(w.buf);
  let sum = 0;
  for (const x of w.buf) sum += x * x;
  const loud = Math.sqrt(sum / w.buf.length) >= SPEECH_RMS;
  w.recent.push(loud);
  if (w.recent.length > WINDOW) w.recent.shift();
  const now = performance.now();
  if (loud) w.lastSpeech = now;
  if (w.recent.filter(Boolean).length >= LOUD_READINGS) show(true);
  else if (shown && now - w.lastSpeech > QUIET_MS) show(false);
}

/** @param {boolean} on */
function show(on) {
  if (on === shown) return;
  shown = on;
  ui.setNotice(
    'hot-mic-notice',
    on ? { key: 'hot.notice', args: {} } : null,
    on ? [{ key: 'hot.unmute', onClick: () => store.dispatch({ type: 'muted_set', muted: false }), primary: true }] : [],
  );
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  if (prev && state.mic === prev.mic && state.connection.status === prev.connection.status) return;
  const track = state.mic.track;
  const want = state.mic.muted && !state.mic.mutedForNoMic && track !== null && track.readyState === 'live' && state.connection.status === 'joined';
  if (want && watch && watch.source === track) return;
  stop();
  if (want && track) start(track);
}

const startRendering = renderingFromStore(render);

/** Starts watching for speech while muted (once). */
export function mount() {
  // The microphone may be closed and opened again (other processing): our copy must go too.
  mic.onBeforeReopen(stop);
  startRendering();
}
