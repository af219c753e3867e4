// End to end: an application that embeds the rooms links its users in with join tokens. A real
// free4chat server that takes only joins with a token, and headless Chromium.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
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

const SECRET = 'the-embedding-applications-secret-for-tests';

/** An HS256 JWT, signed as an embedding application's back end would sign it. */
function sign(claims, secret = SECRET) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

let server;
let browser;
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({
    port: await freePort(),
    logFile: path.join(OUT_DIR, 'server-tokens.log'),
    extraArgs: ['--token-secret', SECRET, '--require-token'],
  });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

async function open(url, label) {
  const h = await openPage(browser, `${server.base}${url}`, label, {});
  pages.push(h);
  return h;
}

test('members linked in with tokens join under the names the tokens give, without being asked', { timeout: 90_000 }, async () => {
  await diagnose('tokens-join', () => ({ pages, server }), async () => {
    const exp = now() + 600;
    const ann = await open(`/room/embedded#token=${sign({ room: 'embedded', name: 'Ann Example', exp })}`, 'Ann');
    await waitJoined(ann.page, 1);
    const bob = await open(`/room/embedded?token=${sign({ room: 'embedded', name: 'Bob Example', role: 'moderator', exp })}`, 'Bob');
    await waitJoined(bob.page, 2);
    await waitJoined(ann.page, 2);
    const names = (page) => page.evaluate(() => [...window.f4c.members.values()].map((m) => m.name).sort());
    assert.deepEqual(await names(ann.page), ['Ann Example', 'Bob Example']);
    assert.deepEqual(await names(bob.page), ['Ann Example', 'Bob Example']);
    for (const { page } of [ann, bob]) {
      // Never asked for a name, and offered no way to change the one the token gave.
      assert.equal(await page.isVisible('#ask-name-form'), false);
      assert.equal(await page.isVisible('#members .member.self .member-rename'), false);
    }
    // The token stays out of the remembered nickname.
    assert.equal(await ann.page.evaluate(() => localStorage.getItem('free4chat.nickname')), null);
    assert.deepEqual([ann, bob].flatMap((h) => h.pageErrors), []);
  });
});

test('without a token, or with an expired one, the page says so in words', { timeout: 60_000 }, async () => {
  await diagnose('tokens-refused', () => ({ pages, server }), async () => {
    const cases = [
      ['/room/embedded?name=Eve', 'srv.token_required'],
      [`/room/embedded#token=${sign({ room: 'embedded', name: 'Late', exp: now() - 600 })}`, 'srv.token_expired'],
      [`/room/embedded#token=${sign({ room: 'embedded', name: 'Forger', exp: now() + 600 }, 'another-secret-of-enough-length-12345')}`, 'srv.token_invalid'],
    ];
    for (const [url, key] of cases) {
      const h = await open(url, key);
      await h.page.waitForSelector('#fatal:not([hidden])', { timeout: 20_000 });
      assert.equal(await h.page.textContent('#fatal-text'), translate(key, {}, 'en'), url);
    }
  });
});
