// @ts-check
// Translations and the machinery to show them. Every visible string of the page lives in
// MESSAGES (from /messages.js), once per language, as plain objects; this module picks a language,
// fills in {placeholders} and applies the strings to the page.
//
// An element shows a translated string through data attributes, so that switching the language
// can redo every one of them:
//   data-i18n="key"              → textContent
//   data-i18n-aria-label="key"   → aria-label
//   data-i18n-title="key"        → title
//   data-i18n-placeholder="key"  → placeholder
//   data-i18n-args='{"name":…}'  → the values for the placeholders (JSON), shared by all four
//
// This module touches no browser object when it is imported, so tests can import it in Node.

import { MESSAGES } from './messages.js';

export { MESSAGES };

/** The languages on offer, each named in itself. */
export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'zh-CN', name: '简体中文' },
  { code: 'zh-TW', name: '繁體中文' },
  { code: 'ja', name: '日本語' },
  { code: 'es', name: 'Español' },
  { code: 'de', name: 'Deutsch' },
];

export const DEFAULT_LANGUAGE = 'en';
const CODES = new Set(LANGUAGES.map((l) => l.code));

/** A message: a string, or plural forms ({one, other, …}) chosen by the value {n}. */
/** @typedef {string | Record<string, string>} Message */
/** @typedef {Record<string, string | number>} Args */

let current = DEFAULT_LANGUAGE;
/** @type {Set<(code: string) => void>} */
const listeners = new Set();

/**
 * The best of our languages for a list of BCP 47 tags in order of preference
 * (navigator.languages), or the default.
 * @param {readonly string[]} preferred
 */
export function pickLanguage(preferred = []) {
  for (const raw of preferred) {
    const tag = String(raw || '').trim();
    if (!tag) continue;
    const lower = tag.toLowerCase();
    const exact = LANGUAGES.find((l) => l.code.toLowerCase() === lower);
    if (exact) return exact.code;
    const parts = lower.split(/[-_]/);
    if (parts[0] === 'zh') {
      // Traditional script for Taiwan, Hong Kong, Macao and explicit Hant; Simplified otherwise.
      if (parts.includes('hant') || parts.includes('tw') || parts.includes('hk') || parts.includes('mo')) {
        return 'zh-TW';
      }
      return 'zh-CN';
    }
    const base = LANGUAGES.find((l) => l.code === parts[0]);
    if (base) return base.code;
  }
  return DEFAULT_LANGUAGE;
}

/** @param {string} code */
export function isLanguage(code) {
  return CODES.has(code);
}

export function getLanguage() {
  return current;
}

/**
 * Switches the language (unknown codes are ignored) and tells every listener.
 * @param {string} code
 */
export function setLanguage(code) {
  if (!CODES.has(code) || code === current) return false;
  current = code;
  for (const fn of listeners) fn(code);
  return true;
}

/**
 * Calls `fn(code)` after every language switch.
 * @param {(code: string) => void} fn
 */
export function onLanguageChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * @param {string} lang
 * @param {string} key
 * @returns {Message | undefined}
 */
function lookup(lang, key) {
  const table = /** @type {Record<string, Record<string, Message>>} */ (MESSAGES)[lang];
  return table && Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/** @param {string} template @param {Args} args */
function fill(template, args) {
  return template.replace(/\{(\w+)\}/g, (whole, /** @type {string} */ name) =>
    Object.prototype.hasOwnProperty.call(args, name) ? String(args[name]) : whole,
  );
}

/**
 * The string for `key` in the current language (or English, or the key itself), with
 * {placeholders} filled from `args`. A value may be a plural table ({one, other, …}), chosen by
 * `args.n` with the language's plural rules.
 * @param {string} key
 * @param {Args} [args]
 */
export function t(key, args = {}, lang = current) {
  let value = lookup(lang, key);
  if (value === undefined) value = lookup(DEFAULT_LANGUAGE, key);
  if (value === undefined) return key;
  if (typeof value === 'object') {
    let form = 'other';
    try {
      form = new Intl.PluralRules(lang).select(Number(args.n));
    } catch {
      // Keep "other".
    }
    value = value[form] ?? value.other;
  }
  return fill(String(value), args);
}

const ATTRS = [
  ['i18nAriaLabel', 'aria-label'],
  ['i18nTitle', 'title'],
  ['i18nPlaceholder', 'placeholder'],
];

/** @param {HTMLElement} el @returns {Args} */
function argsOf(el) {
  const raw = el.dataset.i18nArgs;
  if (!raw) return {};
  try {
    return JSON.parse(raw) ?? {};
  } catch {
    return {};
  }
}

/**
 * Applies the current language to one element's data-i18n* attributes.
 * @param {HTMLElement} el
 */
export function translateElement(el) {
  const args = argsOf(el);
  if (el.dataset.i18n) el.textContent = t(el.dataset.i18n, args);
  for (const [prop, attr] of ATTRS) {
    if (el.dataset[prop]) el.setAttribute(attr, t(el.dataset[prop], args));
  }
}

/**
 * Applies the current language to `root` and everything in it.
 * @param {Document | HTMLElement} root
 */
export function translate(root = document) {
  const sel = '[data-i18n],[data-i18n-aria-label],[data-i18n-title],[data-i18n-placeholder]';
  if (root instanceof HTMLElement && root.matches(sel)) translateElement(root);
  for (const el of root.querySelectorAll(sel)) if (el instanceof HTMLElement) translateElement(el);
}

/** @param {HTMLElement} el @param {Args | undefined} args */
function setArgs(el, args) {
  if (args && Object.keys(args).length > 0) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
}

/**
 * Shows `key` (with `args`) as the element's text, now and after every language switch.
 * @template {HTMLElement} E
 * @param {E} el
 * @param {string} key
 * @param {Args} [args]
 * @returns {E}
 */
export function setText(el, key, args) {
  el.dataset.i18n = key;
  setArgs(el, args);
  translateElement(el);
  return el;
}

/**
 * Like setText, for an attribute: 'aria-label', 'title' or 'placeholder'.
 * @template {HTMLElement} E
 * @param {E} el
 * @param {'aria-label' | 'title' | 'placeholder'} attr
 * @param {string} key
 * @param {Args} [args]
 * @returns {E}
 */
export function setAttr(el, attr, key, args) {
  const prop = ATTRS.find(([, a]) => a === attr);
  if (!prop) throw new Error(`attribute ${attr} is not translated`);
  el.dataset[prop[0]] = key;
  if (args !== undefined) setArgs(el, args);
  translateElement(el);
  return el;
}

/**
 * Stops translating an element's text (before it shows something else, e.g. a name).
 * @param {HTMLElement} el
 */
export function clearText(el) {
  delete el.dataset.i18n;
}
