// @ts-check
// Avatars generated from a member: a disc in a colour taken from a hash of their nickname and
// who they are (their tag, which stays when they come back, else their member id), with a
// left-right symmetric 5×5 pattern of rounded tiles, also taken from the hash. The same member
// under the same name gives the same picture in every browser; someone else who takes the same
// name (after the first left, in the chat's history) gets another.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * FNV-1a over the member id and the name's code points, then a final avalanche so nearby
 * names differ.
 * @param {string} name
 * @param {string} who the member's tag, else their id
 */
export function hashName(name, who) {
  let h = 0x811c9dc5;
  for (const ch of `${who}\u0000${String(name).normalize('NFC')}`) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The hue (0–359) that stands for a member under a name, in avatars and chat.
 * @param {string} name
 * @param {string} who the member's tag, else their id
 */
export function nameHue(name, who) {
  return hashName(name, who) % 360;
}

/** Which tiles of the 5×5 grid are on: 15 bits for the left three columns, mirrored. */
/** @param {number} hash @returns {[number, number][]} */
function tiles(hash) {
  // A second hash so the pattern does not move in step with the colour.
  const bits = Math.imul(hash ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
  const on = [];
  let count = 0;
  for (let col = 0; col < 3; col++) {
    for (let row = 0; row < 5; row++) {
      const bit = (bits >>> (col * 5 + row)) & 1;
      on.push({ col, row, bit });
      count += bit;
    }
  }
  // Never an empty or a full face.
  if (count === 0) on[7].bit = 1;
  if (count === 15) on[7].bit = 0;
  return on.filter((t) => t.bit).flatMap((t) =>
    t.col === 2 ? [[2, t.row]] : [[t.col, t.row], [4 - t.col, t.row]],
  );
}

/**
 * A new avatar <svg> for member `who` named `name`, decorative (the name is always written
 * next to it).
 * @param {string} name
 * @param {string} who the member's tag, else their id
 */
export function avatarSvg(name, who) {
  const hash = hashName(name, who);
  const hue = hash % 360;
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 40 40');
  svg.setAttribute('class', 'avatar-svg');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.dataset.hue = String(hue);

  const disc = document.createElementNS(SVG_NS, 'circle');
  disc.setAttribute('cx', '20');
  disc.setAttribute('cy', '20');
  disc.setAttribute('r', '20');
  // OKLCH, as the name beside it (style.css): the same hue looks the same in both.
  disc.setAttribute('fill', `oklch(60% 0.14 ${hue})`);
  svg.appendChild(disc);

  // The pattern sits in the middle 24×24 square, which the disc fully contains.
  const cell = 24 / 5;
  const light = `oklch(94% 0.04 ${(hue + 40) % 360})`;
  for (const [col, row] of tiles(hash)) {
    const r = document.createElementNS(SVG_NS, 'rect');
    r.setAttribute('x', (8 + col * cell + 0.35).toFixed(2));
    r.setAttribute('y', (8 + row * cell + 0.35).toFixed(2));
    r.setAttribute('width', (cell - 0.7).toFixed(2));
    r.setAttribute('height', (cell - 0.7).toFixed(2));
    r.setAttribute('rx', '1.2');
    r.setAttribute('fill', light);
    svg.appendChild(r);
  }
  return svg;
}

/**
 * A short fingerprint of the avatar of member `who` named `name` (used by tests).
 * @param {string} name
 * @param {string} who
 */
export function avatarKey(name, who) {
  return hashName(name, who).toString(16).padStart(8, '0');
}
