// End to end: video. A real free4chat server and three headless Chromium browsers whose fake
// cameras show Chromium's test pattern (720p), and a fake screen to share.
//
// - Three members who come in with `?video=1` each see the two others' cameras: every tile's
//   video decodes frames, and each publisher sends its camera in three simulcast layers.
// - A tile shown big gets a larger picture than the small ones beside it: the server sends
//   each tile the layer that fits the size the page reports (`video_view`).
// - A camera turned off leaves the others' grids and comes back when turned on again, with no
//   renegotiation of anyone.
// - A shared screen reaches the others, shown big.
// - A shared screen's sound (the fake capture plays the sharer's tone file) reaches the others
//   while the sharer's microphone is muted, and stops with the sharing.
// - A camera published in H264, one in VP9 and one in AV1 (its transceiver's codec preferences
//   that codec alone, so the server's answer takes it) reaches the others, who decode it beside
//   VP8 cameras, and moves up a layer at a keyframe when pinned. Debian's Chromium encodes H264
//   (OpenH264) and decodes it (FFmpeg), and encodes AV1 (libaom): RTCRtpSender/Receiver
//   .getCapabilities list them.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import {
  DESKTOP,
  OUT_DIR,
  PHONE,
  SCREENSHOT_DIR,
  ensureOutDir,
  freePort,
  launchBrowser,
  makeTone,
  measureTonesPresent,
  openPage,
  sleep,
  startServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const TIMEOUT_MS = 40_000;
/** The fake screen Chromium offers to getDisplayMedia, picked without a prompt. */
const SCREEN_ARGS = ['--auto-select-desktop-capture-source=Entire screen', '--enable-usermedia-screen-capturing'];
/** The first browser's fake devices play this tone: its microphone, and its screen's sound. */
const SCREEN_TONE_HZ = 660;
/**
 * A tone heard at this level or above is there; at or below ABSENT_DB, it is not. Heard, the
 * tone measures about -39 dB; not heard, -90 dB or nothing at all.
 */
const PRESENT_DB = -50;
const ABSENT_DB = -70;

let server;
const browsers = [];
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-video.log') });
  const tone = await makeTone(path.join(OUT_DIR, `video-tone-${SCREEN_TONE_HZ}.wav`), SCREEN_TONE_HZ);
  for (let i = 0; i < 3; i++) browsers.push(await launchBrowser(i === 0 ? tone : null, { extraArgs: SCREEN_ARGS }));
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (server) await server.stop();
}, { timeout: 20_000 });

/** In the page, before its scripts: counts the server's offers (renegotiations). */
function countServerOffers() {
  window.__serverOffers = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (!this.__counted) {
      this.__counted = true;
      this.addEventListener('message', (ev) => {
        if (typeof ev.data === 'string' && JSON.parse(ev.data).type === 'offer') window.__serverOffers++;
      });
    }
    return send.call(this, data);
  };
}

/** In the page: every tile, with what its video decoded so far. */
function tilesNow() {
  return [...document.querySelectorAll('#video-grid .tile')].map((t) => {
    const v = t.querySelector('video');
    return {
      key: t.dataset.key,
      member: t.dataset.member,
      source: t.dataset.source,
      big: t.classList.contains('tile-big'),
      width: v.videoWidth,
      height: v.videoHeight,
      frames: v.getVideoPlaybackQuality().totalVideoFrames,
      shownWidth: t.clientWidth,
      shownHeight: t.clientHeight,
    };
  });
}

/**
 * Evaluates `fn(arg)` in `page` (it may be async) until it returns something truthy, at most
 * `timeout` ms; returns that. (Playwright's waitForFunction does not wait for a promise.)
 */
async function until(page, fn, arg, what, timeout = TIMEOUT_MS) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await page.evaluate(fn, arg);
    if (last) return last;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * In the page: whether the tiles of `ids` (of `source`) decode: frames keep coming over 0.5 s
 * for a camera; a shared screen that does not change sends a frame only now and then, so one
 * decoded frame of it is enough.
 */
async function decoding({ ids, source }) {
  const read = () =>
    new Map(
      [...document.querySelectorAll('#video-grid .tile')]
        .filter((t) => t.dataset.source === source && ids.includes(t.dataset.member))
        .map((t) => [t.dataset.member, t.querySelector('video').getVideoPlaybackQuality().totalVideoFrames]),
    );
  const first = read();
  if (first.size !== ids.length) return false;
  if (source === 'screen') return ids.every((id) => first.get(id) > 0);
  await new Promise((r) => setTimeout(r, 500));
  const then = read();
  return ids.every((id) => (then.get(id) ?? 0) > (first.get(id) ?? 0));
}

