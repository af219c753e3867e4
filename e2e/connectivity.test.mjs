// End to end: connecting from networks that block the direct path. Two headless Chromium
// browsers, each speaking its own tone, must hear each other through:
//   - the integrated TURN server, relayed over UDP, over TCP and over TLS (on a page served
//     over HTTPS by the same binary);
//   - an external TURN server (Debian's coturn, started here with a shared secret);
//   - ICE-TCP straight to the media workers, with every UDP candidate of the server removed.
// Each test proves the path by the browser's selected candidate pair, and that the tone arrives.
//
// Browsers are pushed onto a path the way a restrictive network would: relay-only ICE with only
// the TURN URL under test, or the server's UDP candidates dropped before the browser sees them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

import {
  OUT_DIR,
  ensureOutDir,
  freePort,
  httpGet,
  launchBrowser,
  makeTone,
  measureRemoteTones,
  openPage,
  sleep,
  startServer,
  waitStreams,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const execFileP = promisify(execFile);

const PEOPLE = [
  { name: 'Ana', freq: 330 },
  { name: 'Ben', freq: 550 },
];
const FREQ_TOLERANCE_HZ = 15;
const CONNECT_TIMEOUT_MS = 30_000;

let tmpDir;
let tones;
/** A certificate made for these tests, and its SPKI hash for Chromium to trust it by. */
let cert;

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-net-'));
  tones = await Promise.all(PEOPLE.map((p) => makeTone(path.join(tmpDir, `tone-${p.freq}.wav`), p.freq, 30)));
  cert = await makeCertificate(tmpDir);
}, { timeout: 60_000 });

