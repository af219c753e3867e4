// End to end: a cluster of three free4chat nodes on one Redis, behind nginx as a TCP load
// balancer that knows nothing of rooms. Three headless Chromium browsers, each speaking its own
// sine tone, reach the room through the load balancer on three different nodes, and hear each
// other. Then, with the call going on:
//   1. the room's node is killed (SIGKILL): everyone must hear the others again on the
//      survivors, by themselves, without a page reload; the time from the kill until every
//      member hears the others again is measured and printed;
//   2. Redis is restarted: the call goes on, and new rooms can be made once it is back;
//   3. every node is restarted in turn (SIGTERM, then started again): the call comes back
//      after each, and no room is lost.
// Its own redis-server and nginx run on free ports, with their files in a temporary folder.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  DESKTOP,
  OUT_DIR,
  ensureOutDir,
  f4cSnapshot,
  freePort,
  httpGet,
  launchBrowser,
  makeTone,
  measureRemoteTones,
  openPage,
  sleep,
  startNginx,
  startRedis,
  startServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const PEOPLE = [
  { name: 'Ann', freq: 392 },
  { name: 'Ben', freq: 622 },
  { name: 'Cat', freq: 932 },
];
const ROOM = 'cluster-room';
const FREQ_TOLERANCE_HZ = 15;
const RECOVERY_TIMEOUT_MS = 30_000;

let tmpDir;
let redis;
let lb;
const nodes = []; // the three server processes
const browsers = [];
const pages = [];

async function json(base, p) {
  const { status, body } = await httpGet(`${base}${p}`, 3000);
  assert.equal(status, 200, `${base}${p}`);
  return JSON.parse(body);
}

/** Each node's id and open signalling connections, in the order of `nodes` (null if down). */
async function nodeStates() {
  return Promise.all(
    nodes.map(async (n) => {
      try {
        const h = await json(n.base, '/api/health');
        return { id: h.node, connections: h.connections, clusterNodes: h.cluster?.nodes };
      } catch {
        return null;
      }
    }),
  );
}

/** The index in `nodes` of the node the room runs on. */
async function roomNode() {
  const states = await nodeStates();
  const live = nodes.findIndex((_, i) => states[i] !== null);
  const { rooms } = await json(nodes[live].base, '/api/rooms');
  const room = rooms.find((r) => r.room === ROOM);
  assert.ok(room, `the room is listed: ${JSON.stringify(rooms)}`);
  const i = states.findIndex((s) => s && s.id === room.node);
  assert.ok(i >= 0, `the room's node ${room.node} is one of ours: ${JSON.stringify(states)}`);
  return i;
}

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server: nodes[0] }), body, async () => ({
    nodes: await nodeStates(),
    tails: nodes.map((n) => n.tail().split('\n').slice(-30).join('\n')),
  }));
}

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-cluster-'));
  const tones = await Promise.all(
    PEOPLE.map((p) => makeTone(path.join(tmpDir, `tone-${p.freq}.wav`), p.freq, 30)),
  );
  redis = await startRedis({ port: await freePort(), dir: tmpDir, logFile: path.join(OUT_DIR, 'cluster-redis.log') });
  const ports = [await freePort(), await freePort(), await freePort()];
  for (const [i, port] of ports.entries()) {
    nodes.push(
      await startServer({
        port,
        logFile: path.join(OUT_DIR, `cluster-node-${i}.log`),
        extraArgs: ['--redis', redis.url, '--drain-timeout', '10s', '--media-workers', '1', '--audio-slots', '0', '--turn-secret', 'shared by the cluster'],
      }),
    );
  }
  lb = await startNginx({ port: await freePort(), upstreams: ports, dir: path.join(tmpDir, 'nginx') });
  for (const tone of tones) browsers.push(await launchBrowser(tone));
}, { timeout: 90_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (lb) await lb.stop();
  await Promise.allSettled(nodes.map((n) => n.stop()));
  if (redis) await redis.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}, { timeout: 30_000 });

/** In the page: remote audio streams whose packets keep arriving, counted since the last call. */
async function flowingAudio() {
  const f = window.f4c;
  if (!f || !f.pc || f.state !== 'joined') return 0;
  const prev = window.__flow && window.__flow.pc === f.pc ? window.__flow.packets : new Map();
  const packets = new Map();
  const stats = await f.pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') packets.set(s.id, s.packetsReceived ?? 0);
  });
  window.__flow = { pc: f.pc, packets };
  let flowing = 0;
  for (const [id, n] of packets) if (prev.has(id) && n > prev.get(id)) flowing += 1;
  return flowing;
}

