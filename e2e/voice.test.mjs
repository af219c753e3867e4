// End to end: a real free4chat server and three headless Chromium browsers, each "speaking" a
// different sine tone through a fake microphone. Every browser must hear exactly the other two
// tones, each on one of its three audio slots and named by the member who sends it, see the
// others in its member list and speaking, and show hostile text as text. The server spreads a
// room over its two media workers from the third member on, so the tones also cross from one
// worker to the other, both ways.
//
// Run from the repository root: node --test e2e/
// The server binary: $FREE4CHAT_BIN, default target/debug/free4chat.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  DESKTOP,
  OUT_DIR,
  PHONE,
  SCREENSHOT_DIR,
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
  { name: 'Alice', freq: 330 },
  { name: 'Bob', freq: 550 },
  { name: 'Carol', freq: 880 },
];
const FREQ_TOLERANCE_HZ = 15;
const JOIN_TIMEOUT_MS = 30_000;

let tmpDir;
let server;
const browsers = []; // one per person, same order as PEOPLE
const pages = []; // every page opened, for diagnostics and the final checks

const randomRoom = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`;

function roomUrl(room, name) {
  // audio=raw: no echo cancellation / noise suppression / gain control, which would treat a
  // steady tone as noise to remove.
  return `${server.base}/room/${room}?name=${encodeURIComponent(name)}&audio=raw`;
}

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server }), body);
}

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-'));
  const tones = await Promise.all(
    PEOPLE.map((p) => makeTone(path.join(tmpDir, `tone-${p.freq}.wav`), p.freq, 30)),
  );
  const port = await freePort();
  server = await startServer({
    port,
    logFile: path.join(OUT_DIR, 'server.log'),
    extraArgs: ['--media-workers', '2', '--room-spread-at', '2'],
  });
  for (const tone of tones) browsers.push(await launchBrowser(tone));
}, { timeout: 75_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (server) await server.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}, { timeout: 20_000 });

test('each browser hears exactly the other two tones', { timeout: 90_000 }, async (t) => {
  await withDiagnostics('voice', async () => {
    // A plain room name: this room is also the one in the README's screenshots.
    const room = 'practice';
    const handles = [];
    for (const [i, person] of PEOPLE.entries()) {
      const h = await openPage(browsers[i], roomUrl(room, person.name), person.name, {
        contextOptions: { viewport: DESKTOP },
      });
      pages.push(h);
      handles.push(h);
    }

    // Everyone is in, sees three members and hears the two others on its live audio slots.
    await Promise.all(handles.map((h) => waitJoined(h.page, 3, JOIN_TIMEOUT_MS)));
    await Promise.all(handles.map((h) => waitStreams(h.page, 2, JOIN_TIMEOUT_MS)));

    const states = await Promise.all(handles.map((h) => h.page.evaluate(f4cSnapshot)));

    // Who is who: every page agrees on the ids of the three names.
    const idOf = {};
    for (const [i, person] of PEOPLE.entries()) {
      const st = states[i];
      assert.equal(st.members[st.selfId]?.name, person.name, `${person.name}: own entry`);
      idOf[person.name] = st.selfId;
    }
    for (const [i, person] of PEOPLE.entries()) {
      const names = Object.fromEntries(Object.entries(states[i].members).map(([id, m]) => [m.name, id]));
      assert.deepEqual(names, idOf, `${person.name}: member ids`);
    }

    // The member list on screen shows everyone, by name, ourselves marked.
    for (const [i, person] of PEOPLE.entries()) {
      const shown = await handles[i].page.$$eval('#members .member', (items) =>
        items.map((li) => ({
          id: li.dataset.memberId,
          name: li.querySelector('.name').textContent,
          you: !li.querySelector('.you').hidden,
        })),
      );
      assert.deepEqual(
        shown.map((m) => m.name).sort(),
        PEOPLE.map((p) => p.name).sort(),
        `${person.name}: names in the member list`,
      );
      assert.deepEqual(
        shown.filter((m) => m.you).map((m) => m.name),
        [person.name],
        `${person.name}: "(you)" marks only ourselves`,
      );
    }

    // The audio: on the slot each other member is heard on, that member's tone; the third slot
    // carries nobody and is silent.
    const measured = await Promise.all(
      handles.map((h) => h.page.evaluate(measureRemoteTones, { durationMs: 2000, samples: 10 })),
    );
    for (const [i, person] of PEOPLE.entries()) {
      const others = PEOPLE.filter((p) => p !== person);
      const carrying = measured[i].filter((m) => m.id !== null);
      const byId = Object.fromEntries(carrying.map((m) => [m.id, m]));
      assert.deepEqual(measured[i].map((m) => m.key).sort(), ['slot-0', 'slot-1', 'slot-2'], `${person.name}: three audio slots`);
      assert.equal(carrying.length, others.length, `${person.name}: one slot per other member`);
      assert.ok(carrying.every((m) => m.ids.length === 1), `${person.name}: each slot carried one member: ${JSON.stringify(carrying)}`);
      assert.deepEqual(
        Object.keys(byId).sort(),
        others.map((p) => idOf[p.name]).sort(),
        `${person.name}: the slots carry exactly the other two members`,
      );
      for (const empty of measured[i].filter((m) => m.id === null)) {
        assert.ok(empty.rms < 0.005, `${person.name}: the slot nobody is on is silent: ${JSON.stringify(empty)}`);
      }
      for (const other of others) {
        const m = byId[idOf[other.name]];
        if (m) {
          t.diagnostic(
            `${person.name} hears ${other.name}: ${m.freq?.toFixed(1)} Hz at ${m.level?.toFixed(1)} dB, rms ${m.rms?.toFixed(3)}`,
          );
        }
        const what = `${person.name} hearing ${other.name} (${JSON.stringify(m)})`;
        assert.ok(m.freq !== null, `${what}: no signal at all`);
        assert.ok(
          Math.abs(m.freq - other.freq) <= FREQ_TOLERANCE_HZ,
          `${what}: expected ${other.freq} Hz ± ${FREQ_TOLERANCE_HZ}`,
        );
        assert.ok(m.level > -60, `${what}: tone level too low`);
        assert.ok(m.rms > 0.02, `${what}: signal too quiet`);
      }
    }

    // Carol's session is on the other worker than Alice's and Bob's: every tone she heard, and
    // hers that they heard, crossed between the workers.
    const stats = await (await fetch(`${server.base}/api/stats`)).json();
    t.diagnostic(`media: ${JSON.stringify(stats.media)}`);
    assert.equal(stats.media.rooms, 2, 'the room is held by both media workers');
    assert.ok(stats.media.relayed > 50 && stats.media.relayed_in > 50, 'packets crossed between the workers');
    assert.equal(stats.media.relay_dropped, 0);

    // The server saw everyone speak (the tones are loud), and each page heard about it and
    // shows the others speaking, with their level bars moving.
    await Promise.all(
      handles.map((h, i) => {
        const others = PEOPLE.filter((_, j) => j !== i).map((p) => idOf[p.name]);
        return h.page.waitForFunction(
          (ids) =>
            ids.every(
              (id) =>
                window.f4c.everSpoke.has(id) &&
                document.querySelector(`#members .member[data-member-id="${id}"]`)?.dataset.speaking === 'true' &&
                new DOMMatrix(getComputedStyle(document.querySelector(`#members .member[data-member-id="${id}"] .level-fill`)).transform).a > 0.3,
            ),
          others,
          { timeout: 15_000, polling: 250 },
        );
      }),
    );

    // Media is encrypted with an AEAD-AES-GCM SRTP profile, and audio uses Opus.
    for (const h of handles) {
      const media = await h.page.evaluate(async () => {
        const stats = [...(await window.f4c.pc.getStats()).values()];
        const transport = stats.find((s) => s.type === 'transport' && s.srtpCipher);
        const codecs = stats.filter((s) => s.type === 'codec').map((s) => s.mimeType);
        return { cipher: transport?.srtpCipher ?? null, codecs };
      });
      t.diagnostic(`${h.label}: SRTP ${media.cipher}, codecs ${[...new Set(media.codecs)].join(' ')}`);
      assert.match(media.cipher ?? '', /^(SRTP_)?AEAD_AES_(128|256)_GCM$/, `${h.label}: SRTP cipher`);
      assert.ok(media.codecs.includes('audio/opus'), `${h.label}: Opus negotiated`);
    }

    for (const h of handles) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      const refused = await h.page.evaluate(() => window.f4c.errors);
      assert.deepEqual(refused, [], `${h.label}: the server refused something the client sent`);
    }

    // The README's pictures of a room with three members: a few chat lines, then one page as
    // on a desktop and one as on a phone.
    const [alice, bob, carol] = handles;
    const say = async (h, text) => {
      await h.page.fill('#chat-input', text);
      await h.page.press('#chat-input', 'Enter');
    };
    await say(alice, 'Hi both! Shall we practise the past tense today?');
    await say(bob, 'Sure. Yesterday I walked to the market and bought some apples.');
    await say(carol, 'Good one! A short guide: https://en.wikipedia.org/wiki/Past_tense');
    await Promise.all(
      handles.map((h) =>
        h.page.waitForFunction(() => window.f4c.chat.length >= 3, null, { timeout: 10_000, polling: 100 }),
      ),
    );
    for (const h of [alice, carol]) await h.page.click('#headphones-dismiss');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await alice.page.waitForTimeout(400);
    await alice.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'room-desktop.png') });
    await carol.page.setViewportSize(PHONE);
    await carol.page.waitForTimeout(400);
    assert.ok(
      (await carol.page.evaluate(() => document.documentElement.scrollWidth)) <= PHONE.width,
      'the room fits a phone without scrolling sideways',
    );
    // The window as a phone shows it: the control bar stays at its bottom.
    await carol.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'room-phone.png') });
  });
});

