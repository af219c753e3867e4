// End to end: the web app around the audio. A real free4chat server and headless Chromium at
// desktop (1280×800) and phone (360×740) sizes: languages, the home page, layout and colour
// schemes, keyboard and screen-reader access, chat, the member list, microphone problems, the
// installable web-app manifest, and the README's screenshots of the home page.
//
// Run from the repository root: node --test e2e/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  DESKTOP,
  OUT_DIR,
  PHONE,
  SCREENSHOT_DIR,
  WEB_DIR,
  ensureOutDir,
  f4cSnapshot,
  freePort,
  launchBrowser,
  openPage,
  startServer,
  waitJoined,
  waitStreams,
  withDiagnostics as diagnose,
} from './helpers.mjs';

const { MESSAGES, LANGUAGES, t: translate } = await import(pathToFileURL(path.join(WEB_DIR, 'i18n.js')).href);
const LANG_CODES = LANGUAGES.map((l) => l.code);
const msg = (lang, key, args = {}) => translate(key, args, lang);

let server;
let browser; // microphone granted (Chromium's own fake microphone)
let deniedBrowser; // asks for the microphone and is refused, until a context grants it
const pages = [];

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'server-app.log') });
  browser = await launchBrowser(null);
  deniedBrowser = await launchBrowser(null, { grantMic: false });
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled([browser, deniedBrowser].filter(Boolean).map((b) => b.close()));
  if (server) await server.stop();
}, { timeout: 20_000 });

/** Opens a page (desktop size unless told) and keeps it for diagnostics. */
async function open(urlPath, label, { viewport = DESKTOP, contextOptions = {}, init, initArg, via = browser } = {}) {
  const h = await openPage(via, `${server.base}${urlPath}`, label, {
    contextOptions: { viewport, ...contextOptions },
    init,
    initArg,
  });
  pages.push(h);
  return h;
}

async function close(...handles) {
  for (const h of handles) {
    const i = pages.indexOf(h);
    if (i >= 0) pages.splice(i, 1);
    await h.context.close().catch(() => {});
  }
}

function roomPath(room, name, extra = '') {
  return `/room/${room}?name=${encodeURIComponent(name)}&audio=raw${extra}`;
}

async function withDiagnostics(name, body) {
  try {
    await diagnose(`app-${name}`, () => ({ pages, server }), body);
  } finally {
    // Whatever happened, leave no page behind to load the next test.
    await close(...pages);
  }
}

/** Fails on script errors in the page or messages the server refused. */
async function assertClean(...handles) {
  for (const h of handles) {
    assert.deepEqual(h.pageErrors, [], `${h.label}: page errors`);
    const csp = h.log.filter((l) => /Content Security Policy|Refused to (load|apply|execute|connect)/i.test(l));
    assert.deepEqual(csp, [], `${h.label}: the page broke its own content security policy`);
    const refused = await h.page.evaluate(() => window.f4c?.errors ?? []);
    assert.deepEqual(refused, [], `${h.label}: the server refused something the page sent`);
  }
}

async function setLanguage(page, code) {
  await page.selectOption('#lang-select', code);
  await page.waitForFunction((c) => document.documentElement.lang === c, code, { timeout: 5000 });
}

