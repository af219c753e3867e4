// Shared pieces of the end-to-end tests: the server process, test tones, browsers, and the
// in-page audio measurement.

import { spawn, execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(E2E_DIR, '..');
export const OUT_DIR = path.join(E2E_DIR, 'out');

export const CHROMIUM = process.env.FREE4CHAT_CHROMIUM ?? '/usr/bin/chromium';

/** Where the suite leaves the screenshots the README shows (overwritten on every run). */
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'docs', 'screenshots');

/** The web client's sources (for checks that read them directly). */
export const WEB_DIR = path.join(REPO_ROOT, 'crates', 'server', 'web');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };

export function serverBinary() {
  return process.env.FREE4CHAT_BIN ?? path.join(REPO_ROOT, 'target', 'debug', 'free4chat');
}

export function ensureOutDir() {
  mkdirSync(OUT_DIR, { recursive: true });
  return OUT_DIR;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Writes a sine tone: 48 kHz mono 16-bit, `seconds` long, at half of full scale (-6 dBFS). */
export async function makeTone(file, freq, seconds = 30) {
  await execFileP(
    'sox',
    ['-n', '-r', '48000', '-c', '1', '-b', '16', file, 'synth', String(seconds), 'sine', String(freq), 'vol', '0.5'],
    { timeout: 20_000 },
  );
  return file;
}

/** Writes `seconds` of silence in the same format as `makeTone`. */
export async function makeSilence(file, seconds = 30) {
  await execFileP('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', file, 'trim', '0', String(seconds)], { timeout: 20_000 });
  return file;
}

/**
 * GET `url`; resolves with {status, body}. Over HTTPS a self-signed certificate is accepted:
 * the tests made it.
 */
