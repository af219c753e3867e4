// End to end: a real free4chat server and three headless Chromium browsers, each "speaking" a
// different sine tone through a fake microphone. Every browser must hear exactly the other two
// tones, see the others in its member list and speaking, and show hostile text as text.
//
// Run from the repository root: node --test e2e/
// The server binary: $FREE4CHAT_BIN, default target/debug/free4chat.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  OUT_DIR,
  ensureOutDir,
  f4cSnapshot,
  freePort,
  launchBrowser,
  makeTone,
  measureRemoteTones,
  openPage,
  startServer,
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

/** Runs a test body; on failure leaves screenshots, page logs and state under e2e/out/. */
async function withDiagnostics(name, body) {
  try {
    await body();
  } catch (err) {
    try {
      ensureOutDir();
      const report = [`# ${name} failed: ${err && err.stack ? err.stack : err}`];
      for (const [i, h] of pages.entries()) {
        const file = path.join(OUT_DIR, `${name}-${i}-${h.label}.png`.replace(/[^\w.-]+/g, '_'));
        await h.page.screenshot({ path: file, fullPage: true, timeout: 5000 }).catch(() => {});
        const state = await h.page.evaluate(f4cSnapshot).catch((e) => `unavailable: ${e.message}`);
        report.push(`## page ${i} (${h.label}) state`, JSON.stringify(state, null, 2));
        report.push(`## page ${i} (${h.label}) console`, ...h.log);
      }
      if (server) report.push('## server output (tail)', server.tail());
      const reportFile = path.join(OUT_DIR, `${name}.log`.replace(/[^\w.-]+/g, '_'));
      writeFileSync(reportFile, report.join('\n') + '\n');
      console.error(`diagnostics: ${reportFile}; server log: ${server ? server.logFile : 'none'}`);
      if (server) console.error(`--- server output (tail) ---\n${server.tail()}`);
    } catch (diagErr) {
      console.error('could not save diagnostics:', diagErr);
    }
    throw err;
  }
}

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-'));
  const tones = await Promise.all(
    PEOPLE.map((p) => makeTone(path.join(tmpDir, `tone-${p.freq}.wav`), p.freq, 30)),
  );
  const port = await freePort();
  server = await startServer({ port, logFile: path.join(OUT_DIR, 'server.log') });
  for (const tone of tones) browsers.push(await launchBrowser(tone));
}, { timeout: 75_000 });

after(async () => {
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (server) await server.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}, { timeout: 20_000 });

test('each browser hears exactly the other two tones', { timeout: 90_000 }, async (t) => {
  await withDiagnostics('voice', async () => {
    const room = randomRoom('e2e');
    const handles = [];
    for (const [i, person] of PEOPLE.entries()) {
      const h = await openPage(browsers[i], roomUrl(room, person.name), person.name);
      pages.push(h);
      handles.push(h);
    }

    // Everyone is in, sees three members and receives two live audio streams.
    await Promise.all(
      handles.map((h) =>
        h.page.waitForFunction(
          () => {
            const f = window.f4c;
            return (
              f &&
              f.state === 'joined' &&
              f.members.size === 3 &&
              f.remoteStreams.size === 2 &&
              [...f.remoteStreams.values()].every((s) =>
                s.getAudioTracks().some((t) => t.readyState === 'live'),
              )
            );
          },
          null,
          { timeout: JOIN_TIMEOUT_MS, polling: 250 },
        ),
      ),
    );

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

    // The audio: from each other member's stream, that member's tone.
    const measured = await Promise.all(
      handles.map((h) => h.page.evaluate(measureRemoteTones, { durationMs: 2000, samples: 10 })),
    );
    for (const [i, person] of PEOPLE.entries()) {
      const others = PEOPLE.filter((p) => p !== person);
      const byId = Object.fromEntries(measured[i].map((m) => [m.id, m]));
      assert.deepEqual(
        Object.keys(byId).sort(),
        others.map((p) => idOf[p.name]).sort(),
        `${person.name}: remote streams are exactly the other two members`,
      );
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

    // The server saw everyone speak (the tones are loud), and each page heard about it.
    await Promise.all(
      handles.map((h, i) => {
        const others = PEOPLE.filter((_, j) => j !== i).map((p) => idOf[p.name]);
        return h.page.waitForFunction(
          (ids) => ids.every((id) => window.f4c.everSpoke.has(id)),
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