// In-page: every string a person can see or hear from a screen reader: text, labels, titles,
// placeholders, the options of visible menus, and the document title.
function visibleStrings() {
  const out = new Set();
  const add = (s) => {
    const v = String(s ?? '').replace(/\s+/g, ' ').trim();
    if (v) out.add(v);
  };
  const shown = (el) => el.checkVisibility({ visibilityProperty: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script, style, noscript, #remote-audio')) continue;
    if (el.tagName === 'OPTION') {
      const select = el.closest('select');
      if (select && shown(select)) add(n.textContent);
      continue;
    }
    if (shown(el)) add(n.textContent);
  }
  for (const el of document.body.querySelectorAll('[aria-label], [title], [placeholder]')) {
    if (!shown(el)) continue;
    for (const attr of ['aria-label', 'title', 'placeholder']) add(el.getAttribute(attr));
  }
  add(document.title);
  return [...out];
}

/**
 * Switches the page through every language and checks that nothing shown in English is still
 * shown the same way in another language, apart from names people chose, numbers and times,
 * device names from the system, the brand, the language names, and strings that are the same
 * in both languages by design (found in the dictionaries).
 */
async function assertFullyTranslated(page, names, label) {
  const brand = (s) => s === 'free4chat' || LANGUAGES.some((l) => l.name === s);
  const allowed = (s, lang) =>
    !/\p{L}/u.test(s.replace(/\b(AM|PM)\b/g, '')) ||
    brand(s) ||
    s.startsWith('Fake ') ||
    names.some((n) => s.includes(n)) ||
    Object.keys(MESSAGES.en).some((k) => MESSAGES.en[k] === MESSAGES[lang][k] && typeof MESSAGES.en[k] === 'string' && s.includes(MESSAGES.en[k].replace(/\{\w+\}/g, '').trim()));
  await setLanguage(page, 'en');
  const english = new Set(await page.evaluate(visibleStrings));
  assert.ok(english.size > 10, `${label}: visible strings found: ${[...english].join(' | ')}`);
  for (const lang of LANG_CODES.filter((c) => c !== 'en')) {
    await setLanguage(page, lang);
    const other = await page.evaluate(visibleStrings);
    const left = other.filter((s) => english.has(s) && !allowed(s, lang));
    assert.deepEqual(left, [], `${label}: still in English after switching to ${lang}`);
  }
  await setLanguage(page, 'en');
}

// ---------------------------------------------------------------------------------------------

test('translations: every language has every key, and every key the page uses exists', () => {
  assert.deepEqual(LANG_CODES, ['en', 'zh-CN', 'zh-TW', 'ja', 'es', 'de']);
  assert.deepEqual(Object.keys(MESSAGES).sort(), [...LANG_CODES].sort());
  const placeholders = (v) =>
    [...new Set((typeof v === 'string' ? v : Object.values(v).join(' ')).match(/\{\w+\}/g) ?? [])].sort();
  const enKeys = Object.keys(MESSAGES.en);
  for (const lang of LANG_CODES) {
    assert.deepEqual(Object.keys(MESSAGES[lang]).sort(), [...enKeys].sort(), `${lang}: the same keys as English`);
    for (const key of enKeys) {
      const v = MESSAGES[lang][key];
      if (typeof v === 'object') {
        assert.equal(typeof v.other, 'string', `${lang} ${key}: plural forms need "other"`);
      } else {
        assert.equal(typeof v, 'string', `${lang} ${key}`);
        assert.ok(v.trim() !== '', `${lang} ${key}: empty`);
      }
      assert.deepEqual(placeholders(v), placeholders(MESSAGES.en[key]), `${lang} ${key}: the same placeholders`);
    }
    if (lang !== 'en') {
      // Only strings that are the same in both languages by nature may be left as in English.
      const same = enKeys.filter((k) => JSON.stringify(MESSAGES[lang][k]) === JSON.stringify(MESSAGES.en[k]));
      assert.ok(
        same.every((k) => k === 'title.room' || ((k === 'chat.heading' || k === 'tile.grid') && lang === 'de') || (k === 'chat.heading' && lang === 'es')),
        `${lang}: untranslated: ${same.join(', ')}`,
      );
    }
  }

  // Every key the page's code and markup name exists, and every key is used.
  const files = readdirSync(WEB_DIR).filter((f) => /\.(js|html)$/.test(f) && !/^messages(-\w+)?\.js$/.test(f));
  const source = files.map((f) => readFileSync(path.join(WEB_DIR, f), 'utf8')).join('\n');
  const prefixes = [...new Set(enKeys.map((k) => k.split('.')[0]))];
  const named = new Set();
  const literal = new RegExp(`['"]((?:${prefixes.join('|')})\\.[A-Za-z_]+)['"]`, 'g');
  for (const m of source.matchAll(literal)) named.add(m[1]);
  const missing = [...named].filter((k) => !(k in MESSAGES.en));
  assert.deepEqual(missing, [], 'keys used by the page but missing from the dictionaries');
  // Keys made from a server code: `bye.<reason>` and `srv.<error code>`.
  const dynamic = (k) => k.startsWith('bye.') || k.startsWith('srv.');
  const unused = enKeys.filter((k) => !named.has(k) && !dynamic(k));
  assert.deepEqual(unused, [], 'keys nothing uses');
  for (const reason of ['left', 'server_shutdown', 'protocol_violation', 'media_failed', 'other']) {
    assert.ok(`bye.${reason}` in MESSAGES.en, `bye.${reason}`);
  }
});

test('the language follows the browser, can be switched in the page, and is remembered', { timeout: 60_000 }, async () => {
  await withDiagnostics('language', async () => {
    const cases = [
      ['ja-JP', 'ja'],
      ['zh-TW', 'zh-TW'],
      ['zh-CN', 'zh-CN'],
      ['es-MX', 'es'],
      ['de-AT', 'de'],
      ['fr-FR', 'en'],
    ];
    for (const [locale, lang] of cases) {
      const h = await open('/', `home-${locale}`, { contextOptions: { locale } });
      await h.page.waitForSelector('#home:not([hidden])', { timeout: 10_000 });
      const seen = await h.page.evaluate(() => ({
        lang: document.documentElement.lang,
        heading: document.getElementById('home-heading').textContent,
        go: document.querySelector('#home-form button[type=submit]').textContent,
        placeholder: document.getElementById('home-room').placeholder,
        dice: document.getElementById('home-room-dice').getAttribute('aria-label'),
        title: document.title,
        picked: document.getElementById('lang-select').value,
      }));
      assert.deepEqual(
        seen,
        {
          lang,
          heading: msg(lang, 'home.heading'),
          go: msg(lang, 'home.go'),
          placeholder: msg(lang, 'field.roomPlaceholder'),
          dice: msg(lang, 'dice.room'),
          title: msg(lang, 'title.home'),
          picked: lang,
        },
        `browser language ${locale}`,
      );
      await close(h);
    }

    // Switching in the page, and the choice outlives a reload (the browser still says Japanese).
    const h = await open('/', 'home-switch', { contextOptions: { locale: 'ja-JP' } });
    await h.page.waitForSelector('#home:not([hidden])');
    assert.equal(await h.page.textContent('#home-heading'), msg('ja', 'home.heading'));
    await setLanguage(h.page, 'de');
    assert.equal(await h.page.textContent('#home-heading'), msg('de', 'home.heading'));
    assert.equal(await h.page.getAttribute('#home-name', 'placeholder'), msg('de', 'field.nickPlaceholder'));
    assert.equal(await h.page.title(), msg('de', 'title.home'));
    // A validation message shown before the switch follows it too.
    await h.page.fill('#home-room', 'no spaces allowed');
    await h.page.click('#home-form button[type=submit]');
    assert.equal(await h.page.textContent('#home-room-error'), msg('de', 'err.roomRule'));
    await setLanguage(h.page, 'es');
    assert.equal(await h.page.textContent('#home-room-error'), msg('es', 'err.roomRule'));
    await h.page.reload();
    await h.page.waitForSelector('#home:not([hidden])');
    assert.equal(await h.page.evaluate(() => document.documentElement.lang), 'es');
    assert.equal(await h.page.textContent('#home-heading'), msg('es', 'home.heading'));
    assert.equal(await h.page.evaluate(() => localStorage.getItem('free4chat.lang')), 'es');
    await assertFullyTranslated(h.page, [], 'home page');
    assert.deepEqual(h.pageErrors, []);
    await close(h);
  });
});

test('no English is left after switching language, in the room with everything open', { timeout: 60_000 }, async () => {
  await withDiagnostics('room-language', async () => {
    const room = 'sprachen';
    const ana = await open(roomPath(room, 'Ana'), 'Ana');
    await waitJoined(ana.page, 1);
    await ana.page.waitForSelector('#lonely-hint:not([hidden])', { timeout: 10_000 });
    // Alone: the lonely hint, the headphones tip, the devices panel and the rename form.
    await ana.page.click('#devices-btn');
    await ana.page.waitForFunction(() => document.querySelectorAll('#mic-select option').length > 1, null, { timeout: 10_000 });
    await ana.page.click('#members .member.self .member-rename');
    await assertFullyTranslated(ana.page, ['Ana', room], 'room, alone');

    // With someone else: their member entry and its buttons, "muted for you", a chat line and
    // the system lines ("… joined") already on screen when the language changes.
    const ben = await open(roomPath(room, 'Ben'), 'Ben');
    await Promise.all([waitJoined(ana.page, 2), waitJoined(ben.page, 2)]);
    await ana.page.click('#rename-cancel');
    await ana.page.click('#members .member:not(.self) .member-mute');
    await ben.page.fill('#chat-input', 'hello');
    await ben.page.press('#chat-input', 'Enter');
    await ana.page.waitForSelector('#chat-log .chat-msg');
    await assertFullyTranslated(ana.page, ['Ana', 'Ben', 'hello', room], 'room, with someone');
    await setLanguage(ana.page, 'ja');
    assert.equal(await ana.page.textContent('#chat-log .chat-system'), msg('ja', 'sys.joined', { name: 'Ben' }));
    assert.equal(await ana.page.textContent('#conn-text'), msg('ja', 'conn.joined'));
    assert.equal(await ana.page.title(), msg('ja', 'title.room', { room }));
    await assertClean(ana, ben);
    await close(ana, ben);
  });
});

test('home page: dice buttons, checks, and recent rooms to rejoin or forget (desktop and phone)', { timeout: 60_000 }, async () => {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await withDiagnostics(`home-${size}`, () => homeFlow(viewport, `recent-${size}`));
  }
});