export function httpGet(url, timeoutMs = 5000) {
  if (!url.startsWith('https:')) {
    return fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(async (res) => ({
      status: res.status,
      body: await res.text(),
    }));
  }
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/**
 * Starts the server on 127.0.0.1:`port` and waits for /api/health.
 * Its output goes to `logFile`, and the last lines are kept for failure reports.
 * `restart()` stops it and starts it again on the same port (the same address for the pages).
 * `extraArgs` are added to its command line; `https: true` when they make it serve HTTPS.
 */
export async function startServer({ port, logFile, healthTimeoutMs = 20_000, extraArgs = [], https: secure = false }) {
  const bin = serverBinary();
  if (!existsSync(bin)) {
    throw new Error(`server binary not found at ${bin}; build it first (cargo build) or set FREE4CHAT_BIN`);
  }
  const args = ['--listen', `127.0.0.1:${port}`, '--media-port', '0', '--public-ip', '127.0.0.1', ...extraArgs];
  const base = `${secure ? 'https' : 'http'}://127.0.0.1:${port}`;
  const log = createWriteStream(logFile);
  const tail = [];
  const keep = (chunk) => {
    log.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      tail.push(line);
      if (tail.length > 200) tail.shift();
    }
  };

  let proc = null; // {child, exit, exited}
  const spawnOne = () => {
    const child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    const p = { child, exit: null, exited: null };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    p.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        p.exit = { code, signal };
        resolve(p.exit);
      });
    });
    child.on('error', (err) => {
      p.exit = { error: err };
    });
    proc = p;
    return p;
  };

  /** Ends the current process: `signal` first, SIGKILL if it lingers. */
  const endProcess = async (signal = 'SIGTERM') => {
    const p = proc;
    if (!p || p.exit !== null) return p ? p.exit : null;
    p.child.kill(signal);
    const done = await Promise.race([p.exited, sleep(3000).then(() => null)]);
    if (done === null && p.exit === null) {
      p.child.kill('SIGKILL');
      await Promise.race([p.exited, sleep(2000)]);
    }
    return p.exit;
  };

  const waitHealthy = async () => {
    const deadline = Date.now() + healthTimeoutMs;
    let lastProblem = 'no answer yet';
    while (Date.now() < deadline) {
      if (proc.exit !== null) {
        throw new Error(`server exited during start-up (${JSON.stringify(proc.exit)}):\n${tail.join('\n')}`);
      }
      try {
        const { status } = await httpGet(`${base}/api/health`, 1000);
        if (status === 200) return;
        lastProblem = `status ${status}`;
      } catch (err) {
        lastProblem = err.message;
      }
      await sleep(150);
    }
    throw new Error(`server not healthy after ${healthTimeoutMs} ms (${lastProblem}):\n${tail.join('\n')}`);
  };

  const server = {
    port,
    base,
    logFile,
    get child() {
      return proc.child;
    },
    tail: () => tail.join('\n'),
    /**
     * Stops the server (`signal`: SIGTERM lets it say goodbye to every member; SIGKILL drops
     * every connection without a word), waits `downMs`, and starts it again on the same port.
     */
    async restart({ signal = 'SIGTERM', downMs = 0 } = {}) {
      const exit = await endProcess(signal);
      keep(Buffer.from(`--- e2e: server stopped (${JSON.stringify(exit)}); restarting ---\n`));
      if (downMs > 0) await sleep(downMs);
      spawnOne();
      await waitHealthy();
      return exit;
    },
    /**
     * Stops the server with `signal` and leaves it stopped; resolves with how it exited.
     * `graceMs`: how long it may take before it is killed.
     */
    async halt(signal = 'SIGTERM', graceMs = 3000) {
      const p = proc;
      if (!p || p.exit !== null) return p ? p.exit : null;
      p.child.kill(signal);
      const done = await Promise.race([p.exited, sleep(graceMs).then(() => null)]);
      if (done === null && p.exit === null) {
        p.child.kill('SIGKILL');
        await Promise.race([p.exited, sleep(2000)]);
      }
      keep(Buffer.from(`--- e2e: server stopped with ${signal} (${JSON.stringify(p.exit)}) ---\n`));
      return p.exit;
    },
    /** Starts a halted server again on the same port and waits until it is healthy. */
    async resume() {
      spawnOne();
      await waitHealthy();
    },
    async stop() {
      await endProcess('SIGTERM');
      await new Promise((resolve) => log.end(resolve));
    },
  };

  spawnOne();
  try {
    await waitHealthy();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** The admin token of the servers `startAdminServer` starts. */
export const ADMIN_TOKEN = 'an-operator-token-for-tests';

/**
 * Starts a free4chat server with its admin API on a free port of its own, its log in
 * `e2e/out/server-<name>.log`.
 * @param {string} name
 * @returns {Promise<{server: Awaited<ReturnType<typeof startServer>>, adminOrigin: string}>}
 */
export async function startAdminServer(name) {
  const adminPort = await freePort();
  const server = await startServer({
    port: await freePort(),
    logFile: path.join(OUT_DIR, `server-${name}.log`),
    extraArgs: ['--admin-listen', `127.0.0.1:${adminPort}`, '--admin-token', ADMIN_TOKEN],
  });
  return { server, adminOrigin: `http://127.0.0.1:${adminPort}` };
}

/**
 * Whether the page's chat log shows `text`; to pass to `page.waitForFunction`, which runs it in
 * the page.
 * @param {string} text
 */
export function chatShows(text) {
  return document.querySelector('#chat-log')?.textContent?.includes(text) ?? false;
}

/**
 * Whether something accepts TCP connections on 127.0.0.1:`port` now.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.end();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

/**
 * Starts a redis-server of the test's own on 127.0.0.1:`port`, saving nothing to disk, and waits
 * until it answers. `restart()` kills it and starts it again (empty) on the same port.
 */
export async function startRedis({ port, dir, logFile }) {
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', logFile];
  let child = null;
  const up = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    child.on('error', () => {});
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await canConnect(port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not start on port ${port} (is the redis-server package installed?)`);
  };
  const down = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const c = child;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await Promise.race([exited, sleep(3000)]);
  };
  await up();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: down,
    start: up,
  };
}

/**
 * Starts nginx as a TCP load balancer (stream module, round robin) on 127.0.0.1:`port` in front
 * of `upstreams` (ports on 127.0.0.1), with its own configuration, pid and log files under `dir`.
 * It knows nothing of rooms: each connection goes to the next node that accepts it.
 */
export async function startNginx({ port, upstreams, dir }) {
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  const streamModule = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find(existsSync);
  if (!streamModule) throw new Error('nginx stream module not found (install libnginx-mod-stream)');
  writeFileSync(
    conf,
    [
      `load_module ${streamModule};`,
      'daemon off;',
      'worker_processes 1;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      `error_log ${path.join(dir, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'stream {',
      '  upstream nodes {',
      ...upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`),
      '  }',
      '  server {',
      `    listen 127.0.0.1:${port};`,
      '    proxy_pass nodes;',
      '    proxy_connect_timeout 1s;',
      '    proxy_timeout 1h;',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn('nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
  child.on('error', () => {});
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited at start (code ${child.exitCode}); see ${dir}/error.log`);
    if (await canConnect(port)) break;
    await sleep(50);
  }
  return {
    base: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      if ((await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])) === false) child.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Browsers

/** Chromium switches every test browser gets, besides its own fake microphone file. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Features we switch off on top of the launcher's own list. */
const EXTRA_DISABLED_FEATURES = ['WebRtcHideLocalIpsWithMdns'];

let launcherFeatureArg; // the launcher's own --disable-features switch, once known

/**
 * Chromium honours only the last --disable-features switch, so ours must carry the launcher's
 * list too, or the launcher's (which keeps the browser from calling home) would be dropped.
 * The launcher's switch is read once from a short-lived browser's command line.
 */
async function launcherDisabledFeatures() {
  if (launcherFeatureArg !== undefined) return launcherFeatureArg;
  const probe = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
  try {
    const args = probe.process().spawnargs;
    launcherFeatureArg = args.filter((a) => a.startsWith('--disable-features=')).at(-1) ?? null;
  } finally {
    await probe.close();
  }
  return launcherFeatureArg;
}

/**
 * Launches a headless Chromium whose microphone plays `wavFile` (looped; without one, Chromium's
 * own fake microphone beeps). `grantMic: false` leaves out the switch that answers permission
 * prompts with "allow", so pages are refused the microphone.
 */
export async function launchBrowser(wavFile, { grantMic = true, extraArgs = [] } = {}) {
  const base = await launcherDisabledFeatures();
  const features = [
    ...(base ? base.slice('--disable-features='.length).split(',').filter(Boolean) : []),
    ...EXTRA_DISABLED_FEATURES,
  ];
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    ignoreDefaultArgs: base ? [base] : undefined,
    args: [
      ...CHROMIUM_ARGS.filter((a) => grantMic || a !== '--use-fake-ui-for-media-stream'),
      `--disable-features=${[...new Set(features)].join(',')}`,
      ...(wavFile ? [`--use-file-for-fake-audio-capture=${wavFile}`] : []),
      ...extraArgs,
    ],
  });
}

