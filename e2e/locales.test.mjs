// The app in Chinese and Japanese on a 360 px phone, and random nicknames in the language shown.
//
// Run from the repository root: node --test e2e/locales.test.mjs

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { OUT_DIR, PHONE, SCREENSHOT_DIR, ensureOutDir, freePort, launchBrowser, openPage, startServer, waitJoined, withDiagnostics as diagnose } from './helpers.mjs';

let server;
let browser;
const pages = [];

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server }), body);
}

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'locales-server.log') });
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

/**
 * In the page: every visible button label that wraps, with the places it breaks at (the text on
 * either side), and whether each break is between words (at a space or a zero-width space).
 */
function labelBreaks() {
  const out = [];
  for (const label of document.querySelectorAll('button')) {
    if (!(label instanceof HTMLElement) || label.offsetParent === null) continue;
    const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
    const chars = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.data.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getBoundingClientRect();
        chars.push({ ch: node.data[i], top: rect.top, width: rect.width });
      }
    }
    const shown = chars.filter((c) => c.width > 0);
    for (let i = 1; i < shown.length; i++) {
      if (shown[i].top <= shown[i - 1].top + 2) continue;
      const at = chars.indexOf(shown[i]);
      const before = chars[at - 1]?.ch;
      out.push({
        label: chars.map((c) => c.ch).join('').replace(/\u200B/g, '|'),
        at: `${chars.slice(0, at).map((c) => c.ch).join('')}/${chars.slice(at).map((c) => c.ch).join('')}`.replace(/\u200B/g, ''),
        between: before === '\u200B' || before === ' ',
      });
    }
  }
  return out;
}

test('Chinese and Japanese button labels on a 360 px phone break between words only', { timeout: 90_000 }, async () => {
  await withDiagnostics('cjk-labels', async () => {
    const wrong = [];
    let wraps = 0;
    for (const lang of ['zh-CN', 'zh-TW', 'ja']) {
      const h = await openPage(browser, `${server.base}/room/cjk-${lang.toLowerCase()}?name=Ann`, lang, { contextOptions: { viewport: PHONE } });
      pages.push(h);
      await waitJoined(h.page, 1);
      await h.page.selectOption('#lang-select', lang);
      const breaks = await h.page.evaluate(labelBreaks);
      wraps += breaks.length;
      wrong.push(...breaks.filter((b) => !b.between).map((b) => ({ lang, ...b })));
      await h.page.locator('#control-bar').screenshot({ path: path.join(SCREENSHOT_DIR, `controls-${lang}-phone.png`) });
    }
    assert.ok(wraps > 0, 'some labels wrap at 360 px, so this test looks at something');
    assert.deepEqual(wrong, []);
  });
});

test('the dice suggests a nickname in the language shown', { timeout: 60_000 }, async () => {
  await withDiagnostics('nicknames', async () => {
    const h = await openPage(browser, `${server.base}/`, 'home');
    pages.push(h);
    const shapes = {
      en: /^[A-Z][a-z]+ [A-Z][a-z]+$/,
      'zh-CN': /^\p{Script=Han}+$/u,
      'zh-TW': /^\p{Script=Han}+$/u,
      ja: /^[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}ー]+$/u,
      es: /^\p{Lu}\p{Ll}+ (Feliz|Veloz|Amable|Alegre|Valiente|Audaz|Genial|Tenaz|Leal|Sutil)$/u,
      de: /^\p{Lu}\p{Ll}+(er|e|es) \p{Lu}\p{Ll}+$/u,
    };
    for (const [lang, shape] of Object.entries(shapes)) {
      await h.page.selectOption('#lang-select', lang);
      for (let i = 0; i < 5; i++) {
        await h.page.locator('#home-name-dice').click();
        const name = await h.page.locator('#home-name').inputValue();
        assert.match(name, shape, `${lang}: ${name}`);
        assert.ok([...name].length <= 32);
      }
    }
  });
});