async function homeFlow(viewport, room) {
  {
    const h = await open('/', `home-${viewport.width}`, { viewport });
    const page = h.page;
    await page.waitForSelector('#home:not([hidden])');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'home-room', 'the room field has focus');
    assert.ok(await page.isHidden('#recent'), 'no recent rooms on a first visit');

    // The dice fill in valid, friendly names.
    const rooms = new Set();
    for (let i = 0; i < 4; i++) {
      await page.click('#home-room-dice');
      rooms.add(await page.inputValue('#home-room'));
    }
    for (const r of rooms) assert.match(r, /^[a-z]+-[a-z]+-\d{2}$/, 'a valid room name');
    assert.ok(rooms.size > 1, 'the dice roll differently');
    await page.click('#home-name-dice');
    const nick = await page.inputValue('#home-name');
    assert.match(nick, /^[A-Z][a-z]+ [A-Z][a-z]+$/);

    // Checks before leaving the page.
    await page.fill('#home-room', '');
    await page.click('#home-form button[type=submit]');
    assert.equal(await page.textContent('#home-room-error'), msg('en', 'err.roomEmpty'));
    assert.equal(await page.getAttribute('#home-room', 'aria-invalid'), 'true');
    await page.fill('#home-room', 'bad room!');
    assert.equal(await page.textContent('#home-room-error'), msg('en', 'err.roomRule'), 'checked while typing');
    await page.fill('#home-room', room);
    await page.fill('#home-name', 'x'.repeat(33));
    assert.equal(await page.inputValue('#home-name'), 'x'.repeat(32), 'cut at the limit as it is typed');
    await page.fill('#home-name', 'a\u0007b');
    await page.click('#home-form button[type=submit]');
    assert.equal(await page.textContent('#home-name-error'), msg('en', 'err.nickControl'));
    assert.equal(await page.evaluate(() => document.activeElement.id), 'home-name');

    // Go: into the room, alone, then leave.
    await page.fill('#home-name', 'Rita');
    await Promise.all([page.waitForURL(`${server.base}/room/${room}?name=Rita`), page.click('#home-form button[type=submit]')]);
    await waitJoined(page, 1);
    await page.waitForSelector('#lonely-hint:not([hidden])');
    assert.equal(
      (await page.textContent('#lonely-hint')).replace(/\s+/g, ' ').trim(),
      `${msg('en', 'hint.lonely')} ${msg('en', 'ctl.copyLink')}`,
    );
    await Promise.all([page.waitForURL(`${server.base}/`), page.click('#leave-btn')]);
    await page.waitForSelector('#home:not([hidden])');

    // The room is remembered, with the name used, to rejoin with one click or to forget.
    assert.equal(await page.inputValue('#home-name'), 'Rita', 'the nickname is remembered');
    const items = await page.$$eval('#recent-list .recent-item', (lis) =>
      lis.map((li) => ({
        room: li.dataset.room,
        href: li.querySelector('a').getAttribute('href'),
        text: li.querySelector('a').textContent,
        forget: li.querySelector('button').getAttribute('aria-label'),
      })),
    );
    assert.equal(items.length, 1);
    assert.equal(items[0].room, room);
    assert.equal(items[0].href, `/room/${room}?name=Rita`);
    assert.ok(items[0].text.includes(`# ${room}`));
    assert.match(items[0].text, /as Rita/);
    assert.equal(items[0].forget, msg('en', 'recent.forget', { room }));
    await page.click('#recent-list .recent-forget');
    assert.ok(await page.isHidden('#recent'), 'forgotten');
    assert.equal(await page.evaluate(() => localStorage.getItem('free4chat.recent')), '[]');

    // A room address that is not valid says so, in words.
    await page.goto(`${server.base}/room/not%20valid!`);
    await page.waitForSelector('#fatal:not([hidden])');
    assert.equal(await page.textContent('#fatal-text'), msg('en', 'fatal.badRoom', { room: 'not valid!' }));
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= viewport.width);
    assert.deepEqual(h.pageErrors, []);
    await close(h);
  }
}

