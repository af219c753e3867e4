// @ts-check
// The check before joining, on the page that asks for a nickname: the microphone's level as
// it hears us, a choice of microphone and speaker, a test sound, and joining muted. The
// microphone opens at once where the browser already allows it, else on "Test microphone"
// (not before: opening it asks for permission). It is closed again when the person joins:
// the room opens its own, with the devices chosen here.

import { canChooseSpeaker, listAudioDevices, micErrorInfo, openMicrophone, stopStream } from './devices.js';
import * as i18n from './i18n.js';
import * as prefs from './prefs.js';
import * as ui from './ui.js';

/** How often the meter is redrawn. */
const METER_MS = 80;
/** The test sound: a chime of two notes, each this long, at a comfortable level. */
const NOTE_S = 0.35;
const NOTES_HZ = [660, 880];
const SOUND_GAIN = 0.25;

/**
 * The open check: the microphone and what measures it.
 * @typedef {object} Check
 * @property {MediaStream} stream
 * @property {AudioContext} ctx
 * @property {AnalyserNode} analyser
 * @property {Float32Array<ArrayBuffer>} buf
 * @property {ReturnType<typeof setInterval>} timer
 */

/** @type {Check | null} */
let check = null;
let options = { raw: false };
let wired = false;
/** How many times the check's microphone was asked for. */
let openings = 0;

/** The AudioContext of the check (one for the page, made on first use). @type {AudioContext | null} */
let audioCtx = null;
function context() {
  if (!audioCtx) audioCtx = new AudioContext();
  if (audioCtx.state === 'suspended') audioCtx.resume().catch(() => {});
  return audioCtx;
}

/**
 * Opens the microphone for the check (again, with `deviceId`).
 * @param {string | null} deviceId
 */
async function openCheck(deviceId) {
  closeCheck();
  showError(null);
  // A newer opening (a click while the first was still asking) wins: the older one's
  // microphone is closed at once.
  const mine = ++openings;
  let stream;
  try {
    stream = await openMicrophone({
      raw: options.raw,
      processing: { noiseSuppression: prefs.processing.noiseSuppression(), echoCancellation: prefs.processing.echoCancellation() },
      deviceId,
      exact: !!deviceId,
    });
  } catch (err) {
    if (mine !== openings) return;
    const problem = micErrorInfo(err);
    showError(i18n.t(problem.key, problem.args));
    return;
  }
  if (ui.$('ask-name').hidden || mine !== openings) {
    stopStream(stream);
    return;
  }
  closeCheck();
  const ctx = context();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const sink = ctx.createGain();
  sink.gain.value = 0;
  analyser.connect(sink);
  sink.connect(ctx.destination);
  const c = { stream, ctx, analyser, buf: new Float32Array(analyser.fftSize), timer: setInterval(() => drawMeter(c), METER_MS) };
  check = c;
  ui.$('check-open').hidden = true;
  ui.$('check-panel').hidden = false;
  await fillDevices();
}

/** Closes the check's microphone. */
export function closeCheck() {
  if (!check) return;
  clearInterval(check.timer);
  stopStream(check.stream);
  check = null;
  setMeter(0);
}

/** @param {Check} c */
function drawMeter(c) {
  c.analyser.getFloatTimeDomainData(c.buf);
  let sum = 0;
  for (const x of c.buf) sum += x * x;
  const rms = Math.sqrt(sum / c.buf.length);
  // From -60 dBFS (nothing) to 0 dBFS (full), as the room's level bars.
  const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
  setMeter(Math.max(0, Math.min(100, Math.round(((db + 60) / 60) * 100))));
}

/** @param {number} percent */
function setMeter(percent) {
  const meter = ui.$('check-meter');
  if (meter.getAttribute('aria-valuenow') !== String(percent)) meter.setAttribute('aria-valuenow', String(percent));
  ui.$('check-meter-fill').style.transform = `scaleX(${percent / 100})`;
}

