// End to end: a room of 500. A real free4chat server, two headless Chromium browsers that speak
// (a sine tone each) and 498 members that only listen: WebSocket clients that join the room
// and say nothing more. The page must receive the whole member list (the first 200 in `joined`,
// the rest in `more_members` pages), show who speaks first, keep only a page of members in the
// document however many join and leave, offer more and a search by name (by keyboard too),
// and let one mute any member for themselves from it.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

import {
  OUT_DIR,
  WEB_DIR,
  ensureOutDir,
  freePort,
  launchBrowser,
  makeTone,
  openPage,
  startServer,
  waitStreams,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const { t: translate } = await import(pathToFileURL(path.join(WEB_DIR, 'i18n.js')).href);

const ROOM_SIZE = 500;
/** The member list's page (`LIST_PAGE` in state.js). */
const LIST_PAGE = 50;
const TIMEOUT_MS = 60_000;

let tmpDir;
let server;
const browsers = [];
const pages = [];
/** Every listener's socket, to close at the end. @type {Set<WebSocket>} */
const sockets = new Set();

before(async () => {
  ensureOutDir();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'free4chat-e2e-crowd-'));
  const tones = await Promise.all([440, 660].map((f) => makeTone(path.join(tmpDir, `tone-${f}.wav`), f, 60)));
  server = await startServer({
    port: await freePort(),
    logFile: path.join(OUT_DIR, 'server-crowd.log'),
    // The listeners all come from loopback and never connect media: exempt from the
    // per-address limits, and no media deadline.
    extraArgs: ['--max-room-members', String(ROOM_SIZE + 100), '--exempt-ip', '127.0.0.1', '--media-deadline', '0'],
  });
  for (const tone of tones) browsers.push(await launchBrowser(tone));
}, { timeout: 60_000 });

after(async () => {
  for (const ws of sockets) ws.terminate();
  await Promise.allSettled(browsers.map((b) => b.close()));
  if (server) await server.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}, { timeout: 20_000 });

/**
 * A member that only listens: joins `room` as `name` over the signalling WebSocket and reads
 * (and drops) whatever the server sends. Resolves with its socket and member id once joined.
 */
function listener(room, name) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.base.replace(/^http/, 'ws')}/ws`);
    sockets.add(ws);
    const timer = setTimeout(() => reject(new Error(`${name}: not joined in time`)), 20_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', v: 1, room, name })));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type === 'joined') {
        clearTimeout(timer);
        resolve({ ws, id: String(msg.id), name });
      } else if (msg.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${name}: ${msg.code} ${msg.message}`));
      }
    });
    ws.on('error', reject);
  });
}

/** `count` listeners named from `first` on, joined one after the other (so in name order). */
async function listeners(room, first, count) {
  const out = [];
  for (let i = 0; i < count; i++) out.push(await listener(room, `Listener ${String(first + i).padStart(3, '0')}`));
  return out;
}

/** Closes listeners' connections and waits until they are closed. */
async function leave(members) {
  await Promise.all(
    members.map(
      ({ ws }) =>
        new Promise((resolve) => {
          ws.once('close', resolve);
          ws.close();
          setTimeout(resolve, 5000);
        }),
    ),
  );
  for (const { ws } of members) sockets.delete(ws);
}

/** In the page, before its scripts: counts the server's messages by type. */
function countMessages() {
  window.__received = {};
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        const type = JSON.parse(ev.data).type;
        window.__received[type] = (window.__received[type] ?? 0) + 1;
      });
    }
  };
}

/** In the page: the member list as shown. */
function listView() {
  const items = [...document.querySelectorAll('#members .member')];
  const more = document.getElementById('members-more');
  return {
    items: items.length,
    allItems: document.querySelectorAll('.member').length,
    ids: items.map((li) => li.dataset.memberId),
    names: items.map((li) => li.querySelector('.name').textContent),
    speaking: items.filter((li) => li.dataset.speaking === 'true').map((li) => li.dataset.memberId),
    count: document.getElementById('member-count').textContent,
    more: more.hidden ? null : more.textContent,
    search: !document.getElementById('members-search-row').hidden,
    none: !document.getElementById('members-none').hidden,
  };
}

