// @ts-check
// The audio processing switches in Devices: noise suppression and echo cancellation, on unless
// the person switches them off, remembered, and applied to the live microphone at once. An
// address with `?audio=raw` turns every processing off, whatever is chosen: the switches then
// show that and cannot be changed.

import * as mic from './mic.js';
import * as prefs from './prefs.js';
import * as ui from './ui.js';

/** @type {[string, 'noiseSuppression' | 'echoCancellation'][]} */
const SWITCHES = [
  ['noise-switch', 'noiseSuppression'],
  ['echo-switch', 'echoCancellation'],
];

/** Shows the switches as they are chosen. */
export function refresh() {
  const raw = mic.isRaw();
  for (const [id, what] of SWITCHES) {
    const box = ui.$as(id, HTMLInputElement);
    box.checked = !raw && prefs.processing[what]();
    box.disabled = raw;
  }
  ui.$('raw-hint').hidden = !raw;
}

let mounted = false;

/** Wires the switches (once). */
export function mount() {
  if (mounted) return;
  mounted = true;
  for (const [id, what] of SWITCHES) {
    const box = ui.$as(id, HTMLInputElement);
    box.addEventListener('change', async () => {
      prefs.processing.set(what, box.checked);
      box.disabled = true;
      await mic.applyProcessing();
      refresh();
    });
  }
  refresh();
}
