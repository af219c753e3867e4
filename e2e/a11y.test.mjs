// Accessibility checked by axe-core (a devDependency of these tests, read from node_modules and
// run in the page, never shipped): the home page, the page that asks for a nickname (with its
// microphone check), and a room with members and chat (a reply, a reaction, the invite panel
// and Devices open), in the light and dark colour schemes, on a desktop and a 360 px phone.
// No violation of serious or critical impact may be left.
//
// Run from the repository root: node --test e2e/a11y.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { DESKTOP, OUT_DIR, PHONE, ensureOutDir, freePort, launchBrowser, openPage, startServer, waitJoined, withDiagnostics as diagnose } from './helpers.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const JOIN_TIMEOUT_MS = 30_000;

let server;
let browser;
const pages = [];

async function withDiagnostics(name, body) {
  await diagnose(name, () => ({ pages, server }), body);
}

before(async () => {
  ensureOutDir();
  server = await startServer({ port: await freePort(), logFile: path.join(OUT_DIR, 'a11y-server.log') });
  browser = await launchBrowser(null);
}, { timeout: 60_000 });

after(async () => {
  await Promise.allSettled(pages.map((h) => h.context.close()));
  if (browser) await browser.close();
  if (server) await server.stop();
}, { timeout: 20_000 });

/**
 * Runs axe in the page (evaluated through the browser's debugging protocol, so the page's
 * Content-Security-Policy, which allows only its own scripts, does not stop it) and returns the
 * serious and critical violations, each with its rule, impact and the elements it found.
 */
async function seriousViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

const SCHEMES = ['light', 'dark'];
const VIEWPORTS = [
  ['desktop', DESKTOP],
  ['phone', PHONE],
];

/** Checks `page` in every scheme and size; returns the failures, labelled. */
async function checkEverywhere(page, label) {
  const failures = [];
  for (const scheme of SCHEMES) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [size, viewport] of VIEWPORTS) {
      await page.setViewportSize(viewport);
      const found = await seriousViolations(page);
      if (found.length > 0) failures.push({ where: `${label}, ${scheme}, ${size}`, found });
    }
  }
  return failures;
}

test('axe finds no serious or critical violation on the home page, the nickname page and a room with chat', { timeout: 150_000 }, async () => {
  await withDiagnostics('a11y', async () => {
    const failures = [];
    const home = await openPage(browser, `${server.base}/`, 'home');
    pages.push(home);
    await home.page.waitForSelector('#home:not([hidden])');
    failures.push(...(await checkEverywhere(home.page, 'home')));

    const room = `a11y-${randomBytes(4).toString('hex')}`;
    const ask = await openPage(browser, `${server.base}/room/${room}`, 'ask');
    pages.push(ask);
    await ask.page.waitForSelector('#ask-name:not([hidden])');
    // Where the browser already allows the microphone, the check opens by itself (and the
    // button goes): a click that finds no button is no failure.
    await ask.page.getByRole('button', { name: 'Test microphone' }).click({ timeout: 2000 }).catch(() => {});
    await ask.page.waitForSelector('#check-panel:not([hidden])');
    failures.push(...(await checkEverywhere(ask.page, 'ask-name')));

    const ann = await openPage(browser, `${server.base}/room/${room}?name=Ann`, 'Ann');
    const ben = await openPage(browser, `${server.base}/room/${room}?name=Ben`, 'Ben');
    pages.push(ann, ben);
    await Promise.all([ann, ben].map((h) => waitJoined(h.page, 2, JOIN_TIMEOUT_MS)));
    await ben.page.locator('#chat-input').fill('Hello, is this the practice room?');
    await ben.page.locator('#chat-input').press('Enter');
    const question = ann.page.locator('#chat-log li.chat-msg', { hasText: 'practice room' });
    await question.waitFor();
    await question.hover();
    await question.getByRole('button', { name: 'React' }).click();
    await question.getByRole('button', { name: 'React with 👍' }).click();
    await question.getByRole('button', { name: 'Reply to Ben' }).click();
    await ann.page.locator('#chat-input').fill('Yes, welcome!');
    await ann.page.locator('#chat-input').press('Enter');
    await ann.page.locator('#chat-log .chat-quote').waitFor();
    await ann.page.getByRole('button', { name: 'Invite' }).click();
    await ann.page.locator('#devices-btn').click();
    await ann.page.locator('#chat-log li.chat-msg').last().hover();
    failures.push(...(await checkEverywhere(ann.page, 'room')));

    assert.deepEqual(failures, [], JSON.stringify(failures, null, 2));
  });
});