/** Whether a page is in the room with everyone, hearing packets from the two others. */
async function hearsEveryone(h) {
  const ok = await h.page.evaluate(() => {
    const f = window.f4c;
    if (!f || f.state !== 'joined' || f.members.size !== 3) return false;
    const audio = [...f.remoteMedia.values()].filter((m) => m.kind === 'audio');
    return new Set(audio.map((m) => m.peer)).size === 2 && audio.every((m) => m.track.readyState === 'live');
  });
  return ok && (await h.page.evaluate(flowingAudio)) >= 2;
}

/** Polls until every page hears everyone again on a new connection; returns the time it took. */
async function waitAllHear(handles, since, { newConnection }) {
  const deadline = since + RECOVERY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const fresh = newConnection
      ? await Promise.all(handles.map((h) => h.page.evaluate(() => window.f4c.pc !== window.__pcBefore)))
      : handles.map(() => true);
    if (fresh.every(Boolean)) {
      const hear = await Promise.all(handles.map(hearsEveryone));
      if (hear.every(Boolean)) return Date.now() - since;
    }
    await sleep(100);
  }
  throw new Error(`not everyone hears everyone within ${RECOVERY_TIMEOUT_MS} ms`);
}

/** Each page hears the other two tones, each on the right member. */
async function assertTones(t, handles, label) {
  const states = await Promise.all(handles.map((h) => h.page.evaluate(f4cSnapshot)));
  const idOf = Object.fromEntries(PEOPLE.map((p, i) => [p.name, states[i].selfId]));
  const measured = await Promise.all(
    handles.map((h) => h.page.evaluate(measureRemoteTones, { durationMs: 1500, samples: 8 })),
  );
  for (const [i, person] of PEOPLE.entries()) {
    for (const other of PEOPLE.filter((p) => p !== person)) {
      const m = measured[i].find((x) => x.id === idOf[other.name]);
      const what = `${label}: ${person.name} hearing ${other.name} (${JSON.stringify(measured[i])})`;
      assert.ok(m, `${what}: no stream from that member`);
      assert.ok(m.freq !== null && Math.abs(m.freq - other.freq) <= FREQ_TOLERANCE_HZ, `${what}: wrong or no tone`);
      assert.ok(m.rms > 0.02, `${what}: too quiet`);
    }
  }
  t.diagnostic(`${label}: every member hears the other two tones`);
}

async function markConnections(handles) {
  await Promise.all(handles.map((h) => h.page.evaluate(() => (window.__pcBefore = window.f4c.pc, true))));
}