test('a phone never scrolls sideways, and light and dark colour schemes both apply', { timeout: 60_000 }, async () => {
  await withDiagnostics('layout', async () => {
    const width = () => document.documentElement.scrollWidth;
    const home = await open('/', 'home-phone', { viewport: PHONE });
    await home.page.waitForSelector('#home:not([hidden])');
    // Some recent rooms with long names, in every language.
    await home.page.evaluate(() => {
      const long = 'a-very-long-room-name-that-goes-on-and-on-and-on-without-a-break-1';
      localStorage.setItem(
        'free4chat.recent',
        JSON.stringify([{ room: long.slice(0, 64), name: 'W'.repeat(32), at: Date.now() - 3_600_000 }]),
      );
    });
    await home.page.reload();
    await home.page.waitForSelector('#recent:not([hidden])');
    for (const lang of LANG_CODES) {
      await setLanguage(home.page, lang);
      assert.ok((await home.page.evaluate(width)) <= PHONE.width, `home page at 360 px in ${lang}`);
    }

    // The room, with long names, a long unbroken chat line, and every panel open.
    const room = 'narrow';
    const longName = 'Ω'.repeat(32);
    const phone = await open(roomPath(room, longName), 'room-phone', { viewport: PHONE });
    const other = await open(roomPath(room, 'W'.repeat(32)), 'room-other');
    await Promise.all([waitJoined(phone.page, 2), waitJoined(other.page, 2)]);
    await other.page.fill('#chat-input', `${'x'.repeat(300)} https://example.com/${'long/'.repeat(40)}`);
    await other.page.press('#chat-input', 'Enter');
    await phone.page.waitForFunction(() => window.f4c.chat.length === 1);
    assert.equal(await phone.page.getAttribute('#chat-toggle', 'aria-expanded'), 'false', 'the chat starts folded on a phone');
    await phone.page.click('#chat-toggle');
    await phone.page.click('#devices-btn');
    await phone.page.click('#members .member.self .member-rename');
    for (const lang of LANG_CODES) {
      await setLanguage(phone.page, lang);
      assert.ok((await phone.page.evaluate(width)) <= PHONE.width, `room at 360 px in ${lang}`);
    }
    assert.ok((await other.page.evaluate(width)) <= DESKTOP.width, 'room at 1280 px');

    // Colour schemes: the page follows the system's light or dark preference.
    const colours = () => {
      const bg = (sel) => getComputedStyle(document.querySelector(sel)).backgroundColor;
      return { body: bg('html'), panel: bg('.panel'), text: getComputedStyle(document.body).color, scheme: getComputedStyle(document.documentElement).colorScheme };
    };
    const luminance = (rgb) => {
      const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).map(Number);
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    };
    for (const h of [phone, home]) {
      await h.page.emulateMedia({ colorScheme: 'light' });
      const light = await h.page.evaluate(colours).catch(() => null);
      await h.page.emulateMedia({ colorScheme: 'dark' });
      const dark = await h.page.evaluate(colours).catch(() => null);
      if (!light || !dark) continue; // the home page has no .panel
      assert.notEqual(light.body, dark.body, 'page background');
      assert.notEqual(light.panel, dark.panel, 'panel background');
      assert.ok(luminance(light.body) > 0.8 && luminance(dark.body) < 0.2, `light is light and dark is dark: ${JSON.stringify({ light, dark })}`);
      assert.ok(luminance(light.text) < 0.3 && luminance(dark.text) > 0.7, 'text contrasts with its background');
      assert.equal(dark.scheme, 'dark');
    }
    await home.page.emulateMedia({ colorScheme: 'light' });
    const homeLight = await home.page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await home.page.emulateMedia({ colorScheme: 'dark' });
    const homeDark = await home.page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    assert.notEqual(homeLight, homeDark, 'home page background');
    await assertClean(phone, other);
    await close(home, phone, other);
  });
});

/** Every interactive node in Chromium's accessibility tree has a name. */
async function assertNamed(h, label) {
  const cdp = await h.context.newCDPSession(h.page);
  await cdp.send('Accessibility.enable');
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  await cdp.detach();
  const interactive = new Set(['button', 'link', 'textbox', 'combobox', 'checkbox', 'radio', 'switch', 'slider', 'spinbutton', 'searchbox', 'tab', 'menuitem', 'listbox']);
  const controls = nodes.filter((n) => !n.ignored && interactive.has(n.role?.value));
  const focusable = nodes.filter(
    (n) => !n.ignored && (n.properties ?? []).some((p) => p.name === 'focusable' && p.value.value) && !['RootWebArea', 'main', 'generic'].includes(n.role?.value),
  );
  const unnamed = [...new Set([...controls, ...focusable])].filter((n) => !String(n.name?.value ?? '').trim());
  assert.deepEqual(unnamed.map((n) => `${n.role?.value} #${n.backendDOMNodeId}`), [], `${label}: controls without an accessible name`);
  assert.ok(controls.length >= 3, `${label}: controls found (${controls.length})`);
  return controls.map((n) => `${n.role.value}: ${n.name.value}`);
}

/**
 * Tabs through the page from the top: every visible, enabled control must be reached, and each
 * must show a focus ring (:focus-visible) of at least 2 px.
 */
async function assertKeyboardReachable(h, label) {
  const page = h.page;
  const expected = await page.evaluate(() => {
    const sel = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
    const all = [...document.querySelectorAll(sel)].filter(
      (el) => !el.disabled && el.checkVisibility({ visibilityProperty: true }) && el.getClientRects().length > 0,
    );
    all.forEach((el, i) => (el.dataset.e2eTab = String(i)));
    return all.map((el) => `${el.tagName.toLowerCase()}#${el.id || el.className}`);
  });
  await page.evaluate(() => {
    document.activeElement?.blur();
    window.scrollTo(0, 0);
  });
  // Start from the very top of the document.
  await page.focus('body').catch(() => {});
  const reached = new Map();
  // Where Tab starts is up to the browser: go round the page twice.
  for (let i = 0; i < expected.length * 2 + 8; i++) {
    await page.keyboard.press('Tab');
    const now = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const s = getComputedStyle(el);
      return {
        tab: el.dataset.e2eTab ?? null,
        what: `${el.tagName.toLowerCase()}#${el.id || el.className}`,
        ring: el.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
      };
    });
    if (now && now.tab !== null) reached.set(now.tab, now);
  }
  const missed = expected.filter((_, i) => !reached.has(String(i)));
  assert.deepEqual(missed, [], `${label}: controls the keyboard never reaches`);
  const ringless = [...reached.values()].filter((r) => !r.ring).map((r) => r.what);
  assert.deepEqual(ringless, [], `${label}: focused without a visible focus ring`);
  return expected.length;
}

