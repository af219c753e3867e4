// @ts-check
// Video in the room: our camera and screen share, everyone's tiles, and what we ask the server
// to send us.
//
// Publishing: the camera goes out on a send-only transceiver of its own in three simulcast
// layers (rids `q`, `h`, `f`: a quarter, half and all of its size, low to high, as the server
// expects), the screen share on another in one layer. Each is negotiated the first time it is
// turned on; turning it off sends no picture (`replaceTrack(null)`) and turning it on again
// gives the same transceiver a fresh track, so neither renegotiates anyone. The server is told
// with `video` what sends now, and tells the others, who show a tile only for what sends.
//
// Tiles (tiles.js decides which): a grid above the member list; a pinned tile, or else a
// screen share, is shown big; the tile of someone speaking is ringed. Each tile has a pin and a
// full-screen button.
//
// Sizes: every tile's size in device pixels goes to the server (`video_view`) whenever it
// changes, so that each track comes in the layer that fits its tile; a hidden page shows
// nothing, so it asks for nothing.

import * as i18n from './i18n.js';
import { icon } from './icons.js';
import { renderingFromStore, speakingNow, store } from './state.js';
import { bigTile, tilesOf, videoView } from './tiles.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./tiles.js').Tile} Tile */
/** @typedef {import('./peer.js').PeerSession} PeerSession */
/** @typedef {import('./signal.js').ClientMsg} ClientMsg */

/**
 * The camera's simulcast layers, low to high. Chromium drops the layers a small picture
 * cannot fill, so the camera is asked for 720p.
 * @type {RTCRtpEncodingParameters[]}
 */
const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000, maxFramerate: 15 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** What the camera is asked for. */
const CAMERA_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

/** How long tile sizes settle before the server is told (a window being dragged wider). */
const VIEW_SETTLE_MS = 250;

/** Device pixels per CSS pixel counted at most: sharper than that is not worth the bits. */
const MAX_PIXEL_RATIO = 2;

/** @type {PeerSession | null} */
let peer = null;
/** @type {(msg: ClientMsg) => unknown} */
let sendMsg = () => false;
/** Start with the camera on, once we are in (the address's `video=1`). */
let cameraAtStart = false;
/**
 * The sound of our screen share, when the browser offered it (a tab's, or the system's where
 * the platform can): nothing on screen shows it, so it is kept here rather than in the state.
 * @type {MediaStreamTrack | null}
 */
let screenAudio = null;

/** @param {{camera?: boolean}} options */
export function configure({ camera = false }) {
  cameraAtStart = camera;
}

/**
 * A new peer connection (first, or after a reconnection): what we send goes out on it, and the
 * server (which forgot us with the old connection) is told what sends. `send` sends on the
 * connection's signalling.
 * @param {PeerSession} session
 * @param {(msg: ClientMsg) => unknown} send
 */
export async function attach(session, send) {
  peer = session;
  sendMsg = send;
  lastView = '';
  const { camera, screen } = store.getState().video;
  try {
    if (camera) await session.setSourceTrack('camera', 'video', camera, CAMERA_LAYERS);
    if (screen) await session.setSourceTrack('screen', 'video', screen);
    if (screen && screenAudio) await session.setSourceTrack('screen', 'audio', screenAudio);
  } catch (err) {
    console.error('could not send video', err);
  }
  if (camera || screen) tellState();
  if (cameraAtStart) {
    cameraAtStart = false;
    if (!camera) await startCamera();
  }
}

function tellState() {
  const { camera, screen } = store.getState().video;
  sendMsg({ type: 'video', camera: camera !== null, screen: screen !== null });
}

/** The reason an error gives, for a toast. @param {unknown} err */
function reasonOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/** Turns the camera on. */
export async function startCamera() {
  if (store.getState().video.camera) return;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: CAMERA_CONSTRAINTS });
  } catch (err) {
    ui.toast('video.cameraFailed', { reason: reasonOf(err) }, 'error');
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track) return;
  track.addEventListener('ended', () => stopCamera());
  store.dispatch({ type: 'local_video', source: 'camera', track });
  await send('camera', track);
}

/** Turns the camera off: its light goes out, and the others' tile of it goes away. */
export async function stopCamera() {
  const track = store.getState().video.camera;
  if (!track) return;
  track.stop();
  store.dispatch({ type: 'local_video', source: 'camera', track: null });
  await send('camera', null);
}