/** @param {string | null} text */
function showError(text) {
  const p = ui.$('check-error');
  p.textContent = text ?? '';
  p.hidden = !text;
}

async function fillDevices() {
  const { inputs, outputs } = await listAudioDevices();
  const current = check?.stream.getAudioTracks()[0]?.getSettings().deviceId ?? prefs.devices.mic();
  ui.fillDeviceSelect('check-mic-select', inputs, current, 'dev.unnamedMic');
  const speakers = canChooseSpeaker() && outputs.length > 0;
  ui.$('check-speaker-row').hidden = !speakers;
  if (speakers) ui.fillDeviceSelect('check-speaker-select', outputs, prefs.devices.speaker() ?? 'default', 'dev.unnamedSpeaker');
}

/** Plays the test sound on the chosen speaker. */
async function playTestSound() {
  const ctx = context();
  const out = ctx.createMediaStreamDestination();
  const gain = ctx.createGain();
  gain.gain.value = 0;
  gain.connect(out);
  let t = ctx.currentTime + 0.05;
  for (const hz of NOTES_HZ) {
    const osc = ctx.createOscillator();
    osc.frequency.value = hz;
    osc.connect(gain);
    // Soft edges, so that the notes do not click.
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(SOUND_GAIN, t + 0.02);
    gain.gain.setValueAtTime(SOUND_GAIN, t + NOTE_S - 0.05);
    gain.gain.linearRampToValueAtTime(0, t + NOTE_S);
    osc.start(t);
    osc.stop(t + NOTE_S);
    t += NOTE_S;
  }
  const audio = ui.$as('check-sound', HTMLAudioElement);
  const sink = ui.$('check-speaker-row').hidden ? null : ui.$as('check-speaker-select', HTMLSelectElement).value;
  if (sink && typeof audio.setSinkId === 'function') await audio.setSinkId(sink).catch(() => {});
  audio.srcObject = out.stream;
  await audio.play().catch(() => {});
}

/**
 * Shows the check on the ask-name page. `raw`: the address asks for raw audio.
 * @param {{raw: boolean}} opts
 */
export async function show(opts) {
  options = opts;
  ui.$('check-open').hidden = false;
  ui.$('check-panel').hidden = true;
  ui.$('check-speaker-row').hidden = true;
  showError(null);
  if (!wired) {
    wired = true;
    ui.$('check-open').addEventListener('click', () => openCheck(prefs.devices.mic()));
    const micSelect = ui.$as('check-mic-select', HTMLSelectElement);
    micSelect.addEventListener('change', () => openCheck(micSelect.value || null));
    ui.$('check-speaker-test').addEventListener('click', playTestSound);
  }
  // Where the browser already lets us have the microphone, no need to ask for a click.
  try {
    const status = await navigator.permissions.query({ name: /** @type {PermissionName} */ ('microphone') });
    if (status.state === 'granted' && !check && !ui.$('ask-name').hidden) await openCheck(prefs.devices.mic());
  } catch {
    // Browsers that cannot tell: the button opens it.
  }
}

/**
 * What the person chose, as they join: the devices are remembered for the room, and the
 * check's microphone is closed.
 * @returns {{muted: boolean}}
 */
export function finish() {
  if (!ui.$('check-panel').hidden) {
    const micId = ui.$as('check-mic-select', HTMLSelectElement).value;
    if (micId) prefs.devices.setMic(micId);
  }
  if (!ui.$('check-speaker-row').hidden) {
    const speakerId = ui.$as('check-speaker-select', HTMLSelectElement).value;
    if (speakerId) prefs.devices.setSpeaker(speakerId);
  }
  // One still asking for the microphone is dropped when it comes.
  openings += 1;
  closeCheck();
  const audio = ui.$as('check-sound', HTMLAudioElement);
  audio.pause();
  audio.srcObject = null;
  return { muted: ui.$as('join-muted', HTMLInputElement).checked };
}
