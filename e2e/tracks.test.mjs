// End to end: what a member publishes arrives in the streams the protocol names. Real free4chat
// servers and two headless Chromium browsers: Alice sends her microphone and then her (fake)
// camera as well.
//
// - With `--audio-slots 0`, Bob must receive each of her tracks in a stream of its own, whose id
//   is the `stream` the protocol gives that track, and his page must keep what it receives by
//   track, attributed to Alice, with what each track carries; muting her for himself silences
//   her stream in his page.
// - With audio slots (the default, 3), Bob receives audio on the streams `slot-0`..`slot-2`,
//   negotiated once, and names Alice as whom he hears on one of them; her camera still
//   arrives in a stream of its own.
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

let server; // a stream per track: --audio-slots 0
let slotServer; // audio slots, as configured by default
const browsers = [];
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({
    port: await freePort(),
    logFile: path.join(OUT_DIR, 'server-tracks.log'),
    extraArgs: ['--audio-slots', '0'],
  });
  slotServer = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-tracks-slots.log') });
  for (let i = 0; i < 2; i++) browsers.push(await launchBrowser(null));
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  await Promise.allSettled([server, slotServer].filter(Boolean).map((s) => s.stop()));
}, { timeout: 20_000 });

/**
 * In the page, before its scripts: records every `track` event of every peer connection, and
 * the `sources` of every offer the page sends.
 */
function recordTrackEvents() {
  window.__trackEvents = [];
  window.__offerSources = [];
  window.__serverOffers = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const msg = JSON.parse(data);
    if (msg.type === 'offer') window.__offerSources.push(msg.sources ?? null);
    if (!this.__counted) {
      this.__counted = true;
      this.addEventListener('message', (ev) => {
        if (typeof ev.data === 'string' && JSON.parse(ev.data).type === 'offer') window.__serverOffers++;
      });
    }
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
    assert.equal(await trackModeOf(server), 0, 'this server sends a stream per track');
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

    // Bob mutes Alice for himself: her stream is silenced in his page, and the server is not
    // told (there are no slots to keep her off); unmuting brings her back.
    const aliceAudio = `#remote-audio audio[data-track-key="${micKey}"]`;
    assert.equal(await bob.page.$eval(aliceAudio, (a) => a.muted), false);
    await bob.page.click(`#members .member[data-member-id="${aliceId}"] .member-mute`);
    assert.equal(await bob.page.$eval(aliceAudio, (a) => a.muted), true);
    await bob.page.click(`#members .member[data-member-id="${aliceId}"] .member-mute`);
    assert.equal(await bob.page.$eval(aliceAudio, (a) => a.muted), false);
    assert.equal(await bob.page.evaluate(() => window.f4c.sent.local_mutes ?? 0), 0, 'no local_mutes without slots');

    for (const h of [alice, bob]) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      assert.deepEqual(await h.page.evaluate(() => window.f4c.errors), [], `${h.label}: refused messages`);
    }
    await Promise.all([alice, bob].map((h) => h.context.close()));
    pages.length = 0;
  });
});

/** The `audio_slots` a server gives, as a page that joins one of its rooms is told. */
async function trackModeOf(srv) {
  const probe = await openPage(browsers[0], `${srv.base}/room/probe-${randomBytes(3).toString('hex')}?name=Probe`, 'probe');
  try {
    await waitJoined(probe.page, 1);
    return await probe.page.evaluate(() => window.f4c.audioSlots);
  } finally {
    await probe.context.close();
  }
}