/** Starts sharing a screen, a window or a tab, as the browser offers. */
export async function startScreen() {
  if (store.getState().video.screen) return;
  let stream;
  try {
    // Asking for audio lets the browser offer to share the sound with the picture (a tab's,
    // or the whole system's where it can); the user may still decline it.
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
  } catch (err) {
    // Cancelling the browser's picker is no error worth a toast.
    if (!(err instanceof DOMException && err.name === 'NotAllowedError')) {
      ui.toast('video.screenFailed', { reason: reasonOf(err) }, 'error');
    }
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track) {
    for (const t of stream.getTracks()) t.stop();
    return;
  }
  // Text on a screen wants sharpness more than motion.
  track.contentHint = 'detail';
  // The browser's own "Stop sharing" ends the track.
  track.addEventListener('ended', () => stopScreen());
  store.dispatch({ type: 'local_video', source: 'screen', track });
  await send('screen', track);
  // Its sound goes out beside our microphone, and is heard as ours (on the listeners' audio
  // slots, like any voice), until the sharing stops.
  screenAudio = stream.getAudioTracks()[0] ?? null;
  if (screenAudio) await sendScreenAudio(screenAudio);
}

export async function stopScreen() {
  const track = store.getState().video.screen;
  if (!track) return;
  track.stop();
  store.dispatch({ type: 'local_video', source: 'screen', track: null });
  await send('screen', null);
  if (screenAudio) {
    screenAudio.stop();
    screenAudio = null;
    await sendScreenAudio(null);
  }
}

/**
 * Puts our screen share's sound (or nothing) on its sender.
 * @param {MediaStreamTrack | null} track
 */
async function sendScreenAudio(track) {
  if (!peer || peer.closed) return;
  try {
    await peer.setSourceTrack('screen', 'audio', track);
  } catch (err) {
    console.error('could not send the screen share\'s sound', err);
  }
}

/**
 * Puts `track` (or no picture) on our camera's or screen's sender, and tells the server.
 * @param {'camera' | 'screen'} source
 * @param {MediaStreamTrack | null} track
 */
async function send(source, track) {
  if (peer && !peer.closed) {
    try {
      await peer.setSourceTrack(source, 'video', track, source === 'camera' ? CAMERA_LAYERS : undefined);
    } catch (err) {
      console.error('could not send video', err);
      ui.toast('video.cameraFailed', { reason: reasonOf(err) }, 'error');
    }
  }
  tellState();
}

/**
 * The server's dynacast: of our camera (track `track`, its mid), send only the layers someone
 * watches (`active`, by rid). A layer stopped costs our uplink and processor nothing.
 * @param {string} track
 * @param {string[]} active
 */
export async function applyLayers(track, active) {
  const sender = peer?.videoSender('camera');
  const mid = peer && [...peer.sources.keys()].find((t) => t.sender === sender)?.mid;
  if (!sender || mid !== track) return;
  const params = sender.getParameters();
  let changed = false;
  for (const encoding of params.encodings ?? []) {
    const on = !encoding.rid || active.includes(encoding.rid);
    if (encoding.active !== on) {
      encoding.active = on;
      changed = true;
    }
  }
  if (!changed) return;
  try {
    await sender.setParameters(params);
  } catch (err) {
    console.warn('could not change the layers sent', err);
  }
}

/** Whether this browser can share a screen (phones mostly cannot). */
export function canShareScreen() {
  return typeof navigator.mediaDevices?.getDisplayMedia === 'function';
}

// -----------------------------------------------------------------------------------------------
// Tiles

/** Tile elements by key. @type {Map<string, HTMLElement>} */
const tileEls = new Map();

/**
 * The tile element for `tile`, made on first sight.
 * @param {Tile} tile
 */
function tileElement(tile) {
  let el = tileEls.get(tile.key);
  if (el) return el;
  el = ui.el('div', 'tile');
  el.dataset.key = tile.key;
  const videoEl = ui.el('video');
  videoEl.autoplay = true;
  videoEl.playsInline = true;
  // Sound comes through the audio elements (media.js); a tile is a picture.
  videoEl.muted = true;
  const bar = ui.el('div', 'tile-bar');
  const name = ui.el('span', 'tile-name');
  const pin = ui.el('button', 'icon-btn tile-pin');
  pin.type = 'button';
  pin.append(icon('pin'));
  pin.addEventListener('click', () => {
    const key = el?.dataset.key ?? null;
    const pinned = store.getState().video.pinned;
    store.dispatch({ type: 'tile_pinned', key: pinned === key ? null : key });
  });
  const full = ui.el('button', 'icon-btn tile-full');
  full.type = 'button';
  full.append(icon('fullscreen'));
  full.addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else el?.requestFullscreen().catch(() => {});
  });
  bar.append(name, pin, full);
  el.append(videoEl, bar);
  tileEls.set(tile.key, el);
  resizes?.observe(el);
  return el;
}

/**
 * @param {State} state
 * @param {Tile} tile
 */
function tileName(state, tile) {
  const name = state.members.get(tile.member)?.name ?? '';
  const self = tile.member === state.selfId;
  if (tile.source === 'screen') return self ? i18n.t('tile.yourScreen') : i18n.t('tile.screenOf', { name });
  return self ? i18n.t('tile.you') : name;
}