test('switching the microphone and the speaker: the others keep hearing the new microphone', { timeout: 60_000 }, async (t) => {
  await withDiagnostics('devices', async () => {
    const room = randomRoom('e2e-devices');
    const alice = await openPage(browsers[0], roomUrl(room, 'Alice'), 'Alice-devices');
    pages.push(alice);
    const bob = await openPage(browsers[1], roomUrl(room, 'Bob'), 'Bob-devices');
    pages.push(bob);
    await Promise.all([alice, bob].map((h) => waitJoined(h.page, 2)));
    await Promise.all([alice, bob].map((h) => waitStreams(h.page, 1)));
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);

    // The devices panel lists the browser's microphones and speakers by name.
    await alice.page.click('#devices-btn');
    assert.equal(await alice.page.getAttribute('#devices-btn', 'aria-expanded'), 'true');
    await alice.page.waitForFunction(
      () => document.querySelectorAll('#mic-select option').length >= 2 && document.querySelectorAll('#speaker-select option').length >= 2,
      null,
      { timeout: 10_000, polling: 100 },
    );
    const mics = await alice.page.$$eval('#mic-select option', (os) => os.map((o) => ({ value: o.value, label: o.textContent })));
    const speakers = await alice.page.$$eval('#speaker-select option', (os) => os.map((o) => ({ value: o.value, label: o.textContent })));
    t.diagnostic(`microphones: ${mics.map((m) => m.label).join(', ')}; speakers: ${speakers.map((m) => m.label).join(', ')}`);
    assert.ok(mics.every((m) => m.label.trim() !== ''), 'every microphone has a name');

    const sent = () =>
      window.f4c.pc.getSenders().filter((s) => s.track).map((s) => ({ id: s.track.id, device: s.track.getSettings().deviceId, state: s.track.readyState }));
    const before = await alice.page.evaluate(sent);
    assert.equal(before.length, 1, 'one microphone track is sent');
    const target = mics.find((m) => m.value && m.value !== 'default' && m.value !== before[0].device);
    assert.ok(target, `another microphone to pick: ${JSON.stringify(mics)}`);

    // Pick it: the sent track is replaced in place, the old one released.
    await alice.page.selectOption('#mic-select', target.value);
    await alice.page.waitForFunction(
      (device) => window.f4c.pc.getSenders().some((s) => s.track && s.track.getSettings().deviceId === device),
      target.value,
      { timeout: 10_000, polling: 100 },
    );
    const after = await alice.page.evaluate(sent);
    assert.equal(after.length, 1, 'still one microphone track');
    assert.notEqual(after[0].id, before[0].id, 'a new track');
    assert.equal(await alice.page.evaluate(() => localStorage.getItem('free4chat.mic')), target.value, 'the choice is remembered');
    assert.equal(await alice.page.evaluate(() => window.f4c.micError), null);

    // Bob hears Alice's tone from the new microphone.
    await bob.page.waitForTimeout(500);
    const measured = await bob.page.evaluate(measureRemoteTones, { durationMs: 1500, samples: 8 });
    const m = measured.find((x) => x.id === aliceId);
    t.diagnostic(`Bob hears Alice after the switch: ${m?.freq?.toFixed(1)} Hz, rms ${m?.rms?.toFixed(3)}`);
    assert.ok(m && Math.abs(m.freq - PEOPLE[0].freq) <= FREQ_TOLERANCE_HZ && m.rms > 0.02, `Bob hears Alice: ${JSON.stringify(measured)}`);

    // A speaker: every remote audio element plays on it.
    const out = speakers.find((s) => s.value && s.value !== 'default');
    assert.ok(out, 'another speaker to pick');
    await alice.page.selectOption('#speaker-select', out.value);
    await alice.page.waitForFunction(
      (id) => {
        const all = [...document.querySelectorAll('#remote-audio audio')];
        return all.length === window.f4c.audioSlots && all.every((a) => a.sinkId === id);
      },
      out.value,
      { timeout: 10_000, polling: 100 },
    );
    assert.equal(await alice.page.evaluate(() => localStorage.getItem('free4chat.speaker')), out.value);

    for (const h of [alice, bob]) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      assert.deepEqual(await h.page.evaluate(() => window.f4c.errors), [], `${h.label}: refused messages`);
    }
    // Done with this room: leave it, and keep these pages out of the later checks.
    for (const h of [alice, bob]) pages.splice(pages.indexOf(h), 1);
    await Promise.all([alice, bob].map((h) => h.context.close()));
  });
});

