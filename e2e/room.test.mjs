// End to end: being in a fuller room, on a desktop (1280×800) and on a phone (360×740). A real
// free4chat server, one headless Chromium, and members that only listen and chat: WebSocket
// clients. The room's controls must stay on screen however many are in it, the phone must
// reach its chat and open it at the newest message, nickname fields must stop at the limit as
// one types, and Back after Leave must not walk into the room again with the microphone open.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

import {
  DESKTOP,
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
/** Every listener's socket, to close at the end. @type {Set<WebSocket>} */
const sockets = new Set();

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-room.log') });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  for (const ws of sockets) ws.terminate();
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

/** Opens a page (desktop size unless told) and keeps it for diagnostics. */
async function open(urlPath, label, { viewport = DESKTOP } = {}) {
  const h = await openPage(browser, `${server.base}${urlPath}`, label, { contextOptions: { viewport } });
  pages.push(h);
  return h;
}

function roomPath(room, name) {
  return `/room/${room}?name=${encodeURIComponent(name)}&audio=raw`;
}

/**
 * A member that only listens and chats: joins `room` as `name` (with client key `key`, if given)
 * over the signalling WebSocket and drops whatever the server sends. Resolves with its socket
 * once joined.
 */
function listener(room, name, key) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.base.replace(/^http/, 'ws')}/ws`);
    sockets.add(ws);
    const timer = setTimeout(() => reject(new Error(`${name}: not joined in time`)), 20_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', v: 1, room, name, key })));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type === 'joined') {
        clearTimeout(timer);
        resolve(ws);
      } else if (msg.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${name}: ${msg.code} ${msg.message}`));
      }
    });
    ws.on('error', reject);
  });
}

/** In the page: which of `selectors` are wholly inside the window and not covered by anything. */
function onScreen(selectors) {
  return selectors.filter((sel) => {
    const el = document.querySelector(sel);
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.top < 0 || r.left < 0 || r.bottom > window.innerHeight || r.right > window.innerWidth) return false;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return !!hit && el.contains(hit);
  });
}

/** In the page: how far the chat log is from showing its newest line, and whether it scrolls. */
function chatScroll() {
  const log = document.getElementById('chat-log');
  return { fromEnd: Math.round(log.scrollHeight - log.scrollTop - log.clientHeight), scrolls: log.scrollHeight > log.clientHeight + 100 };
}

/**
 * In the page: WCAG contrast ratios of the pressed Unmute and "Mute all for me" buttons, and the
 * lowest of a nickname over all 360 hues, in the member list and on our own chat messages (the
 * colours as the page paints them, read back through a canvas).
 */
function contrasts() {
  const ctx = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  const lin = (c) => (c / 255 <= 0.04045 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4);
  const lum = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b] = [...ctx.getImageData(0, 0, 1, 1).data].map(lin);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
    }
    return '#fff';
  };
  const of = (el) => {
    const [a, b] = [lum(getComputedStyle(el).color), lum(bgOf(el))].sort((x, y) => y - x);
    return Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100;
  };
  const worst = (host, sel) => {
    const keep = host.style.getPropertyValue('--hue');
    let low = { ratio: Infinity, hue: null };
    for (let hue = 0; hue < 360; hue++) {
      host.style.setProperty('--hue', String(hue));
      const ratio = of(host.querySelector(sel));
      if (ratio < low.ratio) low = { ratio, hue };
    }
    host.style.setProperty('--hue', keep);
    return low;
  };
  const msg = document.querySelector('#chat-log .chat-msg:not(.mine)');
  msg.classList.add('mine');
  const out = {
    unmute: of(document.getElementById('mute-btn')),
    muteAll: of(document.getElementById('deafen-btn')),
    member: worst(document.querySelector('#members .member:not(.self)'), '.name'),
    mine: worst(msg, '.chat-name'),
  };
  msg.classList.remove('mine');
  return out;
}

