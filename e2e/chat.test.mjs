// End to end: the chat beyond plain messages, in real browsers against a real server: times in
// the reader's locale and lines naming each day; replies, reactions, and a message's author
// editing or deleting it. Screenshots of each new state go to docs/screenshots/.
//
// Run from the repository root: node --test e2e/chat.test.mjs

import { after, afterEach, before, test } from 'node:test';
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
  openPage,
  startServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const JOIN_TIMEOUT_MS = 30_000;
const DAY_MS = 86_400_000;

let server;
let browser;
const pages = [];

const randomRoom = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`;

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server }), body);
}

/** Opens `name`'s page in `room`; `contextOptions` as for openPage. */
async function open(room, name, contextOptions = {}, init = undefined, initArg = undefined) {
  const h = await openPage(browser, `${server.base}/room/${room}?name=${encodeURIComponent(name)}`, name, {
    contextOptions: { viewport: DESKTOP, ...contextOptions },
    init,
    initArg,
  });
  pages.push(h);
  return h;
}

/** Sends `text` from the page's chat field. */
async function say(h, text) {
  await h.page.locator('#chat-input').fill(text);
  await h.page.locator('#chat-input').press('Enter');
}

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'chat-server.log') });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

// Each test's pages close when it ends: a browser kept busy with the earlier tests' rooms
// answers the later ones slowly.
afterEach(async () => {
  await Promise.allSettled(pages.splice(0).map((h) => h.context.close()));
});

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

test('chat times are in the reader\'s locale without a leading zero, under a line naming the day', { timeout: 90_000 }, async () => {
  await withDiagnostics('chat-times', async () => {
    const room = randomRoom('times');
    // A time zone where it is now between 9 and 10 in the morning: the hour has one digit.
    const utcHour = new Date().getUTCHours();
    let offset = 9 - utcHour;
    if (offset < -12) offset += 24;
    if (offset > 14) offset -= 24;
    const timezoneId = offset === 0 ? 'UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
    const ann = await open(room, 'Ann', { locale: 'en-US', timezoneId });
    await waitJoined(ann.page, 1, JOIN_TIMEOUT_MS);
    await say(ann, 'good morning');
    await ann.page.waitForSelector('#chat-log .chat-msg');
    const time = await ann.page.locator('#chat-log .chat-msg .chat-time').last().textContent();
    assert.match(time, /^9:\d\d\s?AM$/, `a US reader sees "9:05 AM", not "09:05 AM": ${time}`);
    assert.equal(await ann.page.locator('#chat-log .chat-day').first().textContent(), 'Today');

    // A German reader whose clock is a day ahead: the same message is yesterday's, "Gestern",
    // and its time "9:05" has no leading zero either.
    const ben = await open(
      room,
      'Ben',
      { locale: 'de-DE', timezoneId },
      (ahead) => {
        const RealDate = Date;
        const shift = ahead;
        // A clock a day ahead: `new Date()` and `Date.now()`, nothing else.
        class AheadDate extends RealDate {
          constructor(...args) {
            if (args.length === 0) super(RealDate.now() + shift);
            else super(...args);
          }
          static now() {
            return RealDate.now() + shift;
          }
        }
        globalThis.Date = AheadDate;
      },
      DAY_MS,
    );
    await waitJoined(ben.page, 2, JOIN_TIMEOUT_MS);
    await ben.page.locator('#lang-select').selectOption('de');
    await ben.page.waitForSelector('#chat-log .chat-msg');
    assert.equal(await ben.page.locator('#chat-log .chat-day').first().textContent(), 'Gestern');
    const benTime = await ben.page.locator('#chat-log .chat-msg .chat-time').first().textContent();
    assert.match(benTime, /^9:\d\d$/, `a German reader sees "9:05": ${benTime}`);
    for (const [viewport, file] of [
      [DESKTOP, 'chat-days-desktop.png'],
      [PHONE, 'chat-days-phone.png'],
    ]) {
      await ann.page.setViewportSize(viewport);
      if (viewport === PHONE && (await ann.page.locator('#chat-toggle').getAttribute('aria-expanded')) === 'false') await ann.page.locator('#chat-toggle').click();
      await ann.page.locator('#chat-panel').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
  });
});

/** The chat item of the message whose text is `text` on `h`'s page. */
const item = (h, text) => h.page.locator('#chat-log li.chat-msg', { has: h.page.locator('.chat-text', { hasText: text }) });

test('chat: reply to a message, react to it, and edit or delete your own', { timeout: 90_000 }, async () => {
  await withDiagnostics('chat-extras', async () => {
    const room = randomRoom('extras');
    const ann = await open(room, 'Ann');
    const ben = await open(room, 'Ben');
    await Promise.all([ann, ben].map((h) => waitJoined(h.page, 2, JOIN_TIMEOUT_MS)));
    await say(ann, 'Where do we meet?');
    await item(ben, 'Where do we meet?').waitFor();

    // Ben replies: his message quotes Ann's, on both pages.
    await item(ben, 'Where do we meet?').hover();
    await item(ben, 'Where do we meet?').getByRole('button', { name: 'Reply to Ann' }).click();
    assert.equal(await ben.page.locator('#chat-draft-text').textContent(), 'Replying to Ann');
    await say(ben, 'At the station');
    for (const h of [ann, ben]) {
      const reply = item(h, 'At the station');
      await reply.waitFor();
      assert.equal(await reply.locator('.chat-quote-name').textContent(), 'Ann');
      assert.equal(await reply.locator('.chat-quote-text').textContent(), 'Where do we meet?');
    }
    assert.equal(await ben.page.locator('#chat-draft').isVisible(), false, 'the draft ends once sent');

    // Ann reacts to Ben's reply; Ben sees 👍 1, and adds his own: 2, pressed for both.
    await item(ann, 'At the station').hover();
    await item(ann, 'At the station').getByRole('button', { name: 'React' }).click();
    await item(ann, 'At the station').getByRole('button', { name: 'React with 👍' }).click();
    const benThumb = item(ben, 'At the station').getByRole('button', { name: '👍: 1 reaction' });
    await benThumb.waitFor();
    assert.equal(await benThumb.getAttribute('aria-pressed'), 'false');
    await benThumb.click();
    const annThumb = item(ann, 'At the station').getByRole('button', { name: '👍: 2 reactions' });
    await annThumb.waitFor();
    assert.equal(await annThumb.getAttribute('aria-pressed'), 'true');

    // Ann edits her question: "(edited)" on both pages; Ben has no Edit or Delete on it.
    await item(ann, 'Where do we meet?').hover();
    await item(ann, 'Where do we meet?').getByRole('button', { name: 'Edit' }).click();
    assert.equal(await ann.page.locator('#chat-input').inputValue(), 'Where do we meet?');
    await say(ann, 'Where do we meet tomorrow?');
    for (const h of [ann, ben]) {
      const edited = item(h, 'Where do we meet tomorrow?');
      await edited.waitFor();
      assert.match(await edited.locator('.chat-edited').textContent(), /edited/);
    }
    // Ben's reply quotes the question as it is now.
    await item(ben, 'At the station').locator('.chat-quote-text', { hasText: 'Where do we meet tomorrow?' }).waitFor();
    await item(ben, 'Where do we meet tomorrow?').hover();
    assert.equal(await item(ben, 'Where do we meet tomorrow?').getByRole('button', { name: 'Edit' }).count(), 0);
    assert.equal(await item(ben, 'Where do we meet tomorrow?').getByRole('button', { name: 'Delete' }).count(), 0);
    for (const [viewport, file] of [
      [DESKTOP, 'chat-reply-react-desktop.png'],
      [PHONE, 'chat-reply-react-phone.png'],
    ]) {
      await ann.page.setViewportSize(viewport);
      if (viewport === PHONE && (await ann.page.locator('#chat-toggle').getAttribute('aria-expanded')) === 'false') await ann.page.locator('#chat-toggle').click();
      await item(ann, 'At the station').hover();
      await ann.page.locator('#chat-panel').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
    await ann.page.setViewportSize(DESKTOP);

    // Ben deletes his reply: both pages say it was deleted, and its reactions are gone.
    await item(ben, 'At the station').hover();
    await item(ben, 'At the station').getByRole('button', { name: 'Delete' }).click();
    for (const h of [ann, ben]) {
      await h.page.locator('#chat-log li.chat-msg.deleted', { hasText: 'This message was deleted.' }).waitFor();
      assert.equal(await h.page.locator('#chat-log .chat-reaction').count(), 0);
    }
    // A latecomer sees the chat as it is now.
    const cy = await open(room, 'Cy');
    await waitJoined(cy.page, 3, JOIN_TIMEOUT_MS);
    await item(cy, 'Where do we meet tomorrow?').waitFor();
    assert.equal(await cy.page.locator('#chat-log li.chat-msg.deleted').count(), 1);
    for (const [viewport, file] of [
      [DESKTOP, 'chat-deleted-desktop.png'],
      [PHONE, 'chat-deleted-phone.png'],
    ]) {
      await cy.page.setViewportSize(viewport);
      if (viewport === PHONE && (await cy.page.locator('#chat-toggle').getAttribute('aria-expanded')) === 'false') await cy.page.locator('#chat-toggle').click();
      await cy.page.locator('#chat-panel').screenshot({ path: path.join(SCREENSHOT_DIR, file) });
    }
  });
});
