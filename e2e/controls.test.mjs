// End to end: the room's voice controls in real browsers against a real server. Alice and Bob
// each "speak" a tone through a fake microphone (raw audio, so that no noise suppression takes
// the steady tone away): each person's volume, the mute shortcut and push-to-talk, the notice
// for talking while muted, and the audio processing switches. Screenshots of each new state go
// to docs/screenshots/ (desktop and a 360 px phone).
//
// Run from the repository root: node --test e2e/controls.test.mjs

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
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
  openPage,
  startServer,
  waitJoined,
  waitStreams,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const JOIN_TIMEOUT_MS = 30_000;

let tmpDir;
let server;
let aliceBrowser;
let bobBrowser;
const pages = [];

const randomRoom = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`;
const roomUrl = (room, name, extra = '&audio=raw') => `${server.base}/room/${room}?name=${encodeURIComponent(name)}${extra}`;

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server }), body);
}

/** Opens `name`'s page in `room` in `browser`, at `viewport`, and remembers it for diagnostics. */
async function open(browser, room, name, viewport = DESKTOP, extra = undefined) {
  const h = await openPage(browser, roomUrl(room, name, extra), name, { contextOptions: { viewport } });
  pages.push(h);
  return h;
}

/** Alice and Bob in a fresh room, each hearing the other. */
async function pair(prefix, { aliceViewport = DESKTOP, bobViewport = DESKTOP } = {}) {
  const room = randomRoom(prefix);
  const alice = await open(aliceBrowser, room, 'Alice', aliceViewport);
  const bob = await open(bobBrowser, room, 'Bob', bobViewport);
  await Promise.all([alice, bob].map((h) => waitJoined(h.page, 2, JOIN_TIMEOUT_MS)));
  await Promise.all([alice, bob].map((h) => waitStreams(h.page, 1, JOIN_TIMEOUT_MS)));
  const bobId = await bob.page.evaluate(() => window.f4c.selfId);
  return { room, alice, bob, bobId };
}

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-controls-'));
  const [aliceTone, bobTone] = await Promise.all([
    makeTone(path.join(tmpDir, 'alice.wav'), 330, 30),
    makeTone(path.join(tmpDir, 'bob.wav'), 550, 30),
  ]);
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'controls-server.log') });
  aliceBrowser = await launchBrowser(aliceTone);
  bobBrowser = await launchBrowser(bobTone);
}, { timeout: 75_000 });

// Each test's pages close when it ends: a browser kept busy with the earlier tests' rooms
// answers the later ones slowly.
afterEach(async () => {
  await Promise.allSettled(pages.splice(0).map((h) => h.context.close()));
});

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  await Promise.allSettled([aliceBrowser, bobBrowser].filter(Boolean).map((b) => b.close()));
  if (server) await server.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}, { timeout: 20_000 });

/**
 * The volume of every audio element of the page, with the member it carries now.
 * @returns {{member: string | null, volume: number}[]}
 */
function elementVolumes() {
  return [...document.querySelectorAll('#remote-audio audio')].map((a) => ({
    member: a.dataset.memberId ?? null,
    volume: a.volume,
  }));
}

test('a volume slider per person sets how loud they are heard, on whichever slot carries them, and is remembered', { timeout: 120_000 }, async () => {
  await withDiagnostics('volume', async () => {
    const { alice, bobId } = await pair('volume');
    const slider = alice.page.locator(`#members .member[data-member-id="${bobId}"] input.member-volume`);
    assert.equal(await slider.getAttribute('aria-label'), 'Volume of Bob');
    assert.equal(await slider.inputValue(), '100');
    // Our own item has no slider to show.
    assert.equal(await alice.page.locator('#members .member.self input.member-volume').isVisible(), false);

    // Bob at full volume: the slot carrying him plays at full volume.
    const before = await alice.page.evaluate(elementVolumes);
    assert.ok(before.some((e) => e.member === bobId && e.volume === 1), `Bob heard at full volume: ${JSON.stringify(before)}`);

    await slider.fill('25');
    // The slot that carries Bob now plays at a quarter; the others, carrying nobody, stay full.
    await alice.page.waitForFunction(
      (id) => {
        const els = [...document.querySelectorAll('#remote-audio audio')];
        return els.some((a) => a.dataset.memberId === id) && els.every((a) => a.volume === (a.dataset.memberId === id ? 0.25 : 1));
      },
      bobId,
      { timeout: 5000, polling: 100 },
    );
    assert.equal(await slider.getAttribute('aria-valuetext'), '25%');
    for (const [viewport, file] of [
      [DESKTOP, 'volume-desktop.png'],
      [PHONE, 'volume-phone.png'],
    ]) {
      await alice.page.setViewportSize(viewport);
      await alice.page.locator('#members').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
    await alice.page.setViewportSize(DESKTOP);

    // Alice reloads the page: Bob, known again by his tag, is still at a quarter.
    await alice.page.reload();
    await waitJoined(alice.page, 2, JOIN_TIMEOUT_MS);
    await waitStreams(alice.page, 1, JOIN_TIMEOUT_MS);
    assert.equal(await slider.inputValue(), '25');
    await alice.page.waitForFunction(
      (id) => [...document.querySelectorAll('#remote-audio audio')].some((a) => a.dataset.memberId === id && a.volume === 0.25),
      bobId,
      { timeout: 5000, polling: 100 },
    );
  });
});

