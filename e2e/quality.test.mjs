// End to end: each member's connection quality as the server sees it, shown in the member
// list — three bars for a member whose audio flows, and words for one whose audio never
// connected. A real free4chat server and headless Chromium; the member without audio is this
// test, joined over the signalling WebSocket alone.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

import {
  OUT_DIR,
  PHONE,
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
const sockets = new Set();

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-quality.log') });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  for (const ws of sockets) ws.close();
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

/** Joins `room` as `name` over signalling only (no media is ever offered); resolves with our id. */
function withoutAudio(room, name) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.base.replace(/^http/, 'ws')}/ws`);
    sockets.add(ws);
    const timer = setTimeout(() => reject(new Error(`${name}: not joined in time`)), 20_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', v: 1, room, name })));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type === 'joined') {
        clearTimeout(timer);
        resolve(String(msg.id));
      }
    });
    ws.on('error', reject);
  });
}

/** In the page: the quality shown for the member named `name`, and its words if shown. */
function qualityOf(name) {
  const li = [...document.querySelectorAll('#members .member')].find((m) => m.querySelector('.name')?.textContent === name);
  if (!li) return null;
  const q = li.querySelector('.quality');
  const text = li.querySelector('.quality-text');
  const visible = text && text.getBoundingClientRect().width > 1;
  return { quality: li.dataset.quality ?? '', hidden: q.hidden, title: q.title, words: visible ? text.textContent : '' };
}

test('each member shows the connection quality the server sees, and a member whose audio never connected says so', { timeout: 90_000 }, async () => {
  await diagnose('quality', () => ({ pages, server }), async () => {
    const alice = await openPage(browser, `${server.base}/room/quality?name=Alice`, 'Alice', {});
    pages.push(alice);
    const bob = await openPage(browser, `${server.base}/room/quality?name=Bob`, 'Bob', { contextOptions: { viewport: PHONE } });
    pages.push(bob);
    await waitJoined(alice.page, 2);
    await waitJoined(bob.page, 2);
    // On loopback both connections are good, and each page says so of both members.
    for (const { page } of [alice, bob]) {
      for (const name of ['Alice', 'Bob']) {
        await page.waitForFunction((n) => {
          const li = [...document.querySelectorAll('#members .member')].find((m) => m.querySelector('.name')?.textContent === n);
          return li?.dataset.quality === 'good';
        }, name, { timeout: 30_000 });
      }
    }
    const good = await alice.page.evaluate(qualityOf, 'Bob');
    assert.deepEqual(good, { quality: 'good', hidden: false, title: translate('member.qualityGood', {}, 'en'), words: '' });

    // Carol joins but never offers media: after a few seconds everyone is told, in words.
    await withoutAudio('quality', 'Carol');
    for (const { page } of [alice, bob]) {
      await page.waitForFunction((n) => {
        const li = [...document.querySelectorAll('#members .member')].find((m) => m.querySelector('.name')?.textContent === n);
        return li?.dataset.quality === 'unconnected';
      }, 'Carol', { timeout: 30_000 });
    }
    const words = translate('member.qualityUnconnected', {}, 'en');
    assert.deepEqual(await bob.page.evaluate(qualityOf, 'Carol'), { quality: 'unconnected', hidden: false, title: words, words });
    await bob.page.screenshot({ path: path.join(OUT_DIR, 'quality-phone.png') });
  });
});
