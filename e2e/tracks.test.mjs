// End to end: what a member publishes arrives track by track. A real free4chat server and two
// headless Chromium browsers: Alice sends her microphone and then her (fake) camera as well;
// Bob must receive each of her tracks in a stream of its own, whose id is the `stream` the
// protocol gives that track, and his page must keep what it receives by track, attributed to
// Alice, with what each track carries.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import {
  OUT_DIR,
  ensureOutDir,
  freePort,
  launchBrowser,
  openPage,
  startServer,
  waitJoined,
  waitStreams,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const TIMEOUT_MS = 30_000;

let server;
const browsers = [];
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-tracks.log') });
  for (let i = 0; i < 2; i++) browsers.push(await launchBrowser(null));
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (server) await server.stop();
}, { timeout: 20_000 });

/**
 * In the page, before its scripts: records every `track` event of every peer connection, and
 * the `sources` of every offer the page sends.
 */
function recordTrackEvents() {
  window.__trackEvents = [];
  window.__offerSources = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const msg = JSON.parse(data);
    if (msg.type === 'offer') window.__offerSources.push(msg.sources ?? null);
    return send.call(this, data);
  };
  const Native = window.RTCPeerConnection;
  class Recording extends Native {
    constructor(config) {
      super(config);
      this.addEventListener('track', (ev) => {
        window.__trackEvents.push({
          track: ev.track.id,
          kind: ev.track.kind,
          streams: ev.streams.map((s) => ({ id: s.id, tracks: s.getTracks().map((t) => t.id) })),
        });
      });
    }
  }
  window.RTCPeerConnection = Recording;
}

/** In the page: the protocol's tracks, what the page receives, the track events and the SDP. */
function trackView() {
  const f = window.f4c;
  return {
    selfId: f.selfId,
    tracks: [...f.tracks.entries()].map(([key, t]) => ({ key, ...t })),
    media: [...f.remoteMedia.entries()].map(([key, m]) => ({
      key,
      entryKey: m.key,
      peer: m.peer,
      kind: m.kind,
      track: m.track.id,
      live: m.track.readyState === 'live',
      stream: m.stream.id,
      streamTracks: m.stream.getTracks().map((t) => t.id),
    })),
    events: window.__trackEvents,
    remoteSdp: f.pc && f.pc.remoteDescription ? f.pc.remoteDescription.sdp : '',
    errors: f.errors,
  };
}