/** Waits until `page` shows tiles of the members `ids` (of `source`) whose videos decode. */
function waitDecoding(page, ids, source = 'camera') {
  return until(page, decoding, { ids, source }, `${source} tiles of ${ids} decoding`);
}

/** In the page: how many simulcast layers of our camera are sent (`want`: 'none' or 'some'). */
function layersSent(want) {
  const active = window.f4c.pc
    .getSenders()
    .flatMap((s) => s.getParameters().encodings ?? [])
    .filter((e) => e.rid && e.active).length;
  return want === 'none' ? active === 0 : active > 0;
}

/**
 * In the page, before its scripts: every camera or screen the page publishes is offered in
 * `mime` alone (with its retransmission format), as a client preferring that codec would.
 */
function offerOnly(mime) {
  const SCALABILITY_MODE_NEEDED = ['video/VP9', 'video/AV1'];
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (trackOrKind, init) {
    // Chromium sends VP9 and AV1 in simulcast only when each layer names its scalability
    // mode; else it sends the first layer alone (VP9 as one stream of spatial layers).
    if (SCALABILITY_MODE_NEEDED.includes(mime) && init?.sendEncodings?.length > 1) {
      init = { ...init, sendEncodings: init.sendEncodings.map((e) => ({ ...e, scalabilityMode: 'L1T3' })) };
    }
    const tr = add.call(this, trackOrKind, init);
    const kind = typeof trackOrKind === 'string' ? trackOrKind : trackOrKind.kind;
    if (kind === 'video' && init?.direction === 'sendonly') {
      // Of what this browser decodes, what it can also encode (not H264's High 4:4:4).
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs.filter(
        (c) => (c.mimeType === mime || c.mimeType === 'video/rtx') && !/profile-level-id=f4|profile-id=[13]/.test(c.sdpFmtpLine ?? ''),
      );
      tr.setCodecPreferences(codecs);
    }
    return tr;
  };
}

/** In the page: the codec and frames of each video stream sent or received, from the stats. */
async function videoCodecs() {
  const stats = await window.f4c.pc.getStats();
  const codecs = new Map();
  stats.forEach((s) => {
    if (s.type === 'codec') codecs.set(s.id, s.mimeType);
  });
  const out = { sent: [], received: [] };
  stats.forEach((s) => {
    if (s.kind !== 'video') return;
    if (s.type === 'outbound-rtp') {
      out.sent.push({ rid: s.rid, codec: codecs.get(s.codecId), frames: s.framesEncoded ?? 0, encoder: s.encoderImplementation });
    }
    if (s.type === 'inbound-rtp') {
      out.received.push({
        codec: codecs.get(s.codecId),
        frames: s.framesDecoded ?? 0,
        width: s.frameWidth ?? 0,
        keyframes: s.keyFramesDecoded ?? 0,
        decoder: s.decoderImplementation,
      });
    }
  });
  return out;
}

/** In the page: the video streams received, once a stream of each of `codecs` decodes. */
async function decodingCodecs(codecs) {
  const stats = await window.f4c.pc.getStats();
  const names = new Map();
  stats.forEach((s) => s.type === 'codec' && names.set(s.id, s.mimeType));
  const received = [];
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') received.push({ codec: names.get(s.codecId), frames: s.framesDecoded ?? 0 });
  });
  return codecs.every((c) => received.some((r) => r.codec === c && r.frames > 0)) && received;
}

/** Closes the pages of the tests before: their cameras would go on taking the processor. */
async function closeEarlierPages() {
  await Promise.allSettled(pages.splice(0).map((h) => h.context.close()));
}

async function join(i, room, name, { viewport = DESKTOP, video = true, init = countServerOffers, initArg } = {}) {
  const url = `${server.base}/room/${room}?name=${name}${video ? '&video=1' : ''}`;
  const h = await openPage(browsers[i], url, name, { contextOptions: { viewport }, init, initArg });
  pages.push(h);
  return h;
}

