// @ts-check
// Times and days in the chat, in the language shown: a message's time as the locale writes it
// (no leading zero where the locale has none: "9:05 AM", "9:05"), and a line where the day
// changes, "Today", "Yesterday" (Intl's own words), else the date.

import { getLanguage } from './i18n.js';

/**
 * Formats with the language shown, or the browser's own if Intl does not know it.
 * @param {Date} d
 * @param {Intl.DateTimeFormatOptions} opts
 */
function format(d, opts) {
  try {
    return new Intl.DateTimeFormat(getLanguage(), opts).format(d);
  } catch {
    return new Intl.DateTimeFormat(undefined, opts).format(d);
  }
}

/**
 * A message's time of day.
 * @param {Date} d
 */
export function formatTime(d) {
  return format(d, { hour: 'numeric', minute: '2-digit' });
}

/** The local day of `d`, as a key. @param {Date} d */
export function dayKey(d) {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** Whole local days from `d` to now (0: today, 1: yesterday). @param {Date} d */
function daysAgo(d, now = new Date()) {
  const a = Date.UTC(d.getFullYear(), d.getMonth(), d.getDate());
  const b = Date.UTC(now.getFullYear(), now.getMonth(), now.getDate());
  return Math.round((b - a) / 86_400_000);
}

/**
 * The words for the day of `d`: "Today", "Yesterday", else its date (with the year if another).
 * @param {Date} d
 */
export function formatDay(d) {
  const ago = daysAgo(d);
  const lang = getLanguage();
  if (ago === 0 || ago === 1) {
    let words = '';
    try {
      words = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' }).format(-ago, 'day');
    } catch {
      words = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }).format(-ago, 'day');
    }
    // Intl writes them as within a sentence ("today"); a line of their own starts with a capital.
    return words.charAt(0).toLocaleUpperCase(lang) + words.slice(1);
  }
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return format(d, sameYear ? { weekday: 'long', month: 'long', day: 'numeric' } : { year: 'numeric', month: 'long', day: 'numeric' });
}