test('chat text and nicknames are shown as text, never as markup', { timeout: 60_000 }, async () => {
  await withDiagnostics('chat', async () => {
    const room = randomRoom('e2e-chat');
    const evilName = 'Eve <b>bold</b>';
    const evilText = 'hi <img src=x onerror="window.__pwned=1"> & <script>window.__pwned=2</script>';

    const eve = await openPage(browsers[0], roomUrl(room, evilName), 'Eve');
    pages.push(eve);
    const bob = await openPage(browsers[1], roomUrl(room, 'Bob'), 'Bob-chat');
    pages.push(bob);
    await Promise.all(
      [eve, bob].map((h) =>
        h.page.waitForFunction(
          (n) => {
            const f = window.f4c;
            return f && f.state === 'joined' && f.members.size === n;
          },
          2,
          { timeout: JOIN_TIMEOUT_MS, polling: 200 },
        ),
      ),
    );

    // Eve sends through the page's own chat box.
    await eve.page.fill('#chat-input', evilText);
    await eve.page.press('#chat-input', 'Enter');

    const hasMessage = (text) => window.f4c.chat.some((m) => m.text === text);
    await eve.page.waitForFunction(hasMessage, evilText, { timeout: 10_000, polling: 200 });
    await bob.page.waitForFunction(hasMessage, evilText, { timeout: 10_000, polling: 200 });

    // A latecomer gets it from the room's history.
    const carol = await openPage(browsers[2], roomUrl(room, 'Carol'), 'Carol-chat');
    pages.push(carol);
    await carol.page.waitForFunction(
      (text) => {
        const f = window.f4c;
        return f && f.state === 'joined' && f.chat.some((m) => m.text === text);
      },
      evilText,
      { timeout: JOIN_TIMEOUT_MS, polling: 200 },
    );

    for (const h of [eve, bob, carol]) {
      const seen = await h.page.evaluate(() => {
        const msgs = [...document.querySelectorAll('#chat-log .chat-msg')];
        return {
          messages: msgs.map((li) => ({
            name: li.querySelector('.chat-name').textContent,
            text: li.querySelector('.chat-text').textContent,
          })),
          memberNames: [...document.querySelectorAll('#members .name')].map((n) => n.textContent),
          injected: document.querySelectorAll('#chat-log img, #chat-log script, #members b, #chat-log b').length,
        };
      });
      assert.ok(
        seen.messages.some((m) => m.name === evilName && m.text === evilText),
        `${h.label}: the message is shown literally, with its sender's literal name: ${JSON.stringify(seen.messages)}`,
      );
      assert.ok(seen.memberNames.includes(evilName), `${h.label}: the nickname is shown literally`);
      assert.equal(seen.injected, 0, `${h.label}: no elements were made from user text`);
    }

    // Give any injected handler a moment to run, then make sure none did, anywhere.
    await new Promise((r) => setTimeout(r, 500));
    for (const h of pages) {
      const pwned = await h.page.evaluate(() => window.__pwned);
      assert.equal(pwned, undefined, `${h.label}: injected script ran`);
    }
    for (const h of [eve, bob, carol]) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      const refused = await h.page.evaluate(() => window.f4c.errors);
      assert.deepEqual(refused, [], `${h.label}: the server refused something the client sent`);
    }
  });
});