/** @param {State} state */
function renderTiles(state) {
  const grid = ui.$('video-grid');
  const tiles = tilesOf(state);
  const big = bigTile(state, tiles);
  const keep = new Set(tiles.map((t) => t.key));
  for (const [key, el] of tileEls) {
    if (keep.has(key)) continue;
    resizes?.unobserve(el);
    el.remove();
    tileEls.delete(key);
  }
  for (const tile of tiles) {
    const el = tileElement(tile);
    const videoEl = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    if (!(videoEl.srcObject instanceof MediaStream) || videoEl.srcObject.getVideoTracks()[0] !== tile.track) {
      videoEl.srcObject = new MediaStream([tile.track]);
      videoEl.play().catch(() => {});
    }
    el.dataset.member = tile.member;
    el.dataset.source = tile.source;
    el.classList.toggle('tile-big', tile.key === big);
    el.classList.toggle('tile-self', tile.media === null);
    el.classList.toggle('speaking', tile.source === 'camera' && speakingNow(state, tile.member));
    const name = tileName(state, tile);
    /** @type {HTMLElement} */ (el.querySelector('.tile-name')).textContent = name;
    const pin = /** @type {HTMLButtonElement} */ (el.querySelector('.tile-pin'));
    const pinned = state.video.pinned === tile.key;
    pin.setAttribute('aria-pressed', String(pinned));
    const pinLabel = i18n.t(pinned ? 'tile.unpin' : 'tile.pin', { name });
    pin.setAttribute('aria-label', pinLabel);
    pin.title = pinLabel;
    const full = /** @type {HTMLButtonElement} */ (el.querySelector('.tile-full'));
    full.setAttribute('aria-label', i18n.t('tile.fullscreen', { name }));
    full.title = full.getAttribute('aria-label') ?? '';
    // In order: appending an element already in place moves it.
    grid.append(el);
  }
  grid.hidden = tiles.length === 0;
  grid.classList.toggle('has-big', big !== null);
  grid.dataset.tiles = String(tiles.length);
  scheduleView();
}

/** @param {State} state */
function renderButtons(state) {
  const camera = ui.$as('camera-btn', HTMLButtonElement);
  camera.setAttribute('aria-pressed', String(state.video.camera !== null));
  camera.classList.toggle('active', state.video.camera !== null);
  const screen = ui.$as('screen-btn', HTMLButtonElement);
  screen.hidden = !canShareScreen();
  screen.setAttribute('aria-pressed', String(state.video.screen !== null));
  screen.classList.toggle('active', state.video.screen !== null);
}

// -----------------------------------------------------------------------------------------------
// What we ask the server for

/** @type {ResizeObserver | null} */
let resizes = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let viewTimer;
/** The last `video_view` sent, as JSON: the same one is not sent again. */
let lastView = '';

function scheduleView() {
  clearTimeout(viewTimer);
  viewTimer = setTimeout(sendView, VIEW_SETTLE_MS);
}

function sendView() {
  const state = store.getState();
  if (state.connection.status !== 'joined') return;
  const ratio = Math.min(window.devicePixelRatio || 1, MAX_PIXEL_RATIO);
  /** @type {Map<string, {width: number, height: number}>} */
  const sizes = new Map();
  for (const [key, el] of tileEls) {
    if (!el.isConnected) continue;
    sizes.set(key, { width: el.clientWidth * ratio, height: el.clientHeight * ratio });
  }
  const tracks = videoView(state, sizes);
  const json = JSON.stringify(tracks);
  if (json === lastView || tracks.length === 0) return;
  if (sendMsg({ type: 'video_view', tracks }) !== false) lastView = json;
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  if (
    !prev ||
    state.remoteMedia !== prev.remoteMedia ||
    state.tracks !== prev.tracks ||
    state.members !== prev.members ||
    state.video !== prev.video ||
    state.selfId !== prev.selfId ||
    state.slotVoices !== prev.slotVoices ||
    state.lang !== prev.lang
  ) {
    renderTiles(state);
  }
  if (!prev || state.video !== prev.video) renderButtons(state);
  if (prev && (state.page.hidden !== prev.page.hidden || state.connection.status !== prev.connection.status)) {
    scheduleView();
  }
}

const mountRender = renderingFromStore(render);

/** Wires the buttons and starts rendering (once). */
export function mount() {
  if (!resizes && typeof ResizeObserver === 'function') resizes = new ResizeObserver(() => scheduleView());
  ui.$('camera-btn').onclick = () => (store.getState().video.camera ? stopCamera() : startCamera());
  ui.$('screen-btn').onclick = () => (store.getState().video.screen ? stopScreen() : startScreen());
  mountRender();
}

/** We are leaving: the camera's and the screen's lights go out. */
export function stopAll() {
  for (const track of [store.getState().video.camera, store.getState().video.screen, screenAudio]) track?.stop();
}