test('three members with cameras see each other; each camera is offered in three layers, of which only those watched are sent', { timeout: 150_000 }, async (t) => {
  await diagnose('video', () => ({ pages, server }), async () => {
    const room = `video-${randomBytes(4).toString('hex')}`;
    const all = [];
    for (const [i, name] of ['Alice', 'Bob', 'Carol'].entries()) all.push(await join(i, room, name));
    await Promise.all(all.map((h) => waitJoined(h.page, 3)));
    const ids = await Promise.all(all.map((h) => h.page.evaluate(() => window.f4c.selfId)));
    // Each sees the two others' cameras, decoding, and its own.
    for (const [i, h] of all.entries()) {
      await waitDecoding(h.page, ids.filter((_, j) => j !== i));
      const tiles = await h.page.evaluate(tilesNow);
      assert.ok(tiles.some((x) => x.key === 'self-camera'), `${h.label} sees its own camera`);
      assert.equal(tiles.length, 3, `${h.label}'s tiles: ${JSON.stringify(tiles)}`);
    }
    // Everyone was told who has a camera on.
    const cams = await all[0].page.evaluate(() => [...window.f4c.members.values()].filter((m) => m.camera).length);
    assert.equal(cams, 3);

    // Each publisher's camera goes out in three layers, q, h and f, low to high, as
    // negotiated with the server.
    for (const h of all) {
      const rids = await h.page.evaluate(() =>
        window.f4c.pc.getSenders().flatMap((s) => (s.track?.kind === 'video' ? s.getParameters().encodings.map((e) => e.rid) : [])),
      );
      assert.deepEqual(rids, ['q', 'h', 'f'], `${h.label}'s camera layers`);
    }
    // The page tells the server how big each tile is.
    const views = await all[2].page.evaluate(() => window.f4c.sent.video_view ?? 0);
    assert.ok(views > 0, 'video_view was sent');

    // Tiles this small want the lowest layer only: nobody watches Alice's others, and the
    // server has her stop sending them (dynacast).
    await until(
      all[0].page,
      () => {
        const layers = window.f4c.pc.getSenders().flatMap((s) => s.getParameters().encodings ?? []).filter((e) => e.rid);
        return JSON.stringify(layers.map((e) => [e.rid, e.active])) === JSON.stringify([['q', true], ['h', false], ['f', false]]);
      },
      null,
      'Alice sending her lowest layer only',
    );

    // Carol pins Alice: Alice's tile is big, her full layer comes back, and Carol's big tile of
    // her shows a larger picture than Bob's small one.
    const carol = all[2].page;
    await carol.click(`#video-grid .tile[data-member="${ids[0]}"] .tile-pin`);
    const layers = await until(
      all[0].page,
      async () => {
        const out = {};
        (await window.f4c.pc.getStats()).forEach((s) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) out[s.rid] = { frames: s.framesEncoded ?? 0, width: s.frameWidth ?? 0 };
        });
        return out.f?.frames > 0 && out.f.width > (out.q?.width ?? 0) && out;
      },
      null,
      'Alice sending her full layer',
    );
    t.diagnostic(`Alice sends ${JSON.stringify(layers)}`);
    await until(
      carol,
      ({ alice, bob }) => {
        const tile = (id) => document.querySelector(`#video-grid .tile[data-member="${id}"] video`);
        const a = tile(alice);
        const b = tile(bob);
        return a && b && a.closest('.tile').classList.contains('tile-big') && a.videoWidth > b.videoWidth;
      },
      { alice: ids[0], bob: ids[1] },
      'Carol seeing Alice larger than Bob',
    );
    const tiles = await carol.evaluate(tilesNow);
    t.diagnostic(`Carol's tiles: ${JSON.stringify(tiles)}`);
    await carol.screenshot({ path: path.join(SCREENSHOT_DIR, 'video-grid.png') });
  });
});

