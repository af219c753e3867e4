// End to end: the connection to the server goes away and comes back. Two headless Chromium
// browsers, each with its own sine tone as a microphone, are in a room when the server process
// restarts on the same port: first politely (SIGTERM: every member is told `bye server_shutdown`),
// then abruptly (SIGKILL and a pause: the sockets just die, like a dropped network). Each time
// both pages must say what they are doing, rejoin the same room by themselves with the same name
// and microphone state, without a page reload, and hear each other's tone again.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  DESKTOP,
  OUT_DIR,
  PHONE,
  ensureOutDir,
  f4cSnapshot,
  freePort,
  launchBrowser,
  makeTone,
  measureRemoteTones,
  openPage,
  startServer,
  waitJoined,
  waitStreams,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const PEOPLE = [
  { name: 'Ann', freq: 440 },
  { name: 'Ben', freq: 740 },
];
const FREQ_TOLERANCE_HZ = 15;
const REJOIN_TIMEOUT_MS = 30_000;

let tmpDir;
let server;
const browsers = [];
const pages = [];

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-reconnect-'));
  const tones = await Promise.all(
    PEOPLE.map((p) => makeTone(path.join(tmpDir, `tone-${p.freq}.wav`), p.freq, 30)),
  );
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-reconnect.log') });
  for (const tone of tones) browsers.push(await launchBrowser(tone));
}, { timeout: 75_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (server) await server.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}, { timeout: 20_000 });

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server }), body, (page) => page.evaluate(() => window.__seen));
}

/** Records, in the page, every connection state and reconnect notice it shows from now on. */
function observe() {
  clearInterval(window.__observer);
  window.__seen = { states: [], notices: [], maxAttempt: 0, loads: performance.timeOrigin };
  const seen = window.__seen;
  window.__observer = setInterval(() => {
    const f = window.f4c;
    if (seen.states.at(-1) !== f.state) seen.states.push(f.state);
    seen.maxAttempt = Math.max(seen.maxAttempt, f.reconnect.attempt);
    const notice = document.getElementById('conn-notice');
    const text = notice && !notice.hidden ? notice.textContent : '';
    if (text && seen.notices.at(-1) !== text) seen.notices.push(text);
  }, 25);
}

/** Each page hears the other's tone on the other's current member id. */
async function assertBothHear(t, handles, label) {
  const states = await Promise.all(handles.map((h) => h.page.evaluate(f4cSnapshot)));
  const measured = await Promise.all(
    handles.map((h) => h.page.evaluate(measureRemoteTones, { durationMs: 1500, samples: 8 })),
  );
  for (const [i, person] of PEOPLE.entries()) {
    const other = PEOPLE[1 - i];
    const otherId = states[1 - i].selfId;
    const m = measured[i].find((x) => x.id === otherId);
    const what = `${label}: ${person.name} hearing ${other.name} (id ${otherId}; ${JSON.stringify(measured[i])})`;
    assert.ok(m, `${what}: no stream from that member`);
    t.diagnostic(`${label}: ${person.name} hears ${other.name}: ${m.freq?.toFixed(1)} Hz, rms ${m.rms?.toFixed(3)}`);
    assert.ok(m.freq !== null && Math.abs(m.freq - other.freq) <= FREQ_TOLERANCE_HZ, `${what}: wrong or no tone`);
    assert.ok(m.rms > 0.02, `${what}: too quiet`);
  }
}

