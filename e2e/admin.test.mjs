// End to end: what a member sees of the server's operator. A real free4chat server with its
// admin API, and headless Chromium; the operator is this test, calling the API.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  ADMIN_TOKEN,
  chatShows,
  WEB_DIR,
  ensureOutDir,
  launchBrowser,
  openPage,
  startAdminServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const { t: translate } = await import(pathToFileURL(path.join(WEB_DIR, 'i18n.js')).href);

let server;
let browser;
let adminBase;
const pages = [];

before(async () => {
  ensureOutDir();
  const started = await startAdminServer('admin');
  server = started.server;
  adminBase = `${started.adminOrigin}/admin/api`;
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

/** Calls the admin API; returns the status and the JSON body, if any. */
async function admin(method, path, body) {
  const res = await fetch(`${adminBase}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test("the operator's notice shows in the chat, and a mute for everyone holds until lifted", { timeout: 60_000 }, async () => {
  await diagnose('admin', () => ({ pages, server }), async () => {
    const h = await openPage(browser, `${server.base}/room/operated?name=Alice`, 'Alice', {});
    pages.push(h);
    const { page } = h;
    await waitJoined(page, 1);
    await page.waitForFunction(() => window.f4c.muted === false);
    const { body: room } = await admin('GET', '/rooms/operated');
    const id = room.members[0].id;

    assert.equal((await admin('POST', '/rooms/operated/notice', { text: 'closing at six' })).status, 204);
    const notice = translate('sys.notice', { text: 'closing at six' }, 'en');
    await page.waitForFunction(chatShows, notice);

    assert.equal((await admin('POST', `/rooms/operated/members/${id}/mute`, { muted: true })).status, 204);
    await page.waitForFunction(() => window.f4c.muted === true);
    assert.equal(await page.textContent('#mute-label'), translate('ctl.unmute', {}, 'en'));
    const told = translate('sys.muted_for_everyone', {}, 'en');
    await page.waitForFunction(chatShows, told);
    // Unmuting is refused, and the page stays muted.
    await page.click('#mute-btn');
    await page.waitForFunction(() => window.f4c.errors.some((e) => e.code === 'muted_for_everyone'));
    await page.waitForFunction(() => window.f4c.muted === true);
    // Lifted: the member may unmute again.
    assert.equal((await admin('POST', `/rooms/operated/members/${id}/mute`, { muted: false })).status, 204);
    assert.equal((await admin('GET', '/rooms/operated')).body.members[0].muted_for_everyone, false);
    await page.click('#mute-btn');
    await page.waitForFunction(() => window.f4c.muted === false);
    assert.deepEqual(h.pageErrors, []);
  });
});
