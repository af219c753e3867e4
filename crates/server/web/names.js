// @ts-check
// Friendly random names for the dice buttons: rooms like "sunny-teal-42", nicknames like
// "Curious Otter". Room names use only the characters the server accepts.

const ADJECTIVES = [
  'brave', 'bright', 'calm', 'clever', 'cosy', 'curious', 'daring', 'eager', 'friendly', 'gentle',
  'happy', 'jolly', 'kind', 'lively', 'lucky', 'merry', 'mellow', 'nimble', 'polite', 'proud',
  'quick', 'quiet', 'shiny', 'silly', 'sunny', 'swift', 'tidy', 'witty', 'cheerful', 'breezy',
];

const COLOURS = [
  'amber', 'azure', 'coral', 'crimson', 'cyan', 'emerald', 'golden', 'indigo', 'ivory', 'jade',
  'lilac', 'lime', 'mint', 'navy', 'olive', 'peach', 'plum', 'ruby', 'rose', 'sage', 'scarlet',
  'silver', 'teal', 'violet',
];

const ANIMALS = [
  'Otter', 'Panda', 'Falcon', 'Koala', 'Dolphin', 'Fox', 'Heron', 'Lynx', 'Owl', 'Penguin',
  'Rabbit', 'Robin', 'Seal', 'Sparrow', 'Tiger', 'Turtle', 'Whale', 'Wombat', 'Yak', 'Zebra',
  'Badger', 'Beaver', 'Crane', 'Gecko', 'Hedgehog', 'Ibis', 'Lemur', 'Marmot', 'Moose', 'Puffin',
];

/** @param {string[]} list @param {() => number} random */
function pick(list, random) {
  return list[Math.floor(random() * list.length) % list.length];
}

const capital = (/** @type {string} */ w) => w.charAt(0).toUpperCase() + w.slice(1);

/** A random room name: adjective-colour-number, always a valid room name. */
export function randomRoomName(random = Math.random) {
  const n = 10 + Math.floor(random() * 90);
  return `${pick(ADJECTIVES, random)}-${pick(COLOURS, random)}-${n}`;
}

/** A random nickname: "Adjective Animal", at most 32 characters. */
export function randomNickname(random = Math.random) {
  return `${capital(pick(ADJECTIVES, random))} ${pick(ANIMALS, random)}`;
}
