// End to end: rooms people can find and rooms they can close. The start page's list of open
// rooms (filtered by language, its counts live), a private room behind a password, and a
// moderator's controls and raised hands, on a real free4chat server in headless Chromium.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  OUT_DIR,
  SCREENSHOT_DIR,
  WEB_DIR,
  chatShows,
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

const { t: translate } = await import(pathToFileURL(path.join(WEB_DIR, 'i18n.js')).href);

let server;
let browser;
const pages = [];

before(async () => {
  ensureOutDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-rooms-'));
  const tone = path.join(dir, 'tone-440.wav');
  await makeTone(tone, 440, 60);
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-rooms.log') });
  browser = await launchBrowser(tone);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

/** Opens `url` (under the server) in a fresh browser context. */
async function open(url, label) {
  const h = await openPage(browser, `${server.base}${url}`, label, {});
  pages.push(h);
  return h;
}

/** Makes a room from the start page's form, with its options. */
async function makeRoom(label, room, { topic = '', language = '', password = '' } = {}) {
  const h = await open('/', label);
  await h.page.waitForSelector('#home:not([hidden])');
  await h.page.fill('#home-room', room);
  await h.page.fill('#home-name', label);
  await h.page.click('#home-options summary');
  await h.page.fill('#home-topic', topic);
  await h.page.fill('#home-language', language);
  await h.page.fill('#home-password', password);
  await h.page.click('#home-form button[type=submit]');
  await h.page.waitForFunction(() => window.f4c && window.f4c.state === 'joined', null, { timeout: 30_000 });
  return h;
}

/** The open rooms the start page shows: `room (count)`, in its order. */
const listed = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('#public-list .public-room')].map(
      (li) => `${li.querySelector('.public-name')?.textContent} ${li.querySelector('.public-count')?.textContent}`,
    ),
  );

/** Runs a test's body with diagnostics, then closes its pages: each test's browsers leave. */
async function diag(name, body) {
  try {
    await diagnose(name, () => ({ pages, server }), body);
  } finally {
    await Promise.allSettled(pages.map((h) => h.context.close()));
    pages.length = 0;
  }
}

test('the start page lists the open rooms with their topics, filtered by language, and their counts follow', { timeout: 120_000 }, async () => {
  await diag('rooms-list', async () => {
    await makeRoom('Ann', 'jazz-club', { topic: 'Standards', language: 'en' });
    await makeRoom('Ben', 'fado-night', { language: 'pt-PT' });
    await makeRoom('Cid', 'hidden-room', { password: 'not listed' });
    const home = await open('/', 'Home');
    await home.page.waitForFunction(() => document.querySelectorAll('#public-list .public-room').length === 2, null, { timeout: 15_000 });
    assert.deepEqual(await listed(home.page), ['fado-night 1 person', 'jazz-club 1 person']);
    assert.equal(await home.page.textContent('#public-list [data-room="jazz-club"] .public-topic'), 'Standards');
    // By language: Portuguese alone.
    await home.page.fill('#public-language', 'pt');
    await home.page.waitForFunction(() => document.querySelectorAll('#public-list .public-room').length === 1, null, { timeout: 15_000 });
    assert.deepEqual(await listed(home.page), ['fado-night 1 person']);
    await home.page.fill('#public-language', '');
    // Someone joins the jazz club from its link in the list: the count follows.
    const dee = await open('/room/jazz-club?name=Dee', 'Dee');
    await waitJoined(dee.page, 2);
    await home.page.waitForFunction(
      () => document.querySelector('#public-list [data-room="jazz-club"] .public-count')?.textContent === '2 people',
      null,
      { timeout: 15_000 },
    );
    assert.equal((await listed(home.page))[0], 'jazz-club 2 people', 'the largest first');
    await home.page.locator('#public-list').screenshot({ path: path.join(SCREENSHOT_DIR, 'rooms-open-list.png') });
  });
});

test('a private room asks for its password: a wrong one is refused, the right one joins and hears', { timeout: 120_000 }, async () => {
  await diag('rooms-private', async () => {
    const ann = await makeRoom('Ann', 'vault', { password: 'open sesame' });
    assert.equal(await ann.page.isVisible('#room-private'), true);
    const ben = await open('/room/vault?name=Ben', 'Ben');
    await ben.page.waitForSelector('#ask-password-row:not([hidden])', { timeout: 20_000 });
    assert.equal(await ben.page.textContent('#ask-name-error'), translate('srv.wrong_password', {}, 'en'));
    await ben.page.fill('#ask-password', 'open sesame!');
    await ben.page.click('#ask-name-form button[type=submit]');
    await ben.page.waitForFunction(() => window.f4c.state === 'disconnected', null, { timeout: 20_000 });
    await ben.page.waitForSelector('#ask-password-row:not([hidden])', { timeout: 20_000 });
    assert.equal(await ann.page.evaluate(() => window.f4c.members.size), 1, 'nobody got in');
    await ben.page.fill('#ask-password', 'open sesame');
    await ben.page.click('#ask-name-form button[type=submit]');
    await waitJoined(ben.page, 2);
    await waitJoined(ann.page, 2);
    await waitStreams(ben.page, 1);
    await waitStreams(ann.page, 1);
  });
});

