// End to end: the admin console at /admin on the admin listener, in headless Chromium, acting
// on two real members in the same browser. Screenshots of it go to docs/screenshots/.
//
// Run from the repository root: node --test e2e/console.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  ADMIN_TOKEN,
  chatShows,
  DESKTOP,
  SCREENSHOT_DIR,
  WEB_DIR,
  ensureOutDir,
  launchBrowser,
  openPage,
  startAdminServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const { t: translate } = await import(pathToFileURL(path.join(WEB_DIR, 'i18n.js')).href);

const ROOM = 'console';
let server;
let browser;
let consoleUrl;
const pages = [];

before(async () => {
  ensureOutDir();
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const started = await startAdminServer('console');
  server = started.server;
  consoleUrl = `${started.adminOrigin}/admin`;
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

test('the console refuses a wrong token, then shows the room and acts on its members with confirmation', { timeout: 120_000 }, async () => {
  await diagnose('console', () => ({ pages, server }), async () => {
    const alice = await openPage(browser, `${server.base}/room/${ROOM}?name=Alice`, 'Alice');
    const bob = await openPage(browser, `${server.base}/room/${ROOM}?name=Bob`, 'Bob');
    pages.push(alice, bob);
    await waitJoined(alice.page, 2);
    await waitJoined(bob.page, 2);
    await bob.page.waitForFunction(() => window.f4c.muted === false);

    const op = await openPage(browser, consoleUrl, 'console', { contextOptions: { viewport: DESKTOP } });
    pages.push(op);
    const { page } = op;

    // A wrong token: told so, and nothing of the rooms is shown.
    await page.fill('#token', 'not-the-operator-token');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#login-error')?.textContent?.includes('Wrong token'));
    assert.equal(await page.isVisible('#console'), false);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-console-token.png') });

    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-form button[type=submit]');
    const room = page.locator(`section.room[data-room="${ROOM}"]`);
    const row = (name) => room.locator('tr[data-member]', { hasText: name });
    await room.locator('tr[data-member]').nth(1).waitFor();
    assert.equal(await room.locator('tr[data-member]').count(), 2);
    // The token is kept for the tab: a reload goes straight to the rooms.
    await page.reload();
    await row('Bob').waitFor();
    // Each member's connection as the server measures it: good on loopback, over UDP, with
    // its round trip.
    for (const name of ['Alice', 'Bob']) {
      await row(name).locator('td[data-field="connection"] .tag[data-quality="good"]').waitFor({ timeout: 30_000 });
      const measured = row(name).locator('td[data-field="connection"] .figures', { hasText: /loss \d+\.\d % in.* rtt \d+(\.\d)? ms.*[1-9]\d*\/[1-9]\d* kbit\/s · udp$/ });
      await measured.waitFor({ timeout: 30_000 });
    }
    // The server's last hour: two samples at least (one as it started, one every 10 s), the
    // last with both members and the packets of their call.
    await page.waitForFunction(() => Number(document.querySelector('#chart')?.getAttribute('data-samples')) >= 2
      && document.querySelector('#now-members')?.textContent === '2'
      && Number(document.querySelector('#now-in')?.textContent) > 0, null, { timeout: 40_000 });
    for (const line of ['#line-members', '#line-rooms', '#line-in', '#line-out']) {
      const points = (await page.getAttribute(line, 'points')) ?? '';
      assert.ok(points.split(' ').length >= 2, `${line}: ${points}`);
    }
    // Drawn from the server's samples, not from the page's own polls.
    const history = await page.evaluate(async (token) => {
      const res = await fetch('/admin/api/history', { headers: { authorization: `Bearer ${token}` } });
      return res.json();
    }, ADMIN_TOKEN);
    assert.equal(Number(await page.getAttribute('#chart', 'data-samples')) <= history.samples.length, true);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-console.png') });

    // Mute Bob for everyone: asked first, then Bob's own page shows him muted.
    await row('Bob').locator('button[data-action="mute"]').click();
    await page.waitForSelector('#confirm[open]');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-console-confirm.png') });
    await page.click('#confirm-ok');
    await bob.page.waitForFunction(() => window.f4c.muted === true);
    await row('Bob').locator('td[data-field="forced"] .tag').waitFor();
    assert.equal(await row('Alice').locator('td[data-field="forced"] .tag').count(), 0);

    // A notice, typed into the dialog, reaches the chat.
    await room.locator('button[data-action="notice"]').click();
    await page.fill('#confirm-input', 'closing at six');
    await page.click('#confirm-ok');
    await alice.page.waitForFunction(chatShows, translate('sys.notice', { text: 'closing at six' }, 'en'));

    // The room's member limit.
    await room.locator('button[data-action="limits"]').click();
    await page.fill('#confirm-input', '5');
    await page.click('#confirm-ok');
    await room.locator('.facts', { hasText: 'limit 5' }).waitFor();

    // Remove Bob: he is told, and the room shows Alice alone.
    await row('Bob').locator('button[data-action="remove"]').click();
    await page.click('#confirm-ok');
    await bob.page.waitForFunction(() => window.f4c.bye === 'removed');
    await page.waitForFunction((name) => document.querySelectorAll(`section.room[data-room="${name}"] tr[data-member]`).length === 1, ROOM);

    // Close the room: Alice is told, and the node has no rooms left.
    await room.locator('button[data-action="close"]').click();
    await page.click('#confirm-ok');
    await alice.page.waitForFunction(() => window.f4c.bye === 'room_closed');
    await page.waitForSelector('#no-rooms:not([hidden])');
    assert.equal(await room.count(), 0);
    assert.deepEqual(op.pageErrors, []);
  });
});