/** Waits until Bob's page shows Alice's microphone as `muted`. */
function waitAliceMutedFor(bob, aliceId, muted) {
  return bob.page.waitForFunction(
    ([id, want]) => window.f4c.members.get(id)?.muted === want,
    [aliceId, muted],
    { timeout: 10_000, polling: 100 },
  );
}

test('m mutes and unmutes, Space or a held button talks while muted, and neither acts while typing', { timeout: 120_000 }, async () => {
  await withDiagnostics('keys', async () => {
    const { alice, bob } = await pair('keys');
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    const button = alice.page.locator('#mute-btn');
    assert.equal(await button.getAttribute('title'), 'Mute (M)');
    assert.equal(await button.getAttribute('aria-keyshortcuts'), 'M');

    // `m` on the page mutes, for everyone to see; again unmutes.
    await alice.page.locator('#main').focus();
    await alice.page.keyboard.press('m');
    await waitAliceMutedFor(bob, aliceId, true);
    assert.equal(await button.getAttribute('title'), 'Unmute (M), or hold Space to talk');

    // Held Space: heard while held, muted again when let go.
    await alice.page.keyboard.down('Space');
    await waitAliceMutedFor(bob, aliceId, false);
    assert.equal(await alice.page.locator('#mute-label').textContent(), 'Talking');
    for (const [viewport, file] of [
      [DESKTOP, 'push-to-talk-desktop.png'],
      [PHONE, 'push-to-talk-phone.png'],
    ]) {
      await alice.page.setViewportSize(viewport);
      await alice.page.locator('#control-bar').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
    await alice.page.setViewportSize(DESKTOP);
    await alice.page.keyboard.up('Space');
    await waitAliceMutedFor(bob, aliceId, true);

    // In the chat field, `m` and Space are text.
    const input = alice.page.locator('#chat-input');
    await input.focus();
    await alice.page.keyboard.type('mm  m');
    assert.equal(await input.inputValue(), 'mm  m');
    assert.equal(await alice.page.evaluate(() => window.f4c.getState().mic.muted), true);

    // Holding the microphone button talks; letting go mutes again, without toggling.
    const box = await button.boundingBox();
    await alice.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await alice.page.mouse.down();
    await waitAliceMutedFor(bob, aliceId, false);
    await alice.page.mouse.up();
    await waitAliceMutedFor(bob, aliceId, true);
    // A short click still toggles.
    await button.click();
    await waitAliceMutedFor(bob, aliceId, false);
  });
});

test('talking while muted shows a notice that unmutes, from the microphone level', { timeout: 120_000 }, async () => {
  await withDiagnostics('hot-mic', async () => {
    const { alice, bob } = await pair('hotmic');
    const aliceId = await alice.page.evaluate(() => window.f4c.selfId);
    const notice = alice.page.locator('#hot-mic-notice');
    // Alice's tone plays on: unmuted, no notice.
    assert.equal(await notice.isVisible(), false);
    await alice.page.locator('#mute-btn').click();
    await waitAliceMutedFor(bob, aliceId, true);
    // Muted, her microphone still hears the tone: the notice says so.
    await notice.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await notice.textContent(), /You are muted\. Talking\?/);
    for (const [viewport, file] of [
      [DESKTOP, 'talking-while-muted-desktop.png'],
      [PHONE, 'talking-while-muted-phone.png'],
    ]) {
      await alice.page.setViewportSize(viewport);
      await alice.page.screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
    await alice.page.setViewportSize(DESKTOP);
    // Its button unmutes, and the notice goes.
    await notice.getByRole('button', { name: 'Unmute' }).click();
    await waitAliceMutedFor(bob, aliceId, false);
    await notice.waitFor({ state: 'hidden', timeout: 5000 });
  });
});

test('noise suppression and echo cancellation switches apply to the live microphone and are remembered', { timeout: 120_000 }, async () => {
  await withDiagnostics('processing', async () => {
    const room = randomRoom('processing');
    // Processed audio: no `audio=raw` in the address.
    const alice = await open(aliceBrowser, room, 'Alice', DESKTOP, '');
    await waitJoined(alice.page, 1, JOIN_TIMEOUT_MS);
    await alice.page.waitForFunction(() => !!window.f4c.getState().mic.track, null, { timeout: 10_000 });
    const settings = () => alice.page.evaluate(() => {
      const s = window.f4c.getState().mic.track.getSettings();
      return { noiseSuppression: s.noiseSuppression, echoCancellation: s.echoCancellation };
    });
    assert.deepEqual(await settings(), { noiseSuppression: true, echoCancellation: true });

    await alice.page.locator('#devices-btn').click();
    const noise = alice.page.getByRole('checkbox', { name: 'Noise suppression' });
    const echo = alice.page.getByRole('checkbox', { name: 'Echo cancellation' });
    assert.equal(await noise.isChecked(), true);
    assert.equal(await echo.isChecked(), true);
    await noise.uncheck();
    await alice.page.waitForFunction(
      () => window.f4c.getState().mic.track?.getSettings().noiseSuppression === false,
      null,
      { timeout: 10_000 },
    );
    assert.deepEqual(await settings(), { noiseSuppression: false, echoCancellation: true });
    // What the server receives is the new track: the sender carries it.
    assert.equal(
      await alice.page.evaluate(() => {
        const track = window.f4c.getState().mic.track;
        return window.f4c.getState().pc.getSenders().some((s) => s.track === track);
      }),
      true,
    );
    for (const [viewport, file] of [
      [DESKTOP, 'processing-desktop.png'],
      [PHONE, 'processing-phone.png'],
    ]) {
      await alice.page.setViewportSize(viewport);
      await alice.page.locator('#control-bar').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
    await alice.page.setViewportSize(DESKTOP);

    // Remembered: after a reload the microphone opens without noise suppression.
    await alice.page.reload();
    await waitJoined(alice.page, 1, JOIN_TIMEOUT_MS);
    await alice.page.waitForFunction(() => !!window.f4c.getState().mic.track, null, { timeout: 10_000 });
    assert.deepEqual(await settings(), { noiseSuppression: false, echoCancellation: true });
    await alice.page.locator('#devices-btn').click();
    assert.equal(await noise.isChecked(), false);
    await noise.check();
    await alice.page.waitForFunction(
      () => window.f4c.getState().mic.track?.getSettings().noiseSuppression === true,
      null,
      { timeout: 10_000 },
    );

    // With ?audio=raw the switches show everything off and cannot be changed.
    await alice.page.goto(roomUrl(room, 'Alice'));
    await waitJoined(alice.page, 1, JOIN_TIMEOUT_MS);
    await alice.page.locator('#devices-btn').click();
    assert.equal(await noise.isChecked(), false);
    assert.equal(await noise.isDisabled(), true);
    assert.equal(await alice.page.locator('#raw-hint').isVisible(), true);
  });
});

test('before joining: a microphone level meter, devices to pick, a test sound, and joining muted', { timeout: 120_000 }, async () => {
  await withDiagnostics('precheck', async () => {
    const room = randomRoom('precheck');
    const bob = await open(bobBrowser, room, 'Bob');
    await waitJoined(bob.page, 1, JOIN_TIMEOUT_MS);
    // Alice comes by the room's link, without a nickname: the page asks for one, with the check.
    const alice = await openPage(aliceBrowser, `${server.base}/room/${room}?audio=raw`, 'Alice', { contextOptions: { viewport: DESKTOP } });
    pages.push(alice);
    const { page } = alice;
    await page.locator('#ask-name-input').fill('Alice');
    // Where the browser already allows the microphone, the check opens by itself (and the
    // button goes): a click that finds no button is no failure.
    await page.getByRole('button', { name: 'Test microphone' }).click({ timeout: 2000 }).catch(() => {});
    // Her microphone's tone moves the meter.
    await page.waitForFunction(() => Number(document.querySelector('#check-meter')?.getAttribute('aria-valuenow')) > 30, null, {
      timeout: 10_000,
      polling: 100,
    });
    const mics = await page.locator('#check-mic-select option').count();
    assert.ok(mics >= 1, 'the microphones to pick from');

    // The test sound plays: a chime heard on the element that plays it.
    await page.getByRole('button', { name: 'Play a test sound' }).click();
    await page.waitForFunction(() => document.querySelector('#check-sound').srcObject instanceof MediaStream, null, { timeout: 5000 });
    const heard = await page.evaluate(async () => {
      const audio = document.querySelector('#check-sound');
      const ctx = new AudioContext();
      await ctx.resume();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      ctx.createMediaStreamSource(audio.srcObject).connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      let best = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 30));
        analyser.getFloatTimeDomainData(buf);
        best = Math.max(best, Math.sqrt(buf.reduce((s, x) => s + x * x, 0) / buf.length));
      }
      await ctx.close();
      return { rms: best, playing: !audio.paused };
    });
    assert.ok(heard.playing && heard.rms > 0.05, `the test sound plays: ${JSON.stringify(heard)}`);

    await page.getByRole('checkbox', { name: 'Join with my microphone off' }).check();
    for (const [viewport, file] of [
      [DESKTOP, 'precheck-desktop.png'],
      [PHONE, 'precheck-phone.png'],
    ]) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, file), fullPage: true });
    }
    await page.setViewportSize(DESKTOP);

    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await waitJoined(page, 2, JOIN_TIMEOUT_MS);
    // In muted from the start: Bob sees her muted, and her microphone is open but silent.
    const aliceId = await page.evaluate(() => window.f4c.selfId);
    await waitAliceMutedFor(bob, aliceId, true);
    await page.waitForFunction(() => {
      const mic = window.f4c.getState().mic;
      return mic.muted && mic.track && !mic.track.enabled;
    }, null, { timeout: 10_000 });
  });
});