test('a camera turned off leaves the others\' grids and comes back, renegotiating nobody; nobody watching stops it being sent', { timeout: 120_000 }, async () => {
  await diagnose('video-toggle', () => ({ pages, server }), async () => {
    const room = `video-toggle-${randomBytes(4).toString('hex')}`;
    const alice = await join(0, room, 'Alice');
    const bob = await join(1, room, 'Bob', { video: false });
    await Promise.all([alice, bob].map((h) => waitJoined(h.page, 2)));
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    await waitDecoding(bob.page, [aliceId]);
    // Bob has no camera on: Alice's grid shows her own camera only.
    assert.deepEqual((await alice.page.evaluate(tilesNow)).map((x) => x.key), ['self-camera']);
    const offers = await bob.page.evaluate(() => window.__serverOffers);

    await alice.page.click('#camera-btn');
    await bob.page.waitForFunction(() => document.querySelectorAll('#video-grid .tile').length === 0, null, { timeout: TIMEOUT_MS });
    assert.equal(await alice.page.evaluate(() => window.f4c.getState().video.camera), null);
    assert.equal(await alice.page.$eval('#camera-btn', (b) => b.getAttribute('aria-pressed')), 'false');

    await alice.page.click('#camera-btn');
    await waitDecoding(bob.page, [aliceId]);
    assert.equal(await bob.page.evaluate(() => window.__serverOffers), offers, 'no server offer for turning a camera off and on');

    // Bob's page goes to the background: he asks for nothing, and Alice, whom nobody watches
    // now, is told to stop sending; back in front, her camera comes back to him.
    const setHidden = (hidden) => {
      Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    };
    await bob.page.evaluate(setHidden, true);
    await until(alice.page, layersSent, 'none', 'Alice sending no layer');
    await bob.page.evaluate(setHidden, false);
    await until(alice.page, layersSent, 'some', 'Alice sending again');
    await waitDecoding(bob.page, [aliceId]);
  });
});

test('a shared screen reaches the others, shown big', { timeout: 120_000 }, async () => {
  await closeEarlierPages();
  await diagnose('video-screen', () => ({ pages, server }), async () => {
    const room = `video-screen-${randomBytes(4).toString('hex')}`;
    const alice = await join(0, room, 'Alice', { video: false });
    const bob = await join(1, room, 'Bob', { video: false });
    const phone = await join(2, room, 'Carol', { video: false, viewport: PHONE });
    await Promise.all([alice, bob, phone].map((h) => waitJoined(h.page, 3)));
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    await alice.page.click('#screen-btn');
    for (const h of [bob, phone]) {
      await waitDecoding(h.page, [aliceId], 'screen');
      const tiles = await h.page.evaluate(tilesNow);
      assert.equal(tiles.length, 1, JSON.stringify(tiles));
      assert.ok(tiles[0].big, 'a screen share is shown big');
    }
    // On a phone the screen share fills the width of the page.
    const [tile] = await phone.page.evaluate(tilesNow);
    assert.ok(tile.shownWidth >= PHONE.width - 40, `the phone's screen tile is ${tile.shownWidth} px wide`);
    await phone.page.click('#camera-btn');
    await phone.page.waitForFunction(() => document.querySelectorAll('#video-grid .tile').length === 2, null, { timeout: TIMEOUT_MS });
    await sleep(1000);
    await phone.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'video-phone.png') });
    await alice.page.click('#screen-btn');
    await bob.page.waitForFunction(() => document.querySelectorAll('#video-grid .tile[data-source="screen"]').length === 0, null, { timeout: TIMEOUT_MS });
  });
});

/** The level at which `h`'s page plays the first browser's tone. */
async function toneLevel(h) {
  const m = await h.page.evaluate(measureTonesPresent, { freqs: [SCREEN_TONE_HZ], durationMs: 2000, samples: 10 });
  return m.levels[SCREEN_TONE_HZ];
}

/** Waits (within TIMEOUT_MS) until `h` hears the tone (`present`) or no longer does. */
async function waitTone(h, present) {
  const deadline = Date.now() + TIMEOUT_MS;
  let level = await toneLevel(h);
  while ((present ? level < PRESENT_DB : level > ABSENT_DB) && Date.now() < deadline) level = await toneLevel(h);
  assert.ok(present ? level >= PRESENT_DB : level <= ABSENT_DB, `${h.label} hears the tone at ${level} dB`);
  return level;
}

