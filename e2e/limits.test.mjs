// End to end: what a person sees when the server's limits per address refuse them. A real
// free4chat server that lets one address join only twice, and headless Chromium.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  OUT_DIR,
  WEB_DIR,
  ensureOutDir,
  freePort,
  launchBrowser,
  openPage,
  startServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const { t: translate } = await import(pathToFileURL(path.join(WEB_DIR, 'i18n.js')).href);

let server;
let browser;
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({
    port: await freePort(),
    logFile: path.join(OUT_DIR, 'server-limits.log'),
    // Two joins, and so slow a refill that none comes back during the test.
    extraArgs: ['--join-burst-per-ip', '2', '--join-rate-per-ip', '0.001'],
  });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

test('a join past the address allowance is refused in words, and the members in get on', { timeout: 60_000 }, async () => {
  const open = async (room, name) => {
    const h = await openPage(browser, `${server.base}/room/${room}?name=${name}`, name, {});
    pages.push(h);
    return h;
  };
  await diagnose('limits-joins', () => ({ pages, server }), async () => {
    const alice = await open('limits', 'Alice');
    await waitJoined(alice.page, 1);
    const bob = await open('limits', 'Bob');
    await waitJoined(bob.page, 2);
    const carol = await open('limits', 'Carol');
    await carol.page.waitForSelector('#fatal:not([hidden])', { timeout: 20_000 });
    assert.equal(await carol.page.textContent('#fatal-text'), translate('srv.too_many_joins', {}, 'en'));
    // The two inside are still together.
    await waitJoined(alice.page, 2);
    await waitJoined(bob.page, 2);
    assert.deepEqual([alice, bob, carol].flatMap((h) => h.pageErrors), []);
  });
});