test('every control has an accessible name and is reached by keyboard with a visible focus ring', { timeout: 60_000 }, async (t) => {
  await withDiagnostics('a11y', async () => {
    const home = await open('/', 'a11y-home');
    await home.page.waitForSelector('#home:not([hidden])');
    await home.page.evaluate(() =>
      localStorage.setItem('free4chat.recent', JSON.stringify([{ room: 'kbd', name: 'Kim', at: Date.now() }])),
    );
    await home.page.reload();
    await home.page.waitForSelector('#recent:not([hidden])');
    const homeControls = await assertNamed(home, 'home page');
    t.diagnostic(`home page controls: ${homeControls.join('; ')}`);
    const n = await assertKeyboardReachable(home, 'home page');
    t.diagnostic(`home page: ${n} controls reached by Tab`);

    const room = 'keyboard';
    const kim = await open(roomPath(room, 'Kim'), 'a11y-kim');
    const lee = await open(roomPath(room, 'Lee'), 'a11y-lee', { viewport: PHONE });
    await Promise.all([waitJoined(kim.page, 2), waitJoined(lee.page, 2)]);
    await kim.page.click('#devices-btn');
    await kim.page.waitForFunction(() => document.querySelectorAll('#mic-select option').length > 1, null, { timeout: 10_000 });
    await kim.page.fill('#chat-input', 'see https://example.com');
    await kim.page.press('#chat-input', 'Enter');
    await kim.page.waitForSelector('#chat-log a');
    for (const h of [kim, lee]) {
      const controls = await assertNamed(h, `room (${h.label})`);
      t.diagnostic(`room controls (${h.label}): ${controls.join('; ')}`);
      await assertKeyboardReachable(h, `room (${h.label})`);
    }
    // The rename form, by keyboard alone: Enter on the pencil, Escape closes and returns focus.
    await kim.page.focus('#members .member.self .member-rename');
    await kim.page.keyboard.press('Enter');
    assert.equal(await kim.page.evaluate(() => document.activeElement.id), 'rename-input');
    await kim.page.keyboard.press('Escape');
    assert.ok(await kim.page.isHidden('#rename-form'));
    assert.ok(await kim.page.evaluate(() => document.activeElement.classList.contains('member-rename')));
    // On the phone, the folded chat opens from the keyboard.
    await lee.page.focus('#chat-toggle');
    await lee.page.keyboard.press('Enter');
    assert.equal(await lee.page.getAttribute('#chat-toggle', 'aria-expanded'), 'true');
    await assertClean(kim, lee);
    await close(home, kim, lee);
  });
});

test('chat: names and times, history for latecomers, safe links, any script and emoji, unread count while folded', { timeout: 60_000 }, async () => {
  await withDiagnostics('chat', async () => {
    const room = 'chat-room';
    const ana = await open(roomPath(room, 'Ana'), 'chat-ana');
    const bo = await open(roomPath(room, 'Bo'), 'chat-bo', { viewport: PHONE });
    await Promise.all([waitJoined(ana.page, 2), waitJoined(bo.page, 2)]);
    assert.equal(await bo.page.getAttribute('#chat-toggle', 'aria-expanded'), 'false');
    assert.ok(await bo.page.isHidden('#chat-log'), 'folded on a phone');

    const texts = [
      'Look: https://example.com/a?b=1&c=2, and (https://example.org/x_(y)) too.',
      'javascript:alert(1) data:text/html,<b>hi</b> <a href="javascript:alert(2)">x</a> www.example.com ftp://example.net',
      'Unicode: 你好，世界 · こんにちは · مرحبا · Ελληνικά · 👋🏽 👩‍👩‍👧 · 𝄞 · e\u0301',
    ];
    for (const text of texts) {
      await ana.page.fill('#chat-input', text);
      await ana.page.press('#chat-input', 'Enter');
    }
    await bo.page.waitForFunction(() => window.f4c.chat.length === 3, null, { timeout: 10_000, polling: 100 });

    // Folded: a badge counts what came in, and the title says it too.
    await bo.page.waitForSelector('#chat-unread:not([hidden])');
    assert.equal(await bo.page.textContent('#chat-unread'), '3');
    assert.equal(await bo.page.textContent('#chat-unread-sr'), msg('en', 'chat.unreadSr', { n: 3 }));
    assert.equal(await bo.page.title(), `(3) ${msg('en', 'title.room', { room })}`);
    await bo.page.click('#chat-toggle');
    assert.ok(await bo.page.isVisible('#chat-log'));
    assert.ok(await bo.page.isHidden('#chat-unread'), 'read once opened');
    assert.equal(await bo.page.evaluate(() => window.f4c.unread), 0);
    assert.equal(await bo.page.title(), msg('en', 'title.room', { room }));

    // What Bo sees: every message literally, with its sender and time; only http(s) links.
    const shown = (h) =>
      h.page.$$eval('#chat-log .chat-msg', (lis) =>
        lis.map((li) => ({
          name: li.querySelector('.chat-name').textContent,
          text: li.querySelector('.chat-text').textContent,
          time: li.querySelector('time').textContent,
          datetime: li.querySelector('time').dateTime,
          mine: li.classList.contains('mine'),
          links: [...li.querySelectorAll('.chat-text a')].map((a) => ({
            href: a.getAttribute('href'),
            text: a.textContent,
            target: a.target,
            rel: a.rel,
          })),
          elements: [...li.querySelectorAll('.chat-text *')].map((e) => e.tagName),
        })),
      );
    const boSees = await shown(bo);
    const stored = await bo.page.evaluate(() => window.f4c.chat);
    assert.deepEqual(boSees.map((m) => m.text), texts, 'text shown exactly as sent');
    for (const [i, m] of boSees.entries()) {
      assert.equal(m.name, 'Ana');
      assert.equal(m.mine, false);
      assert.equal(m.datetime, new Date(stored[i].ts).toISOString(), 'the time of the message');
      assert.match(m.time, /\d{1,2}:\d{2}/);
    }
    assert.deepEqual(boSees[0].links, [
      { href: 'https://example.com/a?b=1&c=2', text: 'https://example.com/a?b=1&c=2', target: '_blank', rel: 'noopener noreferrer' },
      { href: 'https://example.org/x_(y)', text: 'https://example.org/x_(y)', target: '_blank', rel: 'noopener noreferrer' },
    ]);
    assert.deepEqual(boSees[1].links, [], 'no link from javascript:, data:, markup, bare www or ftp');
    assert.deepEqual(boSees[1].elements, [], 'no elements made from the text');
    assert.deepEqual(boSees[2].elements, []);
    assert.ok((await shown(ana)).every((m) => m.mine), 'own messages are marked as such');

    // The phone sends too.
    await bo.page.fill('#chat-input', 'Got it 👍');
    await bo.page.click('#chat-send');
    await ana.page.waitForFunction(() => window.f4c.chat.some((m) => m.text === 'Got it 👍'), null, { timeout: 10_000 });
    assert.equal(await bo.page.inputValue('#chat-input'), '', 'the box empties once sent');

    // A latecomer on a phone gets the history, in order, without an unread count for it.
    const cy = await open(roomPath(room, 'Cy'), 'chat-cy', { viewport: PHONE });
    await waitJoined(cy.page, 3);
    await cy.page.waitForFunction(() => window.f4c.chat.length === 4, null, { timeout: 10_000 });
    assert.equal(await cy.page.evaluate(() => window.f4c.unread), 0);
    assert.ok(await cy.page.isHidden('#chat-unread'));
    await cy.page.click('#chat-toggle');
    const cySees = await shown(cy);
    assert.deepEqual(cySees.map((m) => [m.name, m.text]), [...texts.map((x) => ['Ana', x]), ['Bo', 'Got it 👍']]);
    assert.deepEqual(cySees.map((m) => m.datetime), boSees.map((m) => m.datetime).concat(cySees[3].datetime));
    // And what came later counts only while folded.
    await cy.page.click('#chat-toggle');
    await ana.page.fill('#chat-input', 'welcome, Cy');
    await ana.page.press('#chat-input', 'Enter');
    await cy.page.waitForSelector('#chat-unread:not([hidden])');
    assert.equal(await cy.page.textContent('#chat-unread'), '1');
    assert.equal(await cy.page.textContent('#chat-unread-sr'), msg('en', 'chat.unreadSr', { n: 1 }));
    await assertClean(ana, bo, cy);
    await close(ana, bo, cy);
  });
});