test('invite: the room link as a QR code drawn by the server, the share sheet where there is one, and Copy link', { timeout: 90_000 }, async () => {
  await withDiagnostics('invite', async () => {
    const room = randomRoom('invite');
    // A phone's browser: navigator.share, recorded.
    const h = await openPage(aliceBrowser, roomUrl(room, 'Alice'), 'Alice', {
      contextOptions: { viewport: PHONE },
      init: () => {
        window.__shared = [];
        navigator.share = async (data) => {
          window.__shared.push(data);
        };
      },
    });
    pages.push(h);
    const { page } = h;
    await waitJoined(page, 1, JOIN_TIMEOUT_MS);
    await page.getByRole('button', { name: 'Invite' }).click();
    const qr = page.getByRole('img', { name: "QR code of this room's link" });
    await qr.waitFor();
    await page.waitForFunction(() => document.querySelector('#invite-qr').naturalWidth > 0, null, { timeout: 5000 });
    assert.equal(await qr.getAttribute('src'), `/room/${room}/qr.svg`);
    assert.equal(await page.locator('#invite-link').textContent(), `${server.base}/room/${room}`);
    // The server draws only a room's own link: an SVG for a room name, nothing for anything else.
    const answers = await page.evaluate(async (r) => {
      const ok = await fetch(`/room/${r}/qr.svg`);
      const bad = await fetch(`/room/${encodeURIComponent('a b')}/qr.svg`);
      return { ok: ok.status, type: ok.headers.get('content-type'), svg: (await ok.text()).includes('<svg'), bad: bad.status };
    }, room);
    assert.deepEqual(answers, { ok: 200, type: 'image/svg+xml', svg: true, bad: 400 });
    for (const [viewport, file] of [
      [PHONE, 'invite-phone.png'],
      [DESKTOP, 'invite-desktop.png'],
    ]) {
      await page.setViewportSize(viewport);
      await page.locator('.people-panel').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
    await page.getByRole('button', { name: 'Share…' }).click();
    const shared = await page.evaluate(() => window.__shared);
    assert.deepEqual(shared, [{ title: `Join me in ${room} on free4chat`, url: `${server.base}/room/${room}` }]);
  });
});
