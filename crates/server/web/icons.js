// @ts-check
// The page's icons, drawn here as simple stroked shapes on a 24×24 grid, so that nothing is
// loaded from anywhere else. `icon(name)` returns a fresh, decorative <svg> element.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * name → list of [tag, attributes]. Stroked with the current text colour unless `fill` is set.
 * @type {Record<string, [string, Record<string, string>][]>}
 */
const SHAPES = {
  hand: [
    ['path', { d: 'M8 13V6.5a1.5 1.5 0 0 1 3 0V12M11 11V4.5a1.5 1.5 0 0 1 3 0V12M14 11.5V6a1.5 1.5 0 0 1 3 0v7.5a6 6 0 0 1-6 6h-1a5 5 0 0 1-4-2l-2.8-3.6a1.5 1.5 0 0 1 2.3-1.9L8 13' }],
  ],
  mic: [
    ['rect', { x: '9', y: '3', width: '6', height: '11', rx: '3' }],
    ['path', { d: 'M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21M8.5 21h7' }],
  ],
  micOff: [
    ['rect', { x: '9', y: '3', width: '6', height: '11', rx: '3' }],
    ['path', { d: 'M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21M8.5 21h7' }],
    ['path', { d: 'M4 4l16 16' }],
  ],
  speaker: [
    ['path', { d: 'M4 9.5h3.5L12 5.5v13l-4.5-4H4z' }],
    ['path', { d: 'M15.5 9a4 4 0 0 1 0 6M18 6.5a7.5 7.5 0 0 1 0 11' }],
  ],
  speakerOff: [
    ['path', { d: 'M4 9.5h3.5L12 5.5v13l-4.5-4H4z' }],
    ['path', { d: 'M15.5 9.5l5 5M20.5 9.5l-5 5' }],
  ],
  dice: [
    ['rect', { x: '4', y: '4', width: '16', height: '16', rx: '3.5' }],
    ['circle', { cx: '8.5', cy: '8.5', r: '1.3', fill: 'currentColor', stroke: 'none' }],
    ['circle', { cx: '15.5', cy: '8.5', r: '1.3', fill: 'currentColor', stroke: 'none' }],
    ['circle', { cx: '12', cy: '12', r: '1.3', fill: 'currentColor', stroke: 'none' }],
    ['circle', { cx: '8.5', cy: '15.5', r: '1.3', fill: 'currentColor', stroke: 'none' }],
    ['circle', { cx: '15.5', cy: '15.5', r: '1.3', fill: 'currentColor', stroke: 'none' }],
  ],
  pencil: [
    ['path', { d: 'M4 20l1-4.5L15.5 5a2.1 2.1 0 0 1 3 3L8 18.5z' }],
    ['path', { d: 'M13.5 7l3 3' }],
  ],
  link: [
    ['path', { d: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1' }],
    ['path', { d: 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1' }],
  ],
  sliders: [
    ['path', { d: 'M4 7h9M17 7h3M4 17h3M11 17h9' }],
    ['circle', { cx: '15', cy: '7', r: '2' }],
    ['circle', { cx: '9', cy: '17', r: '2' }],
  ],
  leave: [
    ['path', { d: 'M10 4H6a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h4' }],
    ['path', { d: 'M14 8l4 4-4 4M18 12H9' }],
  ],
  chat: [
    ['path', { d: 'M4 6.5A2.5 2.5 0 0 1 6.5 4h11A2.5 2.5 0 0 1 20 6.5v7a2.5 2.5 0 0 1-2.5 2.5H10l-4.5 4v-4H6.5A2.5 2.5 0 0 1 4 13.5z' }],
  ],
  send: [
    ['path', { d: 'M4 12l16-8-6 16-2.5-6.5z' }],
    ['path', { d: 'M11.5 13.5L20 4' }],
  ],
  globe: [
    ['circle', { cx: '12', cy: '12', r: '8.5' }],
    ['path', { d: 'M3.5 12h17M12 3.5c2.5 2.6 3.5 5.4 3.5 8.5s-1 5.9-3.5 8.5c-2.5-2.6-3.5-5.4-3.5-8.5s1-5.9 3.5-8.5z' }],
  ],
  close: [['path', { d: 'M6 6l12 12M18 6L6 18' }]],
  headphones: [
    ['path', { d: 'M4 15v-3a8 8 0 0 1 16 0v3' }],
    ['rect', { x: '3.5', y: '14', width: '4.5', height: '6.5', rx: '1.5' }],
    ['rect', { x: '16', y: '14', width: '4.5', height: '6.5', rx: '1.5' }],
  ],
  warning: [
    ['path', { d: 'M12 4l9 16H3z' }],
    ['path', { d: 'M12 10v4.5M12 17.2v.3' }],
  ],
  refresh: [
    ['path', { d: 'M19 12a7 7 0 1 1-2.05-4.95' }],
    ['path', { d: 'M19 4.5V8h-3.5' }],
  ],
  chevron: [['path', { d: 'M7 10l5 5 5-5' }]],
  people: [
    ['circle', { cx: '9', cy: '9', r: '3.2' }],
    ['path', { d: 'M3.5 19a5.5 5.5 0 0 1 11 0' }],
    ['circle', { cx: '16.5', cy: '8.5', r: '2.6' }],
    ['path', { d: 'M15.5 13.6a4.6 4.6 0 0 1 5.5 4.4' }],
  ],
  camera: [
    ['rect', { x: '3', y: '6.5', width: '12.5', height: '11', rx: '2.5' }],
    ['path', { d: 'M15.5 10.5l5-3v9l-5-3' }],
  ],
  screen: [
    ['rect', { x: '3', y: '4.5', width: '18', height: '12', rx: '2' }],
    ['path', { d: 'M9 20h6M12 16.5V20' }],
  ],
  pin: [
    ['path', { d: 'M9 4h6M10 4v5.5L7 13h10l-3-3.5V4M12 13v7' }],
  ],
  fullscreen: [
    ['path', { d: 'M4 9V4h5M15 4h5v5M20 15v5h-5M9 20H4v-5' }],
  ],
};

export const ICON_NAMES = Object.keys(SHAPES);

/**
 * A decorative icon: hidden from assistive technology, sized by CSS (1.15em by default).
 * @param {string} name
 */
export function icon(name) {
  const shapes = SHAPES[name];
  if (!shapes) throw new Error(`no icon "${name}"`);
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.9');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  for (const [tag, attrs] of shapes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    svg.appendChild(node);
  }
  return svg;
}

/** Fills every `<span data-icon="name">` placeholder under `root` with its icon (once). */
/** @param {ParentNode} root */
export function hydrateIcons(root = document) {
  for (const slot of root.querySelectorAll('[data-icon]')) {
    if (slot.firstElementChild || !(slot instanceof HTMLElement)) continue;
    slot.appendChild(icon(slot.dataset.icon ?? ''));
  }
}