test('members: generated avatars, renaming, muting someone or everyone for me only, own mute, copy link', { timeout: 60_000 }, async () => {
  await withDiagnostics('members', async () => {
    const room = 'members-room';
    const alba = await open(roomPath(room, 'Alba'), 'alba', {
      contextOptions: { permissions: ['clipboard-read', 'clipboard-write'] },
    });
    await waitJoined(alba.page, 1);
    // Alone: the hint, and its button copies the room's link (without anyone's name).
    await alba.page.waitForSelector('#lonely-hint:not([hidden])');
    await alba.page.click('#lonely-copy');
    await alba.page.waitForSelector('.toast');
    assert.equal(await alba.page.evaluate(() => navigator.clipboard.readText()), `${server.base}/room/${room}`);

    const bruno = await open(roomPath(room, 'Bruno'), 'bruno', { viewport: PHONE });
    await Promise.all([waitJoined(alba.page, 2), waitJoined(bruno.page, 2)]);
    await Promise.all([waitStreams(alba.page, 1), waitStreams(bruno.page, 1)]);
    await alba.page.waitForSelector('#lonely-hint', { state: 'hidden' });
    const ids = {
      alba: await alba.page.evaluate(() => window.f4c.selfId),
      bruno: await bruno.page.evaluate(() => window.f4c.selfId),
    };

    // Avatars come from the name: the same picture for the same name on every page.
    const avatar = (h, id) =>
      h.page.$eval(`#members .member[data-member-id="${id}"] .avatar svg`, (svg) => ({ hue: svg.dataset.hue, markup: svg.outerHTML }));
    const brunoAtAlba = await avatar(alba, ids.bruno);
    const brunoAtBruno = await avatar(bruno, ids.bruno);
    const albaAtAlba = await avatar(alba, ids.alba);
    assert.deepEqual(brunoAtAlba, brunoAtBruno, 'the same avatar for Bruno everywhere');
    assert.notEqual(brunoAtAlba.markup, albaAtAlba.markup, 'different names, different avatars');
    assert.match(brunoAtAlba.markup, /^<svg[^>]*viewBox="0 0 40 40"/);

    // Bruno renames himself by clicking his own name.
    await bruno.page.click('#members .member.self .name');
    assert.equal(await bruno.page.evaluate(() => document.activeElement.id), 'rename-input');
    assert.equal(await bruno.page.inputValue('#rename-input'), 'Bruno');
    await bruno.page.fill('#rename-input', '   ');
    await bruno.page.press('#rename-input', 'Enter');
    assert.equal(await bruno.page.textContent('#rename-error'), msg('en', 'err.nickEmpty'));
    await bruno.page.fill('#rename-input', 'Bruno 🎧');
    await bruno.page.press('#rename-input', 'Enter');
    await alba.page.waitForFunction((id) => window.f4c.members.get(id)?.name === 'Bruno 🎧', ids.bruno, { timeout: 10_000 });
    await bruno.page.waitForFunction(() => window.f4c.name === 'Bruno 🎧', null, { timeout: 10_000 });
    assert.ok(await bruno.page.isHidden('#rename-form'));
    assert.equal(await alba.page.textContent(`#members .member[data-member-id="${ids.bruno}"] .name`), 'Bruno 🎧');
    assert.ok(
      (await alba.page.$$eval('#chat-log .chat-system', (ls) => ls.map((l) => l.textContent))).includes(
        msg('en', 'sys.renamed', { old: 'Bruno', name: 'Bruno 🎧' }),
      ),
    );
    assert.equal(await bruno.page.evaluate(() => localStorage.getItem('free4chat.nickname')), 'Bruno 🎧');
    assert.equal(await bruno.page.evaluate(() => window.f4c.sent.rename), 1, 'one rename sent; the empty one was not');
    assert.notDeepEqual(await avatar(alba, ids.bruno), brunoAtAlba, 'a new name, a new avatar');

    // Alba mutes Bruno for herself only: the server is told to keep him off her audio slots
    // (`local_mutes`), and nobody else is told anything.
    const brunoMute = `#members .member[data-member-id="${ids.bruno}"] .member-mute`;
    assert.equal(await alba.page.getAttribute(brunoMute, 'aria-label'), msg('en', 'member.muteForMe', { name: 'Bruno 🎧' }));
    assert.equal(await alba.page.evaluate(() => window.f4c.audioSlots), 3);
    const hears = (id) => window.f4c.mediaOf(id).length > 0;
    assert.ok(await alba.page.evaluate(hears, ids.bruno), 'Alba hears Bruno on a slot');
    await alba.page.click(brunoMute);
    assert.equal(await alba.page.getAttribute(brunoMute, 'aria-pressed'), 'true');
    assert.ok(await alba.page.isVisible(`#members .member[data-member-id="${ids.bruno}"] .heard-off`));
    assert.equal(await alba.page.evaluate(() => window.f4c.sent.local_mutes), 1);
    await alba.page.waitForFunction((id) => !window.f4c.mediaOf(id).length, ids.bruno, { timeout: 10_000, polling: 100 });
    assert.equal(await alba.page.evaluate(() => window.f4c.sent.mute ?? 0), 0, 'her own microphone state is not touched');
    await bruno.page.waitForTimeout(300);
    assert.equal(await bruno.page.evaluate(() => window.f4c.muted), false);
    assert.equal(await bruno.page.evaluate((id) => window.f4c.members.get(id).muted, ids.bruno), false, 'Bruno is not muted for himself');
    assert.equal(await alba.page.evaluate((id) => window.f4c.members.get(id).muted, ids.bruno), false, 'nor shown as muted');

    // "Mute all for me", on and off: every slot is silenced here; Bruno stays muted by his own
    // button (still off her slots).
    const allMuted = () => [...document.querySelectorAll('#remote-audio audio')].map((a) => a.muted);
    await alba.page.click('#deafen-btn');
    assert.equal(await alba.page.getAttribute('#deafen-btn', 'aria-pressed'), 'true');
    assert.deepEqual(await alba.page.evaluate(allMuted), [true, true, true]);
    await alba.page.click('#deafen-btn');
    assert.equal(await alba.page.getAttribute('#deafen-btn', 'aria-pressed'), 'false');
    assert.deepEqual(await alba.page.evaluate(allMuted), [false, false, false]);
    assert.equal(await alba.page.evaluate(hears, ids.bruno), false);
    await alba.page.click(brunoMute);
    assert.equal(await alba.page.evaluate(() => window.f4c.sent.local_mutes), 2, 'the emptied list is sent too');
    await alba.page.waitForFunction(hears, ids.bruno, { timeout: 10_000, polling: 100 });
    assert.equal(await alba.page.evaluate(() => window.f4c.sent.mute ?? 0), 0);

    // Own mute is for everyone: Alba sees Bruno's microphone off.
    await bruno.page.click('#mute-btn');
    assert.equal(await bruno.page.textContent('#mute-label'), msg('en', 'ctl.unmute'));
    await alba.page.waitForSelector(`#members .member[data-member-id="${ids.bruno}"] .mic-off:not([hidden])`);
    assert.equal(await alba.page.evaluate((id) => window.f4c.members.get(id).muted, ids.bruno), true);
    await bruno.page.click('#mute-btn');
    await alba.page.waitForSelector(`#members .member[data-member-id="${ids.bruno}"] .mic-off`, { state: 'hidden' });
    assert.equal(await bruno.page.evaluate(() => window.f4c.pc.getSenders().find((s) => s.track).track.enabled), true);

    // Bruno leaves: he is gone from Alba's list, and she is alone again.
    await bruno.page.click('#leave-btn');
    await waitJoined(alba.page, 1);
    await alba.page.waitForSelector('#lonely-hint:not([hidden])');
    assert.ok(
      (await alba.page.$$eval('#chat-log .chat-system', (ls) => ls.map((l) => l.textContent))).includes(
        msg('en', 'sys.left', { name: 'Bruno 🎧' }),
      ),
    );
    await assertClean(alba, bruno);
    await close(alba, bruno);
  });
});