/** In the page: the visible controls smaller than 44 px either way (links in chat text aside). */
function smallTargets() {
  return [...document.querySelectorAll('button, select, input, textarea, a[href]')]
    .filter((el) => el.checkVisibility({ visibilityProperty: true }) && !el.closest('.chat-text'))
    .map((el) => ({ what: `${el.tagName.toLowerCase()}#${el.id || el.className}`, r: el.getBoundingClientRect() }))
    .filter(({ r }) => r.width > 0 && (r.width < 44 || r.height < 44))
    .map(({ what, r }) => `${what} ${Math.round(r.width)}×${Math.round(r.height)}`);
}

/** In the page: whether the chat box's placeholder fits it whole. */
function placeholderFits() {
  const box = document.getElementById('chat-input');
  const cs = getComputedStyle(box);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  const room = box.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  return { text: box.placeholder, fits: ctx.measureText(box.placeholder).width <= room };
}

/**
 * In the page: consecutive chat messages of one sender within two minutes are grouped (no
 * avatar, name and time on screen but the first); the others are not. Returns the mistakes
 * and how many were grouped.
 */
function chatGroups() {
  const items = [...document.querySelectorAll('#chat-log > li')];
  const wrong = [];
  let grouped = 0;
  items.forEach((li, i) => {
    if (!li.classList.contains('chat-msg')) return;
    const prev = items[i - 1];
    const same =
      prev?.classList.contains('chat-msg') &&
      prev.dataset.who === li.dataset.who &&
      prev.querySelector('.chat-name').textContent === li.querySelector('.chat-name').textContent &&
      Number(li.dataset.ts) - Number(prev.dataset.ts) < 120_000;
    const meta = li.querySelector('.meta').getBoundingClientRect();
    const avatar = li.querySelector('.avatar').getBoundingClientRect();
    const hidden = meta.width <= 1 && avatar.height === 0;
    if (same !== hidden || same !== li.classList.contains('grouped')) wrong.push(li.textContent);
    if (same) grouped++;
  });
  return { wrong, grouped };
}

/** The page's nickname field `sel` after typing 40 characters into it, and after pasting 40 emoji. */
async function typedNickname(page, sel) {
  await page.fill(sel, '');
  await page.focus(sel);
  await page.keyboard.type('n'.repeat(40));
  const typed = await page.inputValue(sel);
  await page.fill(sel, '🎧'.repeat(40));
  const pasted = [...(await page.inputValue(sel))].length;
  return { typed: typed.length, pasted };
}

