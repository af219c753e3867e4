// @ts-check
// Friendly random room names for the dice button, like "sunny-teal-42": only the characters
// the server accepts. Nicknames are in nicknames.js, in the language shown.

export const ADJECTIVES = [
  'brave', 'bright', 'calm', 'clever', 'cosy', 'curious', 'daring', 'eager', 'friendly', 'gentle',
  'happy', 'jolly', 'kind', 'lively', 'lucky', 'merry', 'mellow', 'nimble', 'polite', 'proud',
  'quick', 'quiet', 'shiny', 'silly', 'sunny', 'swift', 'tidy', 'witty', 'cheerful', 'breezy',
];

const COLOURS = [
  'amber', 'azure', 'coral', 'crimson', 'cyan', 'emerald', 'golden', 'indigo', 'ivory', 'jade',
  'lilac', 'lime', 'mint', 'navy', 'olive', 'peach', 'plum', 'ruby', 'rose', 'sage', 'scarlet',
  'silver', 'teal', 'violet',
];

/** @param {string[]} list @param {() => number} random */
function pick(list, random) {
  return list[Math.floor(random() * list.length) % list.length];
}

/** A random room name: adjective-colour-number, always a valid room name. */
export function randomRoomName(random = Math.random) {
  const n = 10 + Math.floor(random() * 90);
  return `${pick(ADJECTIVES, random)}-${pick(COLOURS, random)}-${n}`;
}
