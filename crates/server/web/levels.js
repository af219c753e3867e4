// @ts-check
// The live audio level of each member, drawn as a small bar under their name. One AudioContext
// for the page; each stream of a member's own feeds an AnalyserNode, read about 15 times a
// second while the page is visible. Members heard on audio slots are measured elsewhere (from
// the audio level their packets carry) and handed in with `setExternal`. Purely visual:
// nothing here changes what is heard.

const FRAME_MS = 66;
const FLOOR_DB = -60;

/**
 * A level in dB, from `FLOOR_DB` (silence) to 0, as a bar's length from 0 to 1.
 * @param {number} db
 */
function barOf(db) {
  return Math.max(0, Math.min(1, (db - FLOOR_DB) / -FLOOR_DB));
}

/**
 * An audio level as RTCRtpContributingSource reports it (linear, 1 = 0 dBov) as a bar's length.
 * @param {number} audioLevel
 */
export function meterLevel(audioLevel) {
  return audioLevel > 0 ? barOf(20 * Math.log10(audioLevel)) : 0;
}

/**
 * @typedef {object} Meter
 * @property {MediaStream} stream
 * @property {MediaStreamAudioSourceNode} source
 * @property {AnalyserNode} analyser
 * @property {Float32Array<ArrayBuffer>} buf
 * @property {number} level
 */

/**
 * A bar's next length: it rises at once and falls gently, so that it reads as a level rather
 * than flicker.
 * @param {number} level
 * @param {number} target
 */
function follow(level, target) {
  return target > level ? target : level * 0.7 + target * 0.3;
}

export class LevelMeters {
  /**
   * `target(id)` returns the element whose width shows member `id`'s level, or null.
   * @param {(id: string) => HTMLElement | null} target
   */
  constructor(target) {
    this.target = target;
    /** @type {AudioContext | null} */
    this.ctx = null;
    /** @type {GainNode | null} */
    this.sink = null;
    /** @type {Map<string, Meter>} */
    this.meters = new Map();
    /** Levels measured elsewhere, by member: what the bar moves towards, and where it is. @type {Map<string, {target: number, level: number}>} */
    this.external = new Map();
    this.raf = 0;
    this.last = 0;
    this.tick = this.tick.bind(this);
  }

  context() {
    if (this.ctx) return this.ctx;
    const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!Ctx) return null;
    try {
      this.ctx = new Ctx();
    } catch {
      return null;
    }
    // Analysers only run when something downstream pulls them: a silent sink does.
    this.sink = this.ctx.createGain();
    this.sink.gain.value = 0;
    this.sink.connect(this.ctx.destination);
    return this.ctx;
  }

  /** Starts the context after a user gesture if the browser kept it suspended. */
  resume() {
    if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  /**
   * Measures `stream` as member `id`'s level (nothing changes if it already does).
   * @param {string} id
   * @param {MediaStream} stream
   */
  attach(id, stream) {
    const existing = this.meters.get(id);
    if (existing && existing.stream === stream) return;
    this.detach(id);
    if (!stream || stream.getAudioTracks().length === 0) return;
    const ctx = this.context();
    if (!ctx || !this.sink) return;
    let source;
    try {
      source = ctx.createMediaStreamSource(stream);
    } catch {
      return;
    }
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    analyser.connect(this.sink);
    this.meters.set(id, { stream, source, analyser, buf: new Float32Array(analyser.fftSize), level: 0 });
    this.start();
  }

  /** @param {string} id */
  detach(id) {
    const m = this.meters.get(id);
    if (!m) return;
    this.meters.delete(id);
    try {
      m.source.disconnect();
      m.analyser.disconnect();
    } catch {
      // Already disconnected.
    }
    const bar = this.target(id);
    if (bar) bar.style.transform = 'scaleX(0)';
  }

  detachAll() {
    for (const id of [...this.meters.keys()]) this.detach(id);
    this.setExternal(new Map());
  }

  /**
   * The levels (0…1) of members measured elsewhere, replacing the last ones: a member left
   * out has their bar emptied. A member measured here too keeps this module's measure.
   * @param {Map<string, number>} levels
   */
  setExternal(levels) {
    for (const id of [...this.external.keys()]) {
      if (levels.has(id)) continue;
      this.external.delete(id);
      const bar = this.meters.has(id) ? null : this.target(id);
      if (bar) bar.style.transform = 'scaleX(0)';
    }
    for (const [id, target] of levels) {
      const known = this.external.get(id);
      this.external.set(id, { target, level: known ? known.level : 0 });
    }
    this.start();
  }

  /** The members measured. */
  ids() {
    return [...this.meters.keys()];
  }

  /**
   * The last measured level of member `id`, 0…1.
   * @param {string} id
   */
  level(id) {
    return this.meters.get(id)?.level ?? this.external.get(id)?.level ?? 0;
  }

  start() {
    if (!this.raf && (this.meters.size > 0 || this.external.size > 0)) this.raf = requestAnimationFrame(this.tick);
  }

  /** @param {number} now */
  tick(now) {
    this.raf = 0;
    if (this.meters.size === 0 && this.external.size === 0) return;
    if (now - this.last >= FRAME_MS) {
      this.last = now;
      for (const [id, m] of this.meters) {
        m.analyser.getFloatTimeDomainData(m.buf);
        let sum = 0;
        for (let i = 0; i < m.buf.length; i++) sum += m.buf[i] * m.buf[i];
        const rms = Math.sqrt(sum / m.buf.length);
        m.level = follow(m.level, rms > 0 ? barOf(20 * Math.log10(rms)) : 0);
        this.draw(id, m.level);
      }
      for (const [id, m] of this.external) {
        if (this.meters.has(id)) continue;
        m.level = follow(m.level, m.target);
        this.draw(id, m.level);
      }
    }
    this.raf = requestAnimationFrame(this.tick);
  }

  /** @param {string} id @param {number} level */
  draw(id, level) {
    const bar = this.target(id);
    if (bar) bar.style.transform = `scaleX(${level.toFixed(3)})`;
  }
}
