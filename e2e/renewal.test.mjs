// End to end: a member in its room is handed fresh TURN credentials over signalling before its
// old ones expire, and the page gives them to its RTCPeerConnection. A real free4chat server
// with its integrated TURN server and a short credential lifetime, and headless Chromium.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import {
  OUT_DIR,
  ensureOutDir,
  freePort,
  launchBrowser,
  openPage,
  startServer,
  waitJoined,
  withDiagnostics as diagnose,
} from './helpers.mjs';

let server;
let browser;
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({
    port: await freePort(),
    logFile: path.join(OUT_DIR, 'server-renewal.log'),
    // Credentials for 10 s: fresh ones every 5 s.
    extraArgs: ['--turn-udp', `127.0.0.1:${await freePort()}`, '--turn-ttl', '10s'],
  });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

test('the page applies fresh relay credentials before its first ones expire', { timeout: 60_000 }, async () => {
  await diagnose('renewal', () => ({ pages, server }), async () => {
    const h = await openPage(browser, `${server.base}/room/renewal?name=Ann`, 'Ann', {});
    pages.push(h);
    await waitJoined(h.page, 1);
    const username = () => h.page.evaluate(() => window.f4c.pc?.getConfiguration().iceServers?.[0]?.username ?? null);
    const first = await username();
    assert.match(first ?? '', /^\d+:\d+$/, 'credentials from joined');
    const expiry = (u) => Number(u.split(':')[0]);
    await h.page.waitForFunction(
      (old) => {
        const u = window.f4c.pc?.getConfiguration().iceServers?.[0]?.username;
        return typeof u === 'string' && u !== old;
      },
      first,
      { timeout: 20_000, polling: 200 },
    );
    const second = await username();
    assert.ok(expiry(second) > expiry(first), `${first} → ${second}`);
    assert.equal(second.split(':')[1], first.split(':')[1], 'issued to the same member');
    // Still in the room, on the same connection, with nothing gone wrong.
    await waitJoined(h.page, 1);
    assert.deepEqual(h.pageErrors, []);
  });
});