after(() => {
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
});

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl. */
async function makeCertificate(dir) {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await execFileP('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  // Chromium trusts exactly this key with --ignore-certificate-errors-spki-list.
  const { stdout: spkiDer } = await execFileP(
    'sh',
    ['-c', `openssl x509 -in '${certFile}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`],
  );
  return { certFile, keyFile, spki: spkiDer.trim() };
}

/**
 * Runs in the page before its scripts. `opts.relay` ('udp' | 'tcp' | 'tls' | 'any'): ICE may
 * use relayed candidates only, and only TURN URLs of that transport are kept. `opts.dropUdp`:
 * the server's UDP candidates are removed from its SDP before the browser sees them.
 */
function steerIce(opts) {
  const Native = window.RTCPeerConnection;
  const keep = (url) => {
    if (opts.relay === 'any') return true;
    if (opts.relay === 'tls') return url.startsWith('turns:');
    return url.startsWith('turn:') && url.includes(`transport=${opts.relay}`);
  };
  const withoutUdp = (sdp) =>
    sdp
      .split('\r\n')
      .filter((line) => !/^a=candidate:\S+ \d+ udp /i.test(line))
      .join('\r\n');
  class Steered extends Native {
    constructor(config = {}) {
      const c = { ...config };
      window.__iceServers = config.iceServers ?? [];
      if (opts.relay) {
        c.iceTransportPolicy = 'relay';
        c.iceServers = (config.iceServers ?? [])
          .map((s) => ({ ...s, urls: [].concat(s.urls).filter(keep) }))
          .filter((s) => s.urls.length > 0);
      }
      super(c);
    }
    setRemoteDescription(desc) {
      if (opts.dropUdp && desc && desc.sdp) desc = { type: desc.type, sdp: withoutUdp(desc.sdp) };
      return super.setRemoteDescription(desc);
    }
  }
  window.RTCPeerConnection = Steered;
}

/** In the page: the selected candidate pair of the connection with the server. */
async function selectedPair() {
  const pc = window.f4c && window.f4c.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const l = stats.get(pair.localCandidateId);
  const r = stats.get(pair.remoteCandidateId);
  return {
    state: pair.state,
    bytesReceived: pair.bytesReceived,
    local: { type: l.candidateType, protocol: l.protocol, relayProtocol: l.relayProtocol, url: l.url, address: l.address },
    remote: { type: r.candidateType, protocol: r.protocol, address: r.address, port: r.port },
    iceServers: window.__iceServers,
  };
}

/** Waits until a TCP port on 127.0.0.1 accepts connections. */
async function waitListening(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/**
 * Starts a server with `serverArgs`, two browsers steered by `steer`, puts both in one room,
 * and checks that each hears the other's tone over a pair `expectPair` accepts.
 */
async function talkThrough(name, { serverArgs, https = false, steer, browserArgs = [], expectPair, expectStats }) {
  const port = await freePort();
  const server = await startServer({
    port,
    logFile: path.join(OUT_DIR, `server-${name}.log`),
    extraArgs: serverArgs,
    https,
  });
  const browsers = [];
  const pages = [];
  try {
    await diagnose(name, () => ({ pages, server }), async () => {
      for (const tone of tones) browsers.push(await launchBrowser(tone, { extraArgs: browserArgs }));
      const room = `${name}-${randomBytes(4).toString('hex')}`;
      for (const [i, p] of PEOPLE.entries()) {
        const url = `${server.base}/room/${room}?name=${p.name}&audio=raw`;
        pages.push(await openPage(browsers[i], url, p.name, { init: steerIce, initArg: steer }));
      }
      await Promise.all(
        pages.map((h) =>
          h.page.waitForFunction(
            () => {
              const f = window.f4c;
              return (
                f &&
                f.state === 'joined' &&
                f.pc &&
                f.pc.connectionState === 'connected'
              );
            },
            null,
            { timeout: CONNECT_TIMEOUT_MS, polling: 250 },
          ),
        ),
      );
      await Promise.all(pages.map((h) => waitStreams(h.page, 1, CONNECT_TIMEOUT_MS)));
      for (const [i, h] of pages.entries()) {
        const pair = await h.page.evaluate(selectedPair);
        assert.ok(pair, `${PEOPLE[i].name}: a selected candidate pair`);
        expectPair(pair, PEOPLE[i].name);
        const heard = (await h.page.evaluate(measureRemoteTones, { durationMs: 2000, samples: 10 })).filter((m) => m.id !== null);
        const other = PEOPLE[1 - i];
        assert.equal(heard.length, 1, `${PEOPLE[i].name} hears one member: ${JSON.stringify(heard)}`);
        assert.ok(
          Math.abs(heard[0].freq - other.freq) <= FREQ_TOLERANCE_HZ,
          `${PEOPLE[i].name} hears ${other.freq} Hz, got ${JSON.stringify(heard[0])}`,
        );
      }
      if (expectStats) expectStats(await serverStats(server));
    });
  } finally {
    await Promise.allSettled(browsers.map((b) => b.close()));
    await server.stop();
  }
  return server;
}

async function serverStats(server) {
  const { status, body } = await httpGet(`${server.base}/api/stats`);
  assert.equal(status, 200);
  return JSON.parse(body);
}

/** The server saw both members relayed by its own TURN server. */
function relayedByUs(stats) {
  assert.ok(stats.turn, 'the integrated TURN server is running');
  assert.ok(stats.turn.allocations >= 2, `two members hold allocations: ${JSON.stringify(stats.turn)}`);
  assert.equal(stats.turn.refused_peer, 0, 'nothing was refused');
}

/** The integrated TURN server on `udpTcp` (UDP and TCP) and, with TLS, on `tls`. */
async function turnPorts() {
  const udpTcp = await freePort();
  let tls = await freePort();
  while (tls === udpTcp) tls = await freePort();
  return { udpTcp, tls };
}

for (const transport of ['udp', 'tcp']) {
  test(`relay through the integrated TURN server over ${transport.toUpperCase()}`, { timeout: 90_000 }, async () => {
    const { udpTcp } = await turnPorts();
    await talkThrough(`turn-${transport}`, {
      serverArgs: ['--turn-udp', `127.0.0.1:${udpTcp}`, '--turn-tcp', `127.0.0.1:${udpTcp}`],
      steer: { relay: transport },
      expectPair: (pair, who) => {
        assert.equal(pair.local.type, 'relay', `${who}: ${JSON.stringify(pair)}`);
        assert.equal(pair.local.relayProtocol, transport, `${who}: ${JSON.stringify(pair)}`);
        assert.equal(pair.local.url, `turn:127.0.0.1:${udpTcp}?transport=${transport}`, who);
        assert.equal(pair.remote.protocol, 'udp', `${who}: the relay reaches the media over UDP`);
      },
      expectStats: relayedByUs,
    });
  });
}

test('relay through the integrated TURN server over TLS, on a page served over HTTPS', { timeout: 90_000 }, async () => {
  const { udpTcp, tls } = await turnPorts();
  await talkThrough('turn-tls', {
    serverArgs: [
      '--tls-cert', cert.certFile, '--tls-key', cert.keyFile,
      '--turn-udp', `127.0.0.1:${udpTcp}`, '--turn-tls', `127.0.0.1:${tls}`,
    ],
    https: true,
    // Chromium trusts the test's certificate, and no other, for the page and for TURNS.
    browserArgs: [`--ignore-certificate-errors-spki-list=${cert.spki}`],
    steer: { relay: 'tls' },
    expectPair: (pair, who) => {
      assert.equal(pair.local.type, 'relay', `${who}: ${JSON.stringify(pair)}`);
      assert.equal(pair.local.relayProtocol, 'tls', `${who}: ${JSON.stringify(pair)}`);
      assert.equal(pair.local.url, `turns:127.0.0.1:${tls}?transport=tcp`, who);
    },
    expectStats: relayedByUs,
  });
});

test('relay through an external TURN server (coturn) with a shared secret', { timeout: 90_000 }, async () => {
  if (!existsSync('/usr/bin/turnserver')) {
    assert.fail('coturn is not installed (scripts/test installs it)');
  }
  const turnPort = await freePort();
  const secret = randomBytes(16).toString('hex');
  const logFile = path.join(OUT_DIR, 'coturn.log');
  const coturn = spawn(
    '/usr/bin/turnserver',
    [
      '-n', '-v', '--no-cli', '--no-tls', '--no-dtls', '--log-file=stdout', '--simple-log',
      '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${turnPort}`,
      '--min-port=49152', '--max-port=65535',
      '--use-auth-secret', `--static-auth-secret=${secret}`, '--realm=free4chat.test',
      // Our media listens on loopback in this test; coturn refuses loopback peers by default.
      '--allow-loopback-peers',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = [];
  coturn.stdout.on('data', (d) => out.push(d));
  coturn.stderr.on('data', (d) => out.push(d));
  try {
    await waitListening(turnPort);
    const url = `turn:127.0.0.1:${turnPort}?transport=udp`;
    await talkThrough('coturn', {
      serverArgs: ['--external-turn', url, '--external-turn-secret', secret],
      steer: { relay: 'any' },
      expectPair: (pair, who) => {
        assert.equal(pair.local.type, 'relay', `${who}: ${JSON.stringify(pair)}`);
        assert.equal(pair.local.url, url, `${who}: ${JSON.stringify(pair)}`);
        const server = pair.iceServers.find((s) => s.urls.includes(url));
        assert.match(server.username, /^\d+:\d+$/, 'username is <expiry>:<member id>');
      },
    });
    // coturn saw our credentials and accepted them.
    const log = Buffer.concat(out).toString('utf8');
    assert.match(log, /ALLOCATE processed, success/, 'coturn logged a successful allocation');
  } finally {
    coturn.kill('SIGTERM');
    writeFileSync(logFile, Buffer.concat(out));
  }
});

test('ICE-TCP straight to the media server when every UDP candidate is removed', { timeout: 90_000 }, async () => {
  await talkThrough('ice-tcp', {
    serverArgs: [],
    steer: { dropUdp: true },
    expectPair: (pair, who) => {
      assert.equal(pair.local.protocol, 'tcp', `${who}: ${JSON.stringify(pair)}`);
      assert.equal(pair.remote.protocol, 'tcp', `${who}: ${JSON.stringify(pair)}`);
      assert.equal(pair.remote.type, 'host', `${who}: the server's passive TCP candidate`);
      assert.equal(pair.remote.address, '127.0.0.1', who);
    },
    expectStats: (stats) => {
      assert.ok(stats.media.tcp.connections >= 2, `both members on TCP: ${JSON.stringify(stats.media)}`);
      assert.equal(stats.turn, null, 'no TURN server involved');
    },
  });
});

/**
 * In the page: gathers relayed candidates with `server`, reporting the relay candidates found
 * and the errors the browser met (`icecandidateerror` carries the TURN error code).
 */
async function gatherRelay(server) {
  const pc = new RTCPeerConnection({ iceServers: [server], iceTransportPolicy: 'relay' });
  const relays = [];
  const errors = [];
  pc.addEventListener('icecandidate', (e) => e.candidate && relays.push(e.candidate.candidate));
  pc.addEventListener('icecandidateerror', (e) => errors.push(e.errorCode));
  pc.createDataChannel('probe');
  await pc.setLocalDescription();
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 10_000);
  });
  pc.close();
  return { relays, errors };
}

/** In the page: two connections that try to reach each other through the relay only. */
async function relayToEachOther(server) {
  const cfg = { iceServers: [server], iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(cfg);
  const b = new RTCPeerConnection(cfg);
  a.addEventListener('icecandidate', (e) => e.candidate && b.addIceCandidate(e.candidate).catch(() => {}));
  b.addEventListener('icecandidate', (e) => e.candidate && a.addIceCandidate(e.candidate).catch(() => {}));
  const channel = a.createDataChannel('p2p');
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  const opened = await new Promise((resolve) => {
    channel.addEventListener('open', () => resolve(true));
    setTimeout(() => resolve(false), 8000);
  });
  const states = [a.iceConnectionState, b.iceConnectionState];
  a.close();
  b.close();
  return { opened, states };
}

test('the integrated TURN server refuses wrong and expired credentials and relays only to us', { timeout: 90_000 }, async () => {
  const { udpTcp } = await turnPorts();
  const secret = randomBytes(16).toString('hex');
  const port = await freePort();
  const server = await startServer({
    port,
    logFile: path.join(OUT_DIR, 'server-turn-refusals.log'),
    extraArgs: ['--turn-udp', `127.0.0.1:${udpTcp}`, '--turn-secret', secret],
  });
  const browser = await launchBrowser(tones[0]);
  const pages = [];
  try {
    await diagnose('turn-refusals', () => ({ pages, server }), async () => {
      const h = await openPage(browser, `${server.base}/`, 'probe');
      pages.push(h);
      const url = `turn:127.0.0.1:${udpTcp}?transport=udp`;
      const sign = (username) => createHmac('sha1', secret).update(username).digest('base64');
      const now = Math.floor(Date.now() / 1000);

      // The control: a valid credential, signed the way the server issues them, gets a relay.
      const valid = `${now + 600}:999`;
      const ok = await h.page.evaluate(gatherRelay, { urls: [url], username: valid, credential: sign(valid) });
      assert.ok(ok.relays.some((c) => / typ relay /.test(c)), `a valid credential allocates: ${JSON.stringify(ok)}`);

      const wrong = await h.page.evaluate(gatherRelay, { urls: [url], username: valid, credential: sign('other') });
      assert.deepEqual(wrong.relays, [], 'a wrong password allocates nothing');
      assert.ok(wrong.errors.includes(401), `a wrong password is refused with 401: ${JSON.stringify(wrong)}`);

      const expired = `${now - 60}:999`;
      const late = await h.page.evaluate(gatherRelay, { urls: [url], username: expired, credential: sign(expired) });
      assert.deepEqual(late.relays, [], 'an expired credential allocates nothing');
      assert.ok(late.errors.includes(401), `an expired credential is refused with 401: ${JSON.stringify(late)}`);

      let stats = await serverStats(server);
      assert.ok(stats.turn.refused_auth >= 2, `refusals counted: ${JSON.stringify(stats.turn)}`);

      // Two browsers' relays cannot reach each other: only our media addresses are peers.
      const p2p = await h.page.evaluate(relayToEachOther, { urls: [url], username: valid, credential: sign(valid) });
      assert.equal(p2p.opened, false, `relay between two clients must fail: ${JSON.stringify(p2p)}`);
      stats = await serverStats(server);
      assert.ok(stats.turn.refused_peer >= 1, `the foreign peer was refused: ${JSON.stringify(stats.turn)}`);
    });
  } finally {
    await browser.close();
    await server.stop();
  }
});

/** The SHA-256 of the server certificate's public key, as Chromium's SPKI pin list wants it. */
function serverSpki(port) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const spki = socket.getPeerX509Certificate().publicKey.export({ type: 'spki', format: 'der' });
      socket.end();
      resolve(createHash('sha256').update(spki).digest('base64'));
    });
    socket.on('error', reject);
  });
}