test('on audio slots, audio arrives on the streams slot-0..2, negotiated once, naming whom it carries; a camera keeps a stream of its own', { timeout: 90_000 }, async (t) => {
  await diagnose('tracks-slots', () => ({ pages, server: slotServer }), async () => {
    const room = `slots-${randomBytes(4).toString('hex')}`;
    const url = (name) => `${slotServer.base}/room/${room}?name=${name}&audio=raw`;
    const bob = await openPage(browsers[1], url('Bob'), 'Bob', { init: recordTrackEvents });
    pages.push(bob);
    await waitJoined(bob.page, 1);
    const alice = await openPage(browsers[0], url('Alice'), 'Alice', { init: recordTrackEvents });
    pages.push(alice);
    await Promise.all([alice, bob].map((h) => waitJoined(h.page, 2)));
    // Each hears the other (Chromium's own fake microphone beeps) on one of three slots.
    await Promise.all([alice, bob].map((h) => waitStreams(h.page, 1)));
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    const bobId = await bob.page.evaluate(() => window.f4c.selfId);
    const slots = ['slot-0', 'slot-1', 'slot-2'];

    let seen = await bob.page.evaluate(trackView);
    t.diagnostic(`Bob: track events ${JSON.stringify(seen.events)}`);
    assert.equal(await bob.page.evaluate(() => window.f4c.audioSlots), 3);
    // The protocol still says what Alice publishes, but her microphone has no stream of its own.
    const micTrack = seen.tracks.find((tr) => tr.peer === aliceId);
    assert.ok(micTrack && micTrack.kind === 'audio' && micTrack.source === 'microphone', `her microphone: ${JSON.stringify(seen.tracks)}`);
    assert.ok(!seen.remoteSdp.includes(`a=msid:${micTrack.stream} `), 'no m-line of its own for her microphone');
    for (const slot of slots) assert.ok(seen.remoteSdp.includes(`a=msid:${slot} ${slot}`), `the server's SDP has ${slot}`);
    // Three track events, one per slot, each with a stream holding its track alone.
    assert.deepEqual(seen.events.map((e) => e.streams[0]?.id).sort(), slots);
    for (const ev of seen.events) {
      assert.equal(ev.kind, 'audio');
      assert.equal(ev.streams.length, 1, `one stream per track: ${JSON.stringify(ev)}`);
      assert.deepEqual(ev.streams[0].tracks, [ev.track], `the stream holds its track alone: ${JSON.stringify(ev)}`);
    }
    // The store keeps the slots by their stream, with no publisher of their own; Alice is heard
    // on one of them, and one audio element plays each.
    assert.deepEqual(seen.media.map((m) => [m.key, m.peer, m.kind, m.live]).sort(), slots.map((k) => [k, null, 'audio', true]));
    const heardOn = await bob.page.evaluate((id) => window.f4c.mediaOf(id).map((m) => m.key), aliceId);
    assert.equal(heardOn.length, 1, `Alice is heard on one slot: ${JSON.stringify(heardOn)}`);
    assert.ok(slots.includes(heardOn[0]));
    const audio = await bob.page.$$eval('#remote-audio audio', (els) => els.map((a) => a.dataset.trackKey).sort());
    assert.deepEqual(audio, slots);
    // What Alice's page declared: her microphone.
    const declared = await alice.page.evaluate(() => window.__offerSources);
    const mine = await alice.page.evaluate(() => window.f4c.pc.getTransceivers().find((tr) => tr.sender.track)?.mid);
    assert.deepEqual(declared.at(-1), { [mine]: 'microphone' });

    // Alice's camera: a stream of its own, `<member>-<track id>`, beside the slots.
    const offersBefore = await bob.page.evaluate(() => window.__serverOffers);
    await alice.page.evaluate(async () => {
      const cam = await navigator.mediaDevices.getUserMedia({ video: { width: 160, height: 120, frameRate: 5 } });
      window.f4c.pc.addTransceiver(cam.getVideoTracks()[0], { direction: 'sendonly', streams: [cam] });
    });
    await bob.page.waitForFunction(
      (id) => window.f4c.mediaOf(id).some((m) => m.kind === 'video' && m.track.readyState === 'live'),
      aliceId,
      { timeout: TIMEOUT_MS, polling: 250 },
    );
    seen = await bob.page.evaluate(trackView);
    const cam = seen.tracks.find((tr) => tr.peer === aliceId && tr.kind === 'video');
    assert.ok(cam, 'her camera in the protocol');
    assert.equal(cam.stream, `${aliceId}-${cam.id}`);
    assert.ok(seen.remoteSdp.includes(`a=msid:${cam.stream} `));
    const camMedia = seen.media.find((m) => m.key === cam.stream);
    assert.ok(camMedia && camMedia.peer === aliceId && camMedia.kind === 'video', `her camera: ${JSON.stringify(seen.media)}`);
    assert.equal(await bob.page.evaluate(() => window.__serverOffers), offersBefore + 1, 'one server offer, for the camera');

    // A third member who speaks is heard on a slot: no offer for it.
    const offersNow = await bob.page.evaluate(() => window.__serverOffers);
    const carol = await openPage(browsers[0], url('Carol'), 'Carol', { init: recordTrackEvents });
    pages.push(carol);
    await waitJoined(bob.page, 3);
    await waitStreams(bob.page, 2);
    await bob.page.waitForTimeout(500);
    assert.equal(await bob.page.evaluate(() => window.__serverOffers), offersNow, 'the slots carry Carol without a new offer');
    seen = await bob.page.evaluate(trackView);
    assert.deepEqual(seen.media.filter((m) => m.kind === 'audio').map((m) => m.key).sort(), slots, 'still the three slots');

    // Alice hears Bob on a slot too, by his source id.
    const bobSource = await alice.page.evaluate((id) => window.f4c.members.get(id).source, bobId);
    assert.ok(bobSource > 0, 'a member has a source id');
    await alice.page.waitForFunction((id) => window.f4c.mediaOf(id).some((m) => m.slot !== null), bobId, { timeout: TIMEOUT_MS, polling: 250 });

    for (const h of [alice, bob, carol]) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      assert.deepEqual(await h.page.evaluate(() => window.f4c.errors), [], `${h.label}: refused messages`);
    }
  });
});