test('three browsers on three nodes share a room that survives a killed node, a Redis restart and a rolling restart', { timeout: 240_000 }, async (t) => {
  await withDiagnostics('cluster', async () => {
    const handles = [];
    const placedOn = [];
    // Each browser's WebSocket lands where the load balancer sends it: a page whose connection
    // shares a node with an earlier one's reconnects until it lands on a node of its own.
    for (const [i, person] of PEOPLE.entries()) {
      const url = `${lb.base}/room/${ROOM}?name=${encodeURIComponent(person.name)}&audio=raw`;
      const h = await openPage(browsers[i], url, person.name, { contextOptions: { viewport: DESKTOP } });
      pages.push(h);
      handles.push(h);
      let node = -1;
      for (let attempt = 0; attempt < 12 && node < 0; attempt++) {
        await waitJoined(h.page, i + 1);
        // Connections that ended with a reload take a moment to close.
        for (let poll = 0; poll < 50; poll++) {
          const now = await nodeStates();
          const total = now.reduce((sum, s) => sum + s.connections, 0);
          if (total === i + 1) {
            const k = now.findIndex((s, j) => !placedOn.includes(j) && s.connections === 1);
            if (k >= 0 && now.every((s) => s.connections <= 1)) node = k;
            break;
          }
          await sleep(100);
        }
        if (node < 0) await h.page.reload({ waitUntil: 'load' });
      }
      assert.ok(node >= 0, `${person.name} landed on a node of their own`);
      placedOn.push(node);
    }
    const states = await nodeStates();
    t.diagnostic(`connections per node: ${states.map((s) => `${s.id}: ${s.connections}`).join(', ')}`);
    assert.deepEqual(states.map((s) => s.connections), [1, 1, 1], 'one browser per node');
    assert.ok(states.every((s) => s.clusterNodes === 3), `every node sees three: ${JSON.stringify(states)}`);
    await waitAllHear(handles, Date.now(), { newConnection: false });
    await assertTones(t, handles, 'at first');

    // Something to keep: a chat line.
    await handles[0].page.fill('#chat-input', 'said before the kill');
    await handles[0].page.press('#chat-input', 'Enter');
    await Promise.all(
      handles.map((h) =>
        h.page.waitForFunction(() => window.f4c.chat.some((m) => m.text === 'said before the kill'), null, {
          timeout: 10_000,
          polling: 100,
        }),
      ),
    );
    const loadedAt = await Promise.all(handles.map((h) => h.page.evaluate(() => performance.timeOrigin)));

    // ---- 1. The room's node dies.
    const victim = await roomNode();
    await markConnections(handles);
    const killedAt = Date.now();
    const exit = await nodes[victim].halt('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    const recoveryMs = await waitAllHear(handles, killedAt, { newConnection: true });
    console.log(`cluster: from SIGKILL of the room's node to every member hearing the others again: ${recoveryMs} ms`);
    t.diagnostic(`recovery after SIGKILL of the room's node: ${recoveryMs} ms`);
    const survivor = await roomNode();
    assert.notEqual(survivor, victim, 'the room runs on a survivor');
    await assertTones(t, handles, 'after the kill');
    for (const [i, h] of handles.entries()) {
      assert.equal(await h.page.evaluate(() => performance.timeOrigin), loadedAt[i], `${h.label}: no page reload`);
      const st = await h.page.evaluate(f4cSnapshot);
      assert.deepEqual(Object.values(st.members).map((m) => m.name).sort(), PEOPLE.map((p) => p.name).sort());
      const kept = await h.page.$$eval('#chat-log .chat-text', (els) => els.filter((e) => e.textContent === 'said before the kill').length);
      assert.equal(kept, 1, `${h.label}: the chat line is kept, once`);
    }
    // A newcomer gets the chat from before the kill: it lived in Redis, not on the dead node.
    const late = await openPage(browsers[0], `${lb.base}/room/${ROOM}?name=Dan&audio=raw`, 'Dan');
    pages.push(late);
    await late.page.waitForFunction(() => window.f4c.state === 'joined' && window.f4c.chat.some((m) => m.text === 'said before the kill'), null, {
      timeout: 15_000,
      polling: 100,
    });
    await late.context.close();
    pages.pop();
    await nodes[victim].resume();

    // ---- 2. Redis restarts mid-call.
    await Promise.all(handles.map((h) => h.page.evaluate(() => (window.__rejoins = window.f4c.reconnect.rejoins, true))));
    await redis.stop();
    await sleep(1500);
    assert.ok((await Promise.all(handles.map(hearsEveryone))).every(Boolean), 'the call goes on while Redis is away');
    await redis.start();
    await sleep(1500);
    assert.ok((await Promise.all(handles.map(hearsEveryone))).every(Boolean), 'the call goes on after Redis is back');
    const rejoined = await Promise.all(handles.map((h) => h.page.evaluate(() => window.f4c.reconnect.rejoins - window.__rejoins)));
    assert.deepEqual(rejoined, [0, 0, 0], 'nobody had to reconnect');
    // New rooms need Redis: they work again once it is back (and every node is registered again).
    const fresh = await openPage(browsers[1], `${lb.base}/room/after-redis?name=Eve&audio=raw`, 'Eve');
    pages.push(fresh);
    await waitJoined(fresh.page, 1, 20_000);
    await fresh.context.close();
    pages.pop();
    await assertTones(t, handles, 'after the Redis restart');

    // ---- 3. A rolling restart: each node in turn stops politely and starts again.
    for (const [k, n] of nodes.entries()) {
      await markConnections(handles);
      const movedBefore = await Promise.all(handles.map((h) => h.page.evaluate(() => window.f4c.reconnect.rejoins)));
      const stoppedAt = Date.now();
      const stopped = await n.halt('SIGTERM', 15_000);
      assert.equal(stopped.code, 0, `node ${k} exits cleanly after draining`);
      const states = await nodeStates();
      // The pages that were on it, or in a room on it, moved; the others stayed.
      const affected = [];
      for (const [i, h] of handles.entries()) {
        const rejoins = await h.page.evaluate(() => window.f4c.reconnect.rejoins);
        if (rejoins > movedBefore[i] || (await h.page.evaluate(() => window.f4c.state !== 'joined'))) affected.push(h);
      }
      const backMs = await waitAllHear(handles, stoppedAt, { newConnection: false });
      t.diagnostic(`rolling restart, node ${k} stopped: ${affected.map((h) => h.label).join(', ') || 'nobody'} moved; all hear each other ${backMs} ms after the stop began (nodes up: ${states.filter(Boolean).length})`);
      await n.resume();
    }
    await waitAllHear(handles, Date.now(), { newConnection: false });
    await assertTones(t, handles, 'after the rolling restart');
    const { rooms } = await json(nodes[0].base, '/api/rooms');
    const ours = rooms.filter((r) => r.room === ROOM);
    assert.equal(ours.length, 1, `one room of that name in the cluster: ${JSON.stringify(rooms)}`);
    assert.equal(ours[0].members, 3);
    for (const [i, h] of handles.entries()) {
      assert.equal(await h.page.evaluate(() => performance.timeOrigin), loadedAt[i], `${h.label}: no page reload`);
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
    }
  });
});