test('a room of 500: the list shows speakers first and a page at a time, finds anyone by name, and stays small in the page', { timeout: 240_000 }, async (t) => {
  await diagnose('crowd', () => ({ pages, server }), async () => {
    const room = `crowd-${randomBytes(4).toString('hex')}`;
    const url = (name) => `${server.base}/room/${room}?name=${name}&audio=raw`;
    const early = await listeners(room, 1, 300);
    const tess = await openPage(browsers[0], url('Tess'), 'Tess', { init: countMessages });
    pages.push(tess);
    const uri = await openPage(browsers[1], url('Uri'), 'Uri', { init: countMessages });
    pages.push(uri);
    await Promise.all([tess, uri].map((h) => h.page.waitForFunction(() => window.f4c.state === 'joined', null, { timeout: TIMEOUT_MS })));
    const late = await listeners(room, 301, ROOM_SIZE - 2 - 300);
    const full = (n) => window.f4c.state === 'joined' && window.f4c.members.size === n && window.f4c.memberCount === n;
    await Promise.all([tess, uri].map((h) => h.page.waitForFunction(full, ROOM_SIZE, { timeout: TIMEOUT_MS, polling: 250 })));
    // Uri joined after 301 others: 200 in `joined`, the rest in one more page.
    const received = await uri.page.evaluate(() => window.__received);
    t.diagnostic(`Uri received ${JSON.stringify(received)}`);
    assert.equal(received.joined, 1);
    assert.equal(received.more_members, 1, 'the members beyond the first 200 came in a page');
    await Promise.all([tess, uri].map((h) => waitStreams(h.page, 1, TIMEOUT_MS)));
    const tessId = await tess.page.evaluate(() => window.f4c.selfId);
    const uriId = await uri.page.evaluate(() => window.f4c.selfId);

    // Tess sees all 500 counted, herself first, then Uri, who speaks, then the listeners in
    // the order the server listed them; a page of them, and the rest behind a button.
    await tess.page.waitForFunction(
      (id) => document.querySelector(`#members .member[data-member-id="${id}"]`)?.dataset.speaking === 'true',
      uriId,
      { timeout: TIMEOUT_MS, polling: 250 },
    );
    let view = await tess.page.evaluate(listView);
    t.diagnostic(`Tess's list: ${view.items} items, ${view.count}, "${view.more}", first ${view.names.slice(0, 4).join(', ')}`);
    assert.equal(view.count, `(${ROOM_SIZE})`);
    assert.equal(view.items, LIST_PAGE, 'one page of members in the list');
    assert.equal(view.allItems, LIST_PAGE, 'and no other member item anywhere in the page');
    assert.deepEqual(view.ids.slice(0, 2), [tessId, uriId], 'ourselves, then the speaker');
    assert.deepEqual(view.names.slice(2, 5), ['Listener 001', 'Listener 002', 'Listener 003']);
    assert.ok(view.speaking.includes(uriId) && !view.speaking.some((id) => id !== uriId && id !== tessId), `speaking: ${view.speaking}`);
    assert.equal(view.more, `Show ${ROOM_SIZE - LIST_PAGE} more people`);
    assert.ok(view.search, 'a search field in a room this large');
    await tess.page.screenshot({ path: path.join(OUT_DIR, 'crowd-desktop.png') });
    // In another language, in its words.
    await tess.page.selectOption('#lang-select', 'de');
    await tess.page.waitForFunction(() => document.documentElement.lang === 'de', null, { timeout: 5000 });
    assert.equal(await tess.page.textContent('#members-more'), translate('people.more', { n: ROOM_SIZE - LIST_PAGE }, 'de'));
    assert.equal(await tess.page.getAttribute('#members-search', 'placeholder'), translate('people.searchPlaceholder', {}, 'de'));
    await tess.page.selectOption('#lang-select', 'en');
    await tess.page.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout: 5000 });

    // By keyboard: the button shows the next page, and keeps what was shown.
    await tess.page.focus('#members-more');
    await tess.page.keyboard.press('Enter');
    const more = await tess.page.evaluate(listView);
    assert.equal(more.items, 2 * LIST_PAGE);
    assert.deepEqual(more.ids.slice(0, LIST_PAGE), view.ids);
    assert.equal(more.more, `Show ${ROOM_SIZE - 2 * LIST_PAGE} more people`);

    // The search finds a listener far down the list; her button mutes her for Tess.
    const target = late.find((m) => m.name === 'Listener 456');
    await tess.page.fill('#members-search', 'listener 456');
    view = await tess.page.evaluate(listView);
    assert.deepEqual(view.names, ['Listener 456']);
    assert.equal(view.more, null);
    const sentBefore = await tess.page.evaluate(() => window.f4c.sent.local_mutes ?? 0);
    await tess.page.click(`#members .member[data-member-id="${target.id}"] .member-mute`);
    await tess.page.waitForFunction((id) => window.f4c.locallyMuted.has(id), target.id, { timeout: 10_000, polling: 100 });
    assert.equal(await tess.page.evaluate(() => window.f4c.sent.local_mutes), sentBefore + 1, 'the server is told');
    await tess.page.fill('#members-search', 'nobody by this name');
    view = await tess.page.evaluate(listView);
    assert.equal(view.items, 0);
    assert.ok(view.none, 'says that nobody matches');
    await tess.page.fill('#members-search', '');
    view = await tess.page.evaluate(listView);
    assert.equal(view.items, LIST_PAGE, 'back to the first page');
    assert.ok(!view.none);
    // The search field and the button have names a screen reader reads.
    const label = await tess.page.evaluate(() => document.getElementById('members-search').labels[0]?.textContent);
    assert.equal(label, 'Find someone in the room');

    // Many come and go, from the part shown and from the rest. The list follows, and never
    // holds more than a page; the items made along the way are those that came into view,
    // not a list rebuilt for every change.
    await tess.page.evaluate(() => {
      const list = document.getElementById('members');
      window.__listWork = { added: 0, maxItems: list.children.length };
      window.__listObserver = new MutationObserver((records) => {
        for (const r of records) window.__listWork.added += [...r.addedNodes].filter((n) => n.nodeType === 1).length;
        window.__listWork.maxItems = Math.max(window.__listWork.maxItems, list.children.length);
      });
      window.__listObserver.observe(list, { childList: true });
    });
    const goers = [...early.slice(0, 20), ...early.slice(200, 260), ...late.slice(0, 20)];
    await leave(goers);
    const comers = await listeners(room, 600, goers.length);
    await tess.page.waitForFunction(full, ROOM_SIZE, { timeout: TIMEOUT_MS, polling: 250 });
    const work = await tess.page.evaluate(() => {
      window.__listObserver.disconnect();
      return window.__listWork;
    });
    view = await tess.page.evaluate(listView);
    t.diagnostic(`after ${goers.length} left and ${comers.length} came: ${JSON.stringify(work)}; first ${view.names.slice(0, 4).join(', ')}`);
    assert.ok(work.maxItems <= LIST_PAGE, `at most a page of items at any time: ${work.maxItems}`);
    // Moving an item that stays counts as adding it again; 20 left from the part shown.
    assert.ok(work.added <= 2 * 20 + 10, `items added for ${2 * goers.length} changes: ${work.added}`);
    assert.equal(view.items, LIST_PAGE);
    assert.deepEqual(view.ids.slice(0, 2), [tessId, uriId]);
    assert.deepEqual(view.names.slice(2, 4), ['Listener 021', 'Listener 022'], 'the first listeners shown left; the next move up');
    assert.equal(view.count, `(${ROOM_SIZE})`);

    // Still answering at once: a click on a member's button takes effect.
    const bob = view.ids[5];
    await tess.page.click(`#members .member[data-member-id="${bob}"] .member-mute`);
    await tess.page.waitForFunction(
      (id) => document.querySelector(`#members .member[data-member-id="${id}"] .member-mute`).getAttribute('aria-pressed') === 'true',
      bob,
      { timeout: 10_000, polling: 100 },
    );
    for (const h of [tess, uri]) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      assert.deepEqual(await h.page.evaluate(() => window.f4c.errors), [], `${h.label}: refused messages`);
    }
  });
});