test('a LAN server with --tls-self-signed serves the app over HTTPS and signalling over WSS', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const server = await startServer({
    port,
    logFile: path.join(OUT_DIR, 'server-self-signed.log'),
    extraArgs: ['--tls-self-signed'],
    https: true,
  });
  let browser;
  const pages = [];
  try {
    await diagnose('self-signed', () => ({ pages, server }), async () => {
      // Trust exactly the certificate this server made at start, as a user accepting it would.
      const spki = await serverSpki(port);
      browser = await launchBrowser(tones[0], { extraArgs: [`--ignore-certificate-errors-spki-list=${spki}`] });
      const h = await openPage(browser, `${server.base}/room/lan-${randomBytes(4).toString('hex')}?name=Lan&audio=raw`, 'lan');
      pages.push(h);
      await h.page.waitForFunction(
        () => window.f4c && window.f4c.state === 'joined' && window.f4c.pc && window.f4c.pc.connectionState === 'connected',
        null,
        { timeout: CONNECT_TIMEOUT_MS, polling: 250 },
      );
      const seen = await h.page.evaluate(() => ({ origin: location.origin, secure: window.isSecureContext }));
      assert.equal(seen.origin, `https://127.0.0.1:${port}`);
      assert.equal(seen.secure, true, 'a secure context: the microphone is allowed');
    });
  } finally {
    if (browser) await browser.close();
    await server.stop();
  }
});