test('microphone refused or missing: a plain message, listening still works, and "Try again" brings it', { timeout: 60_000 }, async () => {
  await withDiagnostics('mic', async () => {
    const room = 'mic-room';
    // Mia's browser asks for the microphone and is refused (no permission in this context).
    const mia = await open(roomPath(room, 'Mia'), 'mia', { via: deniedBrowser });
    const noa = await open(roomPath(room, 'Noa'), 'noa');
    await Promise.all([waitJoined(mia.page, 2), waitJoined(noa.page, 2)]);
    const ids = {
      mia: await mia.page.evaluate(() => window.f4c.selfId),
      noa: await noa.page.evaluate(() => window.f4c.selfId),
    };
    await mia.page.waitForSelector('#mic-notice:not([hidden])', { timeout: 10_000 });
    assert.equal(await mia.page.textContent('#mic-error-text'), msg('en', 'mic.denied'));
    assert.equal(await mia.page.evaluate(() => window.f4c.micErrorCode), 'denied');
    assert.equal(await mia.page.textContent('#mic-retry-btn'), msg('en', 'mic.retry'));
    assert.equal(await mia.page.textContent('#mute-label'), msg('en', 'ctl.noMic'));
    assert.ok(await mia.page.isDisabled('#mute-btn'));
    // Listening and chat still work; the others see her microphone as off.
    await waitStreams(mia.page, 1);
    await noa.page.waitForFunction((id) => window.f4c.members.get(id)?.muted === true, ids.mia, { timeout: 10_000 });
    await mia.page.fill('#chat-input', 'I can only type for now');
    await mia.page.press('#chat-input', 'Enter');
    await noa.page.waitForFunction(() => window.f4c.chat.length === 1, null, { timeout: 10_000 });

    // She allows the microphone and tries again: it is sent, and she is unmuted for everyone.
    await mia.context.grantPermissions(['microphone'], { origin: server.base });
    await mia.page.click('#mic-retry-btn');
    await mia.page.waitForSelector('#mic-notice', { state: 'hidden', timeout: 10_000 });
    assert.equal(await mia.page.evaluate(() => window.f4c.micError), null);
    assert.equal(await mia.page.textContent('#mute-label'), msg('en', 'ctl.mute'));
    assert.ok(await mia.page.isEnabled('#mute-btn'));
    await noa.page.waitForFunction((id) => window.f4c.members.get(id)?.muted === false, ids.mia, { timeout: 10_000 });
    await waitStreams(noa.page, 1);
    // Mia's audio packets reach Noa, more and more of them.
    const received = async (id) => {
      const track = window.f4c.mediaOf(id).find((m) => m.kind === 'audio')?.track;
      if (!track) return 0;
      const stats = await window.f4c.pc.getStats(track);
      return [...stats.values()].filter((s) => s.type === 'inbound-rtp').reduce((n, s) => n + (s.packetsReceived ?? 0), 0);
    };
    const receives = (id) => window.f4c.mediaOf(id).some((m) => m.kind === 'audio');
    await noa.page.waitForFunction(receives, ids.mia, { timeout: 10_000 });
    const first = await noa.page.evaluate(received, ids.mia);
    await noa.page.waitForTimeout(1000);
    const later = await noa.page.evaluate(received, ids.mia);
    assert.ok(later > first + 20, `packets from Mia keep arriving (${first} → ${later})`);
    assert.ok(await noa.page.evaluate(receives, ids.mia), 'Noa receives Mia');

    // No microphone at all, in German: the reason in German, with a way to try again.
    const noMic = (name) => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('no device', name));
    };
    const kai = await open(roomPath('mic-room-2', 'Kai'), 'kai', {
      viewport: PHONE,
      contextOptions: { locale: 'de-DE' },
      init: noMic,
      initArg: 'NotFoundError',
    });
    await waitJoined(kai.page, 1);
    await kai.page.waitForSelector('#mic-notice:not([hidden])', { timeout: 10_000 });
    assert.equal(await kai.page.textContent('#mic-error-text'), msg('de', 'mic.notFound'));
    assert.equal(await kai.page.textContent('#mic-retry-btn'), msg('de', 'mic.retry'));
    await kai.page.click('#mic-retry-btn');
    await kai.page.waitForFunction(() => !document.getElementById('mic-retry-btn').disabled, null, { timeout: 5000 });
    assert.equal(await kai.page.evaluate(() => window.f4c.micErrorCode), 'not_found', 'still none; still saying so');
    await assertClean(mia, noa, kai);
    await close(mia, noa, kai);
  });
});