test('a camera and a microphone of one member arrive as separate tracks, each in the stream the protocol names', { timeout: 90_000 }, async (t) => {
  await diagnose('tracks', () => ({ pages, server }), async () => {
    const room = `tracks-${randomBytes(4).toString('hex')}`;
    const url = (name) => `${server.base}/room/${room}?name=${name}&audio=raw`;
    const alice = await openPage(browsers[0], url('Alice'), 'Alice', { init: recordTrackEvents });
    pages.push(alice);
    const bob = await openPage(browsers[1], url('Bob'), 'Bob', { init: recordTrackEvents });
    pages.push(bob);
    await Promise.all([alice, bob].map((h) => waitJoined(h.page, 2)));
    await Promise.all([alice, bob].map((h) => waitStreams(h.page, 1)));
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    const bobId = await bob.page.evaluate(() => window.f4c.selfId);

    // Alice sends her camera too, on the same peer connection.
    await alice.page.evaluate(async () => {
      const cam = await navigator.mediaDevices.getUserMedia({ video: { width: 160, height: 120, frameRate: 5 } });
      window.f4c.pc.addTransceiver(cam.getVideoTracks()[0], { direction: 'sendonly', streams: [cam] });
    });
    // Bob is told of both her tracks and receives both, live.
    await bob.page.waitForFunction(
      (id) => {
        const f = window.f4c;
        const mine = [...f.tracks.values()].filter((tr) => tr.peer === id);
        const got = f.mediaOf(id);
        return (
          mine.length === 2 &&
          got.length === 2 &&
          got.every((m) => m.track.readyState === 'live') &&
          new Set(got.map((m) => m.kind)).size === 2
        );
      },
      aliceId,
      { timeout: TIMEOUT_MS, polling: 250 },
    );

    const seen = await bob.page.evaluate(trackView);
    t.diagnostic(`Bob: tracks ${JSON.stringify(seen.tracks)}; track events ${JSON.stringify(seen.events)}`);

    // The protocol: each of Alice's tracks has a stream of its own, "<member>-<track id>", and
    // says what it carries (her microphone as declared; the camera by default).
    const hers = seen.tracks.filter((tr) => tr.peer === aliceId);
    assert.equal(hers.length, 2);
    for (const tr of hers) {
      assert.equal(tr.stream, `${aliceId}-${tr.id}`, `stream of ${JSON.stringify(tr)}`);
      assert.equal(tr.key, tr.stream, 'the store keeps protocol tracks by stream');
      assert.equal(tr.source, tr.kind === 'audio' ? 'microphone' : 'camera', `source of ${JSON.stringify(tr)}`);
      assert.ok(seen.remoteSdp.includes(`a=msid:${tr.stream} `), `the server's SDP names ${tr.stream} as the msid stream`);
    }
    assert.equal(new Set(hers.map((tr) => tr.stream)).size, 2, 'two streams, not one per member');
    // Her page declared her microphone in its offers, and left the camera it did not publish
    // itself to the server's default.
    const declared = await alice.page.evaluate(() => window.__offerSources);
    const micId = hers.find((tr) => tr.kind === 'audio').id;
    assert.deepEqual(declared.at(-1), { [micId]: 'microphone' }, `the sources of her offers: ${JSON.stringify(declared)}`);

    // The browser: every track event brings exactly one stream, holding that track alone, and
    // each of Alice's tracks arrived in the stream the protocol named for it.
    for (const ev of seen.events) {
      assert.equal(ev.streams.length, 1, `one stream per track: ${JSON.stringify(ev)}`);
      assert.deepEqual(ev.streams[0].tracks, [ev.track], `the stream holds its track alone: ${JSON.stringify(ev)}`);
    }
    for (const tr of hers) {
      const ev = seen.events.find((e) => e.streams[0].id === tr.stream);
      assert.ok(ev, `a track event in stream ${tr.stream}`);
      assert.equal(ev.kind, tr.kind);
    }

    // The store: what Bob receives is kept by track key, each entry its own track and stream,
    // attributed to its publisher.
    for (const m of seen.media) {
      assert.equal(m.entryKey, m.key);
      assert.equal(m.stream, m.key, 'keyed by the msid stream id');
      assert.deepEqual(m.streamTracks, [m.track]);
      assert.ok(seen.events.some((e) => e.track === m.track && e.streams[0].id === m.key), `from a track event: ${m.key}`);
      const tr = seen.tracks.find((x) => x.stream === m.key);
      assert.ok(tr, `a protocol track for ${m.key}`);
      assert.equal(m.peer, tr.peer);
      assert.equal(m.kind, tr.kind);
    }
    assert.deepEqual(
      seen.media.filter((m) => m.peer === aliceId).map((m) => m.key).sort(),
      hers.map((tr) => tr.stream).sort(),
      'Alice\'s entries are her two tracks',
    );
    // One audio element per audio track, named by its key and its member.
    const audio = await bob.page.$$eval('#remote-audio audio', (els) => els.map((a) => ({ key: a.dataset.trackKey, member: a.dataset.memberId })));
    const micKey = hers.find((tr) => tr.kind === 'audio').stream;
    assert.deepEqual(audio, [{ key: micKey, member: aliceId }]);

    // Alice sees Bob's microphone the same way.
    const hisSide = await alice.page.evaluate(trackView);
    const his = hisSide.tracks.filter((tr) => tr.peer === bobId);
    assert.equal(his.length, 1);
    assert.equal(his[0].source, 'microphone');
    assert.deepEqual(hisSide.media.map((m) => m.key), [his[0].stream]);

    for (const h of [alice, bob]) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      assert.deepEqual(await h.page.evaluate(() => window.f4c.errors), [], `${h.label}: refused messages`);
    }
  });
});