/**
 * Opens a page in a fresh context of `browser` (`contextOptions`: viewport, locale, …), recording
 * its console and errors. `init`: a function run in the page before its scripts (with `initArg`).
 * Returns {label, page, context, log, pageErrors}.
 */
export async function openPage(browser, url, label, { contextOptions = {}, init, initArg } = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  if (init) await page.addInitScript(init, initArg);
  const handle = { label, page, context, log: [], pageErrors: [] };
  page.on('console', (m) => handle.log.push(`[${label}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (err) => {
    handle.pageErrors.push(err.message);
    handle.log.push(`[${label}] pageerror: ${err.message}`);
  });
  await page.goto(url, { timeout: 15_000, waitUntil: 'load' });
  return handle;
}

// ---------------------------------------------------------------------------------------------
// In-page probes (these functions run inside the page: they must be self-contained)

/** A plain snapshot of window.f4c. */
export function f4cSnapshot() {
  const f = window.f4c;
  if (!f) return null;
  return {
    state: f.state,
    selfId: f.selfId,
    members: Object.fromEntries([...f.members].map(([id, m]) => [id, { ...m }])),
    tracks: [...f.tracks.values()],
    audioSlots: f.audioSlots,
    slotVoices: Object.fromEntries(f.slotVoices),
    remoteMedia: [...f.remoteMedia.values()].map((m) => ({
      key: m.key,
      peer: m.peer,
      slot: m.slot,
      kind: m.kind,
      stream: m.stream.id,
      track: { kind: m.track.kind, readyState: m.track.readyState, muted: m.track.muted },
    })),
    pc: f.pc ? { connectionState: f.pc.connectionState, signalingState: f.pc.signalingState } : null,
    chat: f.chat,
    everSpoke: [...f.everSpoke],
    errors: f.errors,
    bye: f.bye,
    micError: f.micError,
  };
}

/**
 * Listens to every remote audio stream through Web Audio and reports, per stream, its key, the
 * member heard on it (`id`: its publisher, or on an audio slot the member the page names for
 * the slot most often while measuring, else null; `ids`: every member named for it), the
 * dominant frequency (at or above 100 Hz), its level in dB and the signal's RMS.
 */
export async function measureRemoteTones({ durationMs = 2000, samples = 10, fftSize = 8192 }) {
  const sleepIn = (ms) => new Promise((r) => setTimeout(r, ms));
  const median = (xs) => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (v.length === 0) return null;
    const mid = Math.floor(v.length / 2);
    return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  };
  const ctx = new AudioContext();
  await ctx.resume();
  const sink = ctx.createGain();
  sink.gain.value = 0;
  sink.connect(ctx.destination);
  const probes = [];
  for (const media of window.f4c.remoteMedia.values()) {
    if (media.kind !== 'audio') continue;
    const source = ctx.createMediaStreamSource(media.stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = fftSize;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    analyser.connect(sink);
    probes.push({
      media,
      named: [],
      key: media.key,
      analyser,
      spectrum: new Float32Array(analyser.frequencyBinCount),
      wave: new Float32Array(analyser.fftSize),
      peaks: [],
      levels: [],
      rms: [],
    });
  }
  const binHz = ctx.sampleRate / fftSize;
  const firstBin = Math.ceil(100 / binHz);
  await sleepIn(300); // let the analysers fill once
  for (let i = 0; i < samples; i++) {
    await sleepIn(durationMs / samples);
    for (const p of probes) {
      p.named.push(p.media.peer ?? window.f4c.slotVoices.get(p.key)?.member ?? null);
      p.analyser.getFloatFrequencyData(p.spectrum);
      let best = -1;
      for (let k = firstBin; k < p.spectrum.length; k++) {
        if (best < 0 || p.spectrum[k] > p.spectrum[best]) best = k;
      }
      let hz = best * binHz;
      const level = p.spectrum[best];
      // Refine the peak between bins with a parabola through its neighbours.
      if (best > firstBin && best < p.spectrum.length - 1) {
        const [a, b, c] = [p.spectrum[best - 1], level, p.spectrum[best + 1]];
        const denom = a - 2 * b + c;
        if (Number.isFinite(denom) && denom !== 0) hz += (0.5 * (a - c) / denom) * binHz;
      }
      p.peaks.push(Number.isFinite(level) ? hz : NaN);
      p.levels.push(level);
      p.analyser.getFloatTimeDomainData(p.wave);
      let sum = 0;
      for (const x of p.wave) sum += x * x;
      p.rms.push(Math.sqrt(sum / p.wave.length));
    }
  }
  const sampleRate = ctx.sampleRate;
  await ctx.close();
  const mostNamed = (names) => {
    const counts = new Map();
    for (const n of names) if (n !== null) counts.set(n, (counts.get(n) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  };
  return probes.map((p) => ({
    id: mostNamed(p.named),
    ids: [...new Set(p.named.filter((n) => n !== null))],
    key: p.key,
    freq: median(p.peaks),
    level: median(p.levels),
    rms: median(p.rms),
    peaks: p.peaks.map((x) => Math.round(x * 10) / 10),
    sampleRate,
  }));
}

/**
 * Listens to what the page plays (every remote audio stream whose element is not muted, mixed
 * in one analyser) and reports, for each frequency in `freqs`, the level in dB of the loudest
 * bin within `spreadHz` of it (the median over the samples), and the median level of the bins
 * away from every one of them (the floor).
 */
export async function measureTonesPresent({ freqs, durationMs = 2000, samples = 10, fftSize = 8192, spreadHz = 15 }) {
  const sleepIn = (ms) => new Promise((r) => setTimeout(r, ms));
  const median = (xs) => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (v.length === 0) return -Infinity;
    const mid = Math.floor(v.length / 2);
    return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  };
  const ctx = new AudioContext();
  await ctx.resume();
  const sink = ctx.createGain();
  sink.gain.value = 0;
  sink.connect(ctx.destination);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = fftSize;
  analyser.smoothingTimeConstant = 0;
  analyser.connect(sink);
  const playing = [...document.querySelectorAll('#remote-audio audio')].filter((a) => !a.muted && a.srcObject);
  for (const audio of playing) ctx.createMediaStreamSource(audio.srcObject).connect(analyser);
  const binHz = ctx.sampleRate / fftSize;
  const spectrum = new Float32Array(analyser.frequencyBinCount);
  const near = (k) => freqs.some((f) => Math.abs(k * binHz - f) <= spreadHz * 4);
  const levels = freqs.map(() => []);
  const floors = [];
  await sleepIn(300); // let the analyser fill once
  for (let i = 0; i < samples; i++) {
    await sleepIn(durationMs / samples);
    analyser.getFloatFrequencyData(spectrum);
    freqs.forEach((f, j) => {
      let best = -Infinity;
      for (let k = Math.max(0, Math.floor((f - spreadHz) / binHz)); k <= Math.ceil((f + spreadHz) / binHz); k++) {
        if (k < spectrum.length && spectrum[k] > best) best = spectrum[k];
      }
      levels[j].push(best);
    });
    const away = [];
    for (let k = Math.ceil(100 / binHz); k < Math.floor(4000 / binHz); k++) if (!near(k)) away.push(spectrum[k]);
    floors.push(median(away));
  }
  await ctx.close();
  return {
    streams: playing.length,
    levels: Object.fromEntries(freqs.map((f, j) => [f, Math.round(median(levels[j]) * 10) / 10])),
    floor: Math.round(median(floors) * 10) / 10,
  };
}

// ---------------------------------------------------------------------------------------------
// Waiting for the page

/** Waits until the page is in its room with `members` members (ourselves included). */
export function waitJoined(page, members, timeout = 30_000) {
  return page.waitForFunction(
    (n) => {
      const f = window.f4c;
      return !!f && f.state === 'joined' && f.members.size === n;
    },
    members,
    { timeout, polling: 200 },
  );
}

/**
 * Waits until the page receives live audio from exactly `count` other members: on streams of
 * their own, one each; on audio slots (all of them live), `count` members heard on them.
 */
export function waitStreams(page, count, timeout = 30_000) {
  return page.waitForFunction(
    (n) => {
      const f = window.f4c;
      if (!f || f.state !== 'joined') return false;
      const audio = [...f.remoteMedia.values()].filter((m) => m.kind === 'audio');
      const live = audio.every((m) => m.track.readyState === 'live' && m.stream.getTracks().includes(m.track));
      const heard = new Set(audio.map((m) => m.peer ?? f.slotVoices.get(m.key)?.member).filter((id) => id !== undefined));
      const streams = f.audioSlots > 0 ? audio.length === f.audioSlots && audio.every((m) => m.slot !== null) : audio.length === n;
      return live && streams && heard.size === n;
    },
    count,
    { timeout, polling: 250 },
  );
}

/**
 * Runs a test body; on failure leaves screenshots, page state and console logs under e2e/out/,
 * and the tail of the server's output, then rethrows. `context()` gives the pages and server at
 * the time of failure; `observe(page)`, if given, adds what else a test wants recorded.
 */
export async function withDiagnostics(name, context, body, observe) {
  try {
    await body();
  } catch (err) {
    await saveDiagnostics(name, err, context(), observe);
    throw err;
  }
}

async function saveDiagnostics(name, err, { pages, server }, observe) {
  try {
    ensureOutDir();
    const safe = (s) => s.replace(/[^\w.-]+/g, '_');
    const report = [`# ${name} failed: ${err && err.stack ? err.stack : err}`];
    for (const [i, h] of pages.entries()) {
      const file = path.join(OUT_DIR, safe(`${name}-${i}-${h.label}.png`));
      await h.page.screenshot({ path: file, fullPage: true, timeout: 5000 }).catch(() => {});
      const state = await h.page.evaluate(f4cSnapshot).catch((e) => `unavailable: ${e.message}`);
      report.push(`## page ${i} (${h.label}) ${h.page.url()}`, JSON.stringify(state, null, 2));
      if (observe) {
        const seen = await observe(h.page).catch(() => null);
        report.push(`## page ${i} (${h.label}) observed`, JSON.stringify(seen, null, 2));
      }
      report.push(`## page ${i} (${h.label}) console`, ...h.log);
    }
    if (server) report.push('## server output (tail)', server.tail());
    const reportFile = path.join(OUT_DIR, safe(`${name}.log`));
    writeFileSync(reportFile, report.join('\n') + '\n');
    console.error(`diagnostics: ${reportFile}; server log: ${server ? server.logFile : 'none'}`);
    if (server) console.error(`--- server output (tail) ---\n${server.tail()}`);
  } catch (diagErr) {
    console.error('could not save diagnostics:', diagErr);
  }
}