test('after a server restart and after a dropped connection, both members rejoin by themselves and hear each other again', { timeout: 180_000 }, async (t) => {
  await withDiagnostics('reconnect', async () => {
    const room = 'reconnect-room';
    const handles = [];
    for (const [i, person] of PEOPLE.entries()) {
      const url = `${server.base}/room/${room}?name=${encodeURIComponent(person.name)}&audio=raw`;
      // Ann on a desktop, Ben on a phone.
      const h = await openPage(browsers[i], url, person.name, { contextOptions: { viewport: i === 0 ? DESKTOP : PHONE } });
      pages.push(h);
      handles.push(h);
    }
    const [ann, ben] = handles;
    await Promise.all(handles.map((h) => waitJoined(h.page, 2)));
    await Promise.all(handles.map((h) => waitStreams(h.page, 1)));
    await assertBothHear(t, handles, 'before');

    // Something to keep: a chat line, and Ben's microphone off.
    await ann.page.fill('#chat-input', 'before the restart');
    await ann.page.press('#chat-input', 'Enter');
    await ben.page.click('#mute-btn');
    const benOldId = await ben.page.evaluate(() => window.f4c.selfId);
    await ann.page.waitForFunction(
      ([id]) => window.f4c.members.get(id)?.muted === true && window.f4c.chat.some((m) => m.text === 'before the restart'),
      [benOldId],
      { timeout: 10_000, polling: 100 },
    );
    await ben.page.waitForFunction(() => window.f4c.chat.some((m) => m.text === 'before the restart'), null, {
      timeout: 10_000,
      polling: 100,
    });

    // ---- 1. The server restarts politely: `bye server_shutdown`, then a closed socket.
    // (A fresh server numbers its members from 1 again, so ids may repeat: the count of rejoins
    // and the new peer connection tell a rejoin.)
    const pcsBefore = await Promise.all(
      handles.map((h) => h.page.evaluate(() => (window.__pc1 = window.f4c.pc, true))),
    );
    assert.deepEqual(pcsBefore, [true, true]);
    await Promise.all(handles.map((h) => h.page.evaluate(observe)));
    // It stays away a moment, so that the first attempts to come back fail.
    const exit = await server.restart({ signal: 'SIGTERM', downMs: 1500 });
    t.diagnostic(`server stopped with ${JSON.stringify(exit)} and started again on port ${server.port}`);
    assert.equal(exit.code, 0, 'the server exits cleanly on SIGTERM');

    await Promise.all(
      handles.map((h) =>
        h.page.waitForFunction(
          () => {
            const f = window.f4c;
            return f.state === 'joined' && f.members.size === 2 && f.reconnect.rejoins === 1;
          },
          null,
          { timeout: REJOIN_TIMEOUT_MS, polling: 100 },
        ),
      ),
    );
    for (const h of handles) {
      const seen = await h.page.evaluate(() => window.__seen);
      t.diagnostic(`${h.label} after the restart: states ${seen.states.join(' → ')}; notices ${JSON.stringify(seen.notices)}`);
      assert.ok(seen.states.includes('reconnecting'), `${h.label}: showed that it was reconnecting`);
      assert.ok(
        seen.notices.some((n) => /The server is restarting\./.test(n) && /Reconnect(ing in \d+ s… \(attempt \d+\)|ing… \(attempt \d+\))/.test(n)),
        `${h.label}: said why and what it is doing: ${JSON.stringify(seen.notices)}`,
      );
      assert.ok(
        seen.notices.every((n) => /The server is restarting\./.test(n)),
        `${h.label}: kept saying why until it was back, through failed attempts: ${JSON.stringify(seen.notices)}`,
      );
      assert.equal(seen.loads, await h.page.evaluate(() => performance.timeOrigin), `${h.label}: no page reload`);
      const fresh = await h.page.evaluate(() => window.f4c.pc !== window.__pc1 && window.__pc1.connectionState === 'closed');
      assert.ok(fresh, `${h.label}: a new peer connection, the old one closed`);
      const notice = await h.page.$eval('#conn-notice', (n) => n.hidden);
      assert.ok((await h.page.evaluate(() => document.documentElement.scrollWidth)) <= PHONE.width || h.label === 'Ann');
      assert.ok(notice, `${h.label}: the reconnect notice is gone once back`);
      // Same room, same name.
      const st = await h.page.evaluate(f4cSnapshot);
      assert.deepEqual(
        Object.values(st.members).map((m) => m.name).sort(),
        PEOPLE.map((p) => p.name).sort(),
        `${h.label}: both names back in the member list`,
      );
      // The chat line from before is still shown, once.
      const count = await h.page.$$eval('#chat-log .chat-text', (els) =>
        els.filter((e) => e.textContent === 'before the restart').length,
      );
      assert.equal(count, 1, `${h.label}: the earlier chat line is kept, not repeated`);
    }

    // Ben rejoined muted, and everyone sees it.
    const benId = await ben.page.evaluate(() => window.f4c.selfId);
    assert.equal(await ben.page.evaluate(() => window.f4c.muted), true, 'Ben is still muted');
    assert.equal(await ben.page.$eval('#mute-label', (e) => e.textContent), 'Unmute');
    await ann.page.waitForFunction((id) => window.f4c.members.get(id)?.muted === true, benId, {
      timeout: 10_000,
      polling: 100,
    });
    // Ben unmutes; both hear each other on the new connection.
    await ben.page.click('#mute-btn');
    await ann.page.waitForFunction((id) => window.f4c.members.get(id)?.muted === false, benId, {
      timeout: 10_000,
      polling: 100,
    });
    await Promise.all(handles.map((h) => waitStreams(h.page, 1)));
    await assertBothHear(t, handles, 'after the restart');

    // ---- 2. The connection just drops: the server is killed and stays away for a while.
    await Promise.all(handles.map((h) => h.page.evaluate(() => (window.__pc2 = window.f4c.pc, true))));
    await Promise.all(handles.map((h) => h.page.evaluate(observe)));
    await server.restart({ signal: 'SIGKILL', downMs: 2500 });
    await Promise.all(
      handles.map((h) =>
        h.page.waitForFunction(
          () => {
            const f = window.f4c;
            return f.state === 'joined' && f.members.size === 2 && f.reconnect.rejoins === 2 && f.pc !== window.__pc2;
          },
          null,
          { timeout: REJOIN_TIMEOUT_MS, polling: 100 },
        ),
      ),
    );
    for (const h of handles) {
      const seen = await h.page.evaluate(() => window.__seen);
      t.diagnostic(`${h.label} after the drop: states ${seen.states.join(' → ')}; max attempt ${seen.maxAttempt}; notices ${JSON.stringify(seen.notices)}`);
      assert.ok(seen.states.includes('reconnecting'), `${h.label}: showed that it was reconnecting`);
      assert.ok(seen.maxAttempt >= 2, `${h.label}: kept trying while the server was away (attempts: ${seen.maxAttempt})`);
      assert.ok(
        seen.notices.some((n) => /The connection to the server was lost\./.test(n)),
        `${h.label}: said the connection was lost: ${JSON.stringify(seen.notices)}`,
      );
      assert.ok(
        seen.notices.some((n) => /attempt 2\b/.test(n)),
        `${h.label}: counted its attempts: ${JSON.stringify(seen.notices)}`,
      );
      assert.equal(seen.loads, await h.page.evaluate(() => performance.timeOrigin), `${h.label}: no page reload`);
    }
    await Promise.all(handles.map((h) => waitStreams(h.page, 1)));
    await assertBothHear(t, handles, 'after the drop');

    for (const h of handles) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      // The polite restart announces itself with `error shutting_down` before its `bye`.
      const refused = await h.page.evaluate(() => window.f4c.errors.filter((e) => e.code !== 'shutting_down'));
      assert.deepEqual(refused, [], `${h.label}: the server refused something the client sent`);
    }
  });
});