test('a room of twelve on a desktop and a phone: controls on screen, the chat reached and opened at the newest, AA contrast, nicknames unique and cut at 32 as typed, mute for me kept by client key, Back after Leave asks first', { timeout: 120_000 }, async () => {
  await diagnose('room-twelve', () => ({ pages, server }), async () => {
    const room = 'twelve';
    const controls = ['#mute-btn', '#deafen-btn', '#devices-btn', '#copy-link-btn', '#leave-btn'];
    const dana = await open(roomPath(room, 'Dana'), 'dana');
    const others = [];
    const keyOf = (i) => `key-of-listener-${i}`.padEnd(22, '-');
    for (let i = 1; i <= 10; i++) others.push(await listener(room, `Listener ${i}`, keyOf(i)));
    // Twenty messages of three lines each: more than the chat log shows at once.
    for (const [i, ws] of others.entries()) {
      for (let k = 0; k < 2; k++) ws.send(JSON.stringify({ type: 'chat', text: `message ${i}-${k}\nsecond line\nthird line`, client_ref: `r${i}-${k}` }));
    }
    await dana.page.waitForFunction(() => window.f4c.chat.length === 20, null, { timeout: 10_000, polling: 100 });

    // Pia comes late, on a phone (the history arrives while her chat is folded), and asks for
    // Dana's name: the room gives her another.
    const pia = await open(roomPath(room, 'dana'), 'pia', { viewport: PHONE });
    await Promise.all([waitJoined(dana.page, 12), waitJoined(pia.page, 12)]);
    const piaId = await pia.page.evaluate(() => window.f4c.selfId);
    assert.equal(await pia.page.evaluate(() => window.f4c.name), 'dana (2)');
    assert.equal(await pia.page.textContent('#members .member.self .name'), 'dana (2)');
    assert.equal(await dana.page.evaluate((id) => window.f4c.members.get(id).name, piaId), 'dana (2)');
    await pia.page.waitForFunction(() => window.f4c.chat.length === 20, null, { timeout: 10_000, polling: 100 });

    // The controls are on screen at the top of the page and at its very end, on both.
    for (const h of [dana, pia]) {
      for (const end of [false, true]) {
        await h.page.evaluate((bottom) => window.scrollTo(0, bottom ? document.documentElement.scrollHeight : 0), end);
        assert.deepEqual(await h.page.evaluate(onScreen, controls), controls, `${h.label}: controls on screen (${end ? 'scrolled to the end' : 'at the top'})`);
      }
      await h.page.evaluate(() => window.scrollTo(0, 0));
    }
    // The phone's chat is on its first screen, above the controls.
    const reach = await pia.page.evaluate(() => ({
      chat: document.getElementById('chat-toggle').getBoundingClientRect().bottom,
      bar: document.getElementById('control-bar').getBoundingClientRect().top,
    }));
    assert.ok(reach.chat <= reach.bar, `the phone's chat toggle is above its control bar without scrolling: ${JSON.stringify(reach)}`);

    // Opened, the phone's chat shows the newest message: for the history, and for what came
    // while it was folded again.
    await pia.page.click('#chat-toggle');
    let scroll = await pia.page.evaluate(chatScroll);
    assert.ok(scroll.scrolls && scroll.fromEnd <= 2, `history: opened at the newest ${JSON.stringify(scroll)}`);
    await pia.page.click('#chat-toggle');
    for (const [i, ws] of others.slice(0, 4).entries()) ws.send(JSON.stringify({ type: 'chat', text: `later ${i}\nsecond line`, client_ref: `l${i}` }));
    await pia.page.waitForFunction(() => window.f4c.chat.length === 24, null, { timeout: 10_000, polling: 100 });
    await pia.page.evaluate(() => (document.getElementById('chat-log').scrollTop = 0));
    await pia.page.click('#chat-toggle');
    scroll = await pia.page.evaluate(chatScroll);
    assert.ok(scroll.fromEnd <= 2, `new messages: opened at the newest ${JSON.stringify(scroll)}`);

    // Text meets WCAG AA (4.5:1) in both colour schemes: the pressed toggles, and nicknames.
    await dana.page.click('#mute-btn');
    await dana.page.click('#deafen-btn');
    await dana.page.waitForSelector('#mute-btn.active');
    for (const colorScheme of ['light', 'dark']) {
      await dana.page.emulateMedia({ colorScheme });
      const c = await dana.page.evaluate(contrasts);
      assert.ok(c.unmute >= 4.5 && c.muteAll >= 4.5 && c.member.ratio >= 4.5 && c.mine.ratio >= 4.5, `${colorScheme}: ${JSON.stringify(c)}`);
    }

    // Every control on the phone is a 44 px target; Escape closes the Devices panel; a name cut
    // short on screen can be read whole by pointing at it.
    assert.deepEqual(await pia.page.evaluate(smallTargets), [], 'controls under 44 px on the phone');
    await pia.page.click('#devices-btn');
    await pia.page.focus('#mic-select');
    await pia.page.keyboard.press('Escape');
    assert.ok(await pia.page.isHidden('#devices'), 'Escape closes the Devices panel');
    assert.equal(await pia.page.evaluate(() => document.activeElement.id), 'devices-btn');
    for (const lang of ['en', 'zh-CN', 'zh-TW', 'ja', 'es', 'de']) {
      await pia.page.selectOption('#lang-select', lang);
      const box = await pia.page.evaluate(placeholderFits);
      assert.ok(box.fits, `${lang}: the chat box's placeholder fits a phone: ${box.text}`);
    }
    await pia.page.selectOption('#lang-select', 'en');
    const groups = await dana.page.evaluate(chatGroups);
    assert.deepEqual(groups.wrong, [], 'one sender\'s consecutive messages are grouped, and only those');
    assert.ok(groups.grouped >= 4, `messages grouped: ${groups.grouped}`);
    // Reading back, Dana is not pulled down by a new message; "Jump to the latest" takes her there.
    await dana.page.evaluate(() => (document.getElementById('chat-log').scrollTop = 0));
    others[1].send(JSON.stringify({ type: 'chat', text: 'news', client_ref: 'n' }));
    await dana.page.waitForSelector('#chat-jump:not([hidden])', { timeout: 10_000 });
    assert.ok((await dana.page.evaluate(chatScroll)).fromEnd > 100, 'still where she was reading');
    await dana.page.click('#chat-jump');
    assert.ok((await dana.page.evaluate(chatScroll)).fromEnd <= 2, 'at the newest');
    assert.ok(await dana.page.isHidden('#chat-jump'));
    const untitled = await dana.page.$$eval('#members .name, #chat-log .chat-name', (els) => els.filter((e) => e.title !== e.textContent).length);
    assert.equal(untitled, 0, 'every shown name can be read whole in its title');

    // Nickname fields stop at 32 characters (not UTF-16 units) as one types or pastes.
    await dana.page.click('#members .member.self .member-rename');
    assert.deepEqual(await typedNickname(dana.page, '#rename-input'), { typed: 32, pasted: 32 }, 'rename');
    await dana.page.keyboard.press('Escape');

    // Dana mutes Listener 1 for herself. He comes back on a new connection, and she reloads:
    // he stays muted for her, and the server is told each time.
    const mutedFor = (h) =>
      h.page.evaluate(() => {
        const f = window.f4c;
        const id = [...f.members.values()].find((m) => m.name === 'Listener 1')?.id;
        const li = document.querySelector(`#members .member[data-member-id="${id}"] .member-mute`);
        const avatar = document.querySelector(`#members .member[data-member-id="${id}"] .avatar`)?.innerHTML;
        return { id, muted: f.locallyMuted.has(id), pressed: li?.getAttribute('aria-pressed'), told: f.sent.local_mutes ?? 0, avatar };
      });
    const before = await mutedFor(dana);
    await dana.page.click(`#members .member[data-member-id="${before.id}"] .member-mute`);
    const closed = new Promise((resolve) => others[0].once('close', resolve));
    others[0].close();
    await closed;
    others[0] = await listener(room, 'Listener 1', keyOf(1));
    await dana.page.waitForFunction((old) => [...window.f4c.members.values()].some((m) => m.name === 'Listener 1' && m.id !== old), before.id, { timeout: 10_000, polling: 100 });
    const back = await mutedFor(dana);
    assert.notEqual(back.id, before.id);
    assert.deepEqual({ muted: back.muted, pressed: back.pressed }, { muted: true, pressed: 'true' }, 'still muted for Dana after he came back');
    assert.ok(back.told >= 2, `the server was told again: ${back.told}`);
    assert.equal(back.avatar, before.avatar, 'the same avatar as before: it comes from his key, not his connection');
    await dana.page.reload();
    await waitJoined(dana.page, 12);
    const reloaded = await mutedFor(dana);
    assert.deepEqual({ muted: reloaded.muted, pressed: reloaded.pressed, told: reloaded.told }, { muted: true, pressed: 'true', told: 1 }, 'still muted after her reload');
    assert.equal(await dana.page.evaluate(() => window.f4c.name), 'Dana', 'her own name back, not a suffixed one');

    // Pia leaves; Back brings the room's page, which asks for her nickname before anything.
    await Promise.all([pia.page.waitForURL(`${server.base}/`), pia.page.click('#leave-btn')]);
    await pia.page.waitForSelector('#home:not([hidden])');
    assert.deepEqual(await pia.page.evaluate(smallTargets), [], 'controls under 44 px on the home page');
    assert.deepEqual(await typedNickname(pia.page, '#home-name'), { typed: 32, pasted: 32 }, 'home page');
    await waitJoined(dana.page, 11);
    await pia.page.goBack();
    await pia.page.waitForSelector('#ask-name:not([hidden])', { timeout: 10_000 });
    assert.equal(pia.page.url(), `${server.base}/room/${room}`);
    assert.equal(await pia.page.inputValue('#ask-name-input'), 'dana', 'the name she asked for');
    const after = await pia.page.evaluate(() => ({ state: window.f4c.state, mic: !!window.f4c.getState().mic.track }));
    assert.deepEqual(after, { state: 'idle', mic: false }, 'not in the room, no microphone');
    assert.deepEqual(await typedNickname(pia.page, '#ask-name-input'), { typed: 32, pasted: 32 }, 'ask-name page');
    assert.equal(await dana.page.evaluate(() => window.f4c.members.size), 11, 'Pia did not come back');

    // Someone who takes a name after its holder left has another avatar in the chat.
    const chatAvatars = () => [...document.querySelectorAll('#chat-log .chat-msg')].slice(-2).map((li) => [li.querySelector('.chat-name').textContent, li.querySelector('.avatar').innerHTML]);
    for (const text of ['boo', 'boo again']) {
      const ghost = await listener(room, 'Ghost');
      ghost.send(JSON.stringify({ type: 'chat', text, client_ref: 'g' }));
      await dana.page.waitForFunction((t) => window.f4c.chat.at(-1)?.text === t, text, { timeout: 10_000, polling: 100 });
      ghost.close();
      await waitJoined(dana.page, 11);
    }
    const [first, second] = await dana.page.evaluate(chatAvatars);
    assert.deepEqual([first[0], second[0]], ['Ghost', 'Ghost']);
    assert.notEqual(first[1], second[1], 'two members named Ghost, two avatars');

    for (const h of pages) {
      assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
      assert.deepEqual(await h.page.evaluate(() => window.f4c.errors), [], `${h.label}: refused messages`);
    }
  });
});