test('a moderator mutes for everyone, lowers hands, sets the topic, clears the chat, locks, and removes someone who cannot come back', { timeout: 180_000 }, async () => {
  await diag('rooms-moderation', async () => {
    const ann = await open('/room/stage?name=Ann', 'Ann');
    await waitJoined(ann.page, 1);
    const ben = await open('/room/stage?name=Ben', 'Ben');
    const cat = await open('/room/stage?name=Cat', 'Cat');
    for (const h of [ann, ben, cat]) await waitJoined(h.page, 3);
    const idOf = (h) => h.page.evaluate(() => window.f4c.selfId);
    const [annId, benId, catId] = [await idOf(ann), await idOf(ben), await idOf(cat)];

    // Everyone sees who moderates; only the moderator has the controls.
    assert.equal(await ann.page.isVisible('#mod-controls'), true);
    assert.equal(await ben.page.isVisible('#mod-controls'), false);
    await ben.page.waitForSelector(`#members li[data-member-id="${annId}"] .mod-badge:not([hidden])`);
    assert.equal(await ben.page.isVisible(`#members li[data-member-id="${catId}"] .mod-badge`), false);

    // Hands, in the order raised; the moderator lowers Ben's.
    await cat.page.click('#hand-btn');
    await ann.page.waitForFunction(() => document.querySelectorAll('#hand-list li').length === 1);
    await ben.page.click('#hand-btn');
    const hands = (h) => h.page.evaluate(() => [...document.querySelectorAll('#hand-list li')].map((li) => li.textContent));
    await ann.page.waitForFunction(() => document.querySelectorAll('#hand-list li').length === 2);
    assert.deepEqual(await hands(ann), ['Cat', 'Ben']);
    await ann.page.locator('#room-panel').screenshot({ path: path.join(SCREENSHOT_DIR, 'rooms-moderator-hands.png') });
    await ann.page.selectOption('#mod-member', benId);
    await ann.page.click('#mod-lower');
    await cat.page.waitForFunction(() => document.querySelectorAll('#hand-list li').length === 1);
    assert.deepEqual(await hands(cat), ['Cat']);

    // Muted for everyone: everyone sees Ben muted.
    await ann.page.click('#mod-mute');
    for (const h of [ann, cat, ben]) {
      await h.page.waitForFunction((id) => window.f4c.members.get(id)?.muted === true, benId, { timeout: 15_000 });
    }

    // The topic reaches everyone.
    await ann.page.fill('#mod-topic', 'Open mic');
    await ann.page.click('#mod-topic-form button[type=submit]');
    await ben.page.waitForFunction(() => document.querySelector('#room-topic')?.textContent === 'Open mic');

    // The chat, cleared for everyone.
    await cat.page.fill('#chat-input', 'something to forget');
    await cat.page.press('#chat-input', 'Enter');
    await ben.page.waitForFunction(chatShows, 'something to forget');
    await ann.page.click('#mod-clear');
    await ben.page.waitForFunction(() => window.f4c.chat.length === 0);

    // Locked: a newcomer is told so; unlocked, they get in.
    await ann.page.click('#mod-lock');
    await cat.page.waitForSelector('#room-locked:not([hidden])');
    const dee = await open('/room/stage?name=Dee', 'Dee');
    await dee.page.waitForSelector('#fatal:not([hidden])', { timeout: 20_000 });
    assert.equal(await dee.page.textContent('#fatal-text'), translate('srv.room_locked', {}, 'en'));
    await ann.page.click('#mod-lock');
    await cat.page.waitForSelector('#room-locked', { state: 'hidden' });

    // Removed: Cat is out, and her browser cannot come back for now.
    await ann.page.selectOption('#mod-member', catId);
    await ann.page.click('#mod-remove');
    await cat.page.waitForFunction(() => window.f4c.state === 'disconnected', null, { timeout: 15_000 });
    await waitJoined(ann.page, 2);
    await cat.page.goto(`${server.base}/room/stage?name=Cat`);
    await cat.page.waitForSelector('#fatal:not([hidden])', { timeout: 20_000 });
    assert.equal(await cat.page.textContent('#fatal-text'), translate('srv.removed_from_room', {}, 'en'));
    assert.equal(await ann.page.evaluate(() => window.f4c.members.size), 2);
  });
});