test('a shared screen\'s sound reaches the others while the sharer\'s microphone is muted, and stops with the sharing', { timeout: 120_000 }, async (t) => {
  await closeEarlierPages();
  await diagnose('video-screen-audio', () => ({ pages, server }), async () => {
    const room = `video-screen-audio-${randomBytes(4).toString('hex')}`;
    const alice = await join(0, room, 'Alice', { video: false });
    const bob = await join(1, room, 'Bob', { video: false });
    await Promise.all([alice, bob].map((h) => waitJoined(h.page, 2)));
    // Alice's microphone plays the tone: Bob hears it, and then, muted, no longer.
    t.diagnostic(`microphone on: ${await waitTone(bob, true)} dB`);
    await alice.page.click('#mute-btn');
    t.diagnostic(`microphone muted: ${await waitTone(bob, false)} dB`);

    // Her screen share brings the tone back, as the sound of the screen.
    await alice.page.click('#screen-btn');
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    await waitDecoding(bob.page, [aliceId], 'screen');
    t.diagnostic(`screen shared: ${await waitTone(bob, true)} dB`);
    // Her microphone (muted: its track disabled) and her screen's sound, each on its sender.
    const sent = await alice.page.evaluate(() => window.f4c.pc.getSenders().filter((s) => s.track?.kind === 'audio').map((s) => s.track.enabled));
    assert.deepEqual(sent.sort(), [false, true], 'Alice sends her muted microphone and her screen\'s sound');

    await alice.page.click('#screen-btn');
    t.diagnostic(`sharing stopped: ${await waitTone(bob, false)} dB`);
  });
});

// Chromium 156 (Debian) encodes and decodes all three (AV1 with libaom and dav1d).
for (const codec of ['H264', 'VP9', 'AV1']) {
  test(`a camera published in ${codec} reaches the others beside VP8 cameras, and moves up a layer when pinned`, { timeout: 150_000 }, async (t) => {
    const mime = `video/${codec}`;
    await closeEarlierPages();
    await diagnose(`video-${codec.toLowerCase()}`, () => ({ pages, server }), async () => {
      const room = `video-${codec.toLowerCase()}-${randomBytes(4).toString('hex')}`;
      const alice = await join(0, room, 'Alice', { init: offerOnly, initArg: mime });
      const bob = await join(1, room, 'Bob');
      const carol = await join(2, room, 'Carol');
      const all = [alice, bob, carol];
      await Promise.all(all.map((h) => waitJoined(h.page, 3)));
      const ids = await Promise.all(all.map((h) => h.page.evaluate(() => window.f4c.selfId)));
      for (const [i, h] of all.entries()) await waitDecoding(h.page, ids.filter((_, j) => j !== i));

      // Alice sends the codec she offered, in layers; Bob and Carol VP8.
      const sent = await alice.page.evaluate(videoCodecs);
      t.diagnostic(`Alice sends ${JSON.stringify(sent.sent)}`);
      assert.ok(sent.sent.length > 0 && sent.sent.every((s) => s.codec === mime), JSON.stringify(sent.sent));
      assert.ok((await bob.page.evaluate(videoCodecs)).sent.every((s) => s.codec === 'video/VP8'));
      // The others decode her camera beside the other's VP8; she decodes their VP8.
      for (const h of [bob, carol]) {
        const got = await until(h.page, decodingCodecs, [mime, 'video/VP8'], `${h.label} decoding ${codec} and VP8`);
        t.diagnostic(`${h.label} receives ${JSON.stringify(got)}`);
      }
      const aliceGot = (await alice.page.evaluate(videoCodecs)).received;
      assert.ok(aliceGot.filter((r) => r.codec === 'video/VP8' && r.frames > 0).length === 2, JSON.stringify(aliceGot));

      // Carol pins Alice: the server moves her to Alice's full layer, at its keyframe, and
      // her big tile shows a larger picture than Bob's small one; it goes on decoding.
      const carolOfAlice = async () => (await carol.page.evaluate(videoCodecs)).received.find((r) => r.codec === mime);
      const before = await carolOfAlice();
      await carol.page.click(`#video-grid .tile[data-member="${ids[0]}"] .tile-pin`);
      await until(
        carol.page,
        ({ alice: a, bob: b }) => {
          const tile = (id) => document.querySelector(`#video-grid .tile[data-member="${id}"] video`);
          const [va, vb] = [tile(a), tile(b)];
          return va && vb && va.closest('.tile').classList.contains('tile-big') && va.videoWidth > vb.videoWidth;
        },
        { alice: ids[0], bob: ids[1] },
        `Carol seeing Alice (${codec}) larger than Bob`,
      );
      await waitDecoding(carol.page, [ids[0], ids[1]]);
      // Her decoder went up too: a wider picture, from a keyframe decoded since the pin.
      const pinned = await carolOfAlice();
      t.diagnostic(`Carol's ${codec} stream before the pin ${JSON.stringify(before)}, after ${JSON.stringify(pinned)}`);
      assert.ok(pinned.width > before.width && pinned.keyframes > before.keyframes, JSON.stringify({ before, pinned }));
    });
  });
}