test('an unknown address answers 404 with a page in the app\'s style and language, with a way home', { timeout: 30_000 }, async () => {
  await diagnose('room-not-found', () => ({ pages, server }), async () => {
    const h = await open('/', 'not-found', { viewport: PHONE });
    await h.page.selectOption('#lang-select', 'de');
    const res = await h.page.goto(`${server.base}/no/such/page`);
    assert.equal(res.status(), 404);
    await h.page.waitForSelector('#not-found:not([hidden])');
    assert.equal(await h.page.textContent('#not-found h1'), translate('notFound.heading', {}, 'de'));
    const look = await h.page.evaluate(() => {
      const card = getComputedStyle(document.getElementById('not-found'));
      return { font: getComputedStyle(document.body).fontFamily, card: card.backgroundColor, radius: card.borderRadius, wide: document.documentElement.scrollWidth };
    });
    assert.ok(!/monospace/.test(look.font) && look.card !== 'rgba(0, 0, 0, 0)' && look.radius !== '0px', `the app's style: ${JSON.stringify(look)}`);
    assert.ok(look.wide <= PHONE.width, 'fits a phone');
    await Promise.all([h.page.waitForURL(`${server.base}/`), h.page.click('#not-found a')]);
    await h.page.waitForSelector('#home:not([hidden])');
    assert.deepEqual(h.pageErrors, []);
    await h.context.close();
  });
});