test('installable: a web-app manifest with icons that Chromium accepts', { timeout: 30_000 }, async () => {
  await withDiagnostics('manifest', async () => {
    const html = await (await fetch(`${server.base}/`)).text();
    assert.match(html, /<link rel="manifest" href="\/manifest\.webmanifest">/);
    const res = await fetch(`${server.base}/manifest.webmanifest`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/manifest\+json/);
    const manifest = await res.json();
    assert.equal(manifest.name, 'free4chat');
    assert.equal(manifest.short_name, 'free4chat');
    assert.equal(manifest.start_url, '/');
    assert.equal(manifest.display, 'standalone');
    assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/i);
    assert.match(manifest.background_color, /^#[0-9a-f]{6}$/i);
    const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)];
    for (const [size, type] of [['192x192', 'image/png'], ['512x512', 'image/png'], ['any', 'image/svg+xml']]) {
      const icon = manifest.icons.find((i) => i.sizes === size && i.type === type && (i.purpose ?? 'any').includes('any'));
      assert.ok(icon, `an icon ${size} ${type}`);
      const r = await fetch(new URL(icon.src, server.base));
      assert.equal(r.status, 200, icon.src);
      assert.equal(r.headers.get('content-type'), type, icon.src);
      const body = Buffer.from(await r.arrayBuffer());
      if (type === 'image/png') {
        assert.equal(body.subarray(1, 4).toString(), 'PNG');
        assert.deepEqual(pngSize(body), size.split('x').map(Number), `${icon.src}: its real size`);
      } else {
        assert.match(body.toString(), /^<svg[^>]*viewBox/);
      }
    }

    // Chromium's own reading of it: no manifest errors, and nothing against installing apart
    // from the private profile these tests run in.
    const h = await open('/', 'manifest');
    const cdp = await h.context.newCDPSession(h.page);
    const { errors, url } = await cdp.send('Page.getAppManifest');
    assert.equal(url, `${server.base}/manifest.webmanifest`);
    assert.deepEqual(errors, []);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), []);
    await cdp.detach();
    assert.equal(await h.page.getAttribute('link[rel="apple-touch-icon"]', 'href'), '/icon-192.png');
    assert.equal((await h.page.$$('meta[name="theme-color"]')).length, 2, 'a theme colour for light and for dark');
    await close(h);
  });
});

test('in-app browsers get a warning; the README gets pictures of the home page', { timeout: 30_000 }, async () => {
  await withDiagnostics('home-screens', async () => {
    const inApp = await open('/', 'in-app', {
      viewport: PHONE,
      contextOptions: {
        userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Mobile Safari/537.36 MicroMessenger/8.0.49',
      },
    });
    await inApp.page.waitForSelector('#inapp-warning:not([hidden])');
    assert.equal((await inApp.page.textContent('#inapp-warning')).trim(), msg('en', 'tip.inApp'));
    assert.ok((await inApp.page.evaluate(() => document.documentElement.scrollWidth)) <= PHONE.width);
    await close(inApp);
    const plain = await open('/', 'not-in-app');
    assert.ok(await plain.page.isHidden('#inapp-warning'));
    await close(plain);

    // The home page as someone who has been here before sees it.
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const seed = () => {
      if (localStorage.getItem('free4chat.recent')) return;
      localStorage.setItem('free4chat.nickname', 'Alice');
      localStorage.setItem(
        'free4chat.recent',
        JSON.stringify([
          { room: 'practice', name: 'Alice', at: Date.now() - 5 * 60_000 },
          { room: 'english-club', name: 'Alice', at: Date.now() - 26 * 3_600_000 },
        ]),
      );
    };
    for (const [file, viewport] of [['home-desktop.png', DESKTOP], ['home-phone.png', PHONE]]) {
      const h = await open('/', file, { viewport, init: seed, contextOptions: { colorScheme: 'light' } });
      await h.page.waitForSelector('#recent:not([hidden])');
      await h.page.fill('#home-room', 'practice');
      await h.page.evaluate(() => document.activeElement.blur());
      await h.page.screenshot({ path: path.join(SCREENSHOT_DIR, file), fullPage: viewport === PHONE });
      assert.deepEqual(h.pageErrors, []);
      await close(h);
    }
  });
});
