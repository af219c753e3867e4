// @ts-check
// Which video tiles the room shows, in what order, which one big, and what each viewer asks
// the server for (`video_view`): pure functions of the state, so that tests can run them in
// Node.
//
// A tile is a camera or a screen share that sends now: ours (from the tracks we send) or
// another member's (a video track we receive whose publisher says, with `video`, that it
// sends). A track whose publisher turned it off keeps its m-line but shows no tile.

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').RemoteMedia} RemoteMedia */

/**
 * @typedef {object} Tile
 * @property {string} key `self-camera`, `self-screen`, or the received track's stream key.
 * @property {string} member Whose it is.
 * @property {'camera' | 'screen'} source
 * @property {MediaStreamTrack} track
 * @property {RemoteMedia | null} media What we receive, for another member's tile.
 */

/** The most tiles a page shows: more are not drawn (their tracks are asked for at 0 × 0). */
export const MAX_TILES = 24;

/**
 * The tiles to show: screen shares first, then cameras, each in the order of the members' ids
 * (their order of joining), ours before the others'. At most `MAX_TILES`.
 * @param {State} state
 * @returns {Tile[]}
 */
export function tilesOf(state) {
  /** @type {Tile[]} */
  const tiles = [];
  const self = state.selfId;
  if (self !== null) {
    if (state.video.screen) tiles.push({ key: 'self-screen', member: self, source: 'screen', track: state.video.screen, media: null });
    if (state.video.camera) tiles.push({ key: 'self-camera', member: self, source: 'camera', track: state.video.camera, media: null });
  }
  for (const media of state.remoteMedia.values()) {
    if (media.kind !== 'video' || media.peer === null) continue;
    const track = state.tracks.get(media.key);
    const member = state.members.get(media.peer);
    if (!track || !member || track.source === 'microphone') continue;
    const source = track.source;
    if (!(source === 'screen' ? member.screen : member.camera)) continue;
    tiles.push({ key: media.key, member: media.peer, source, track: media.track, media });
  }
  const rank = (/** @type {Tile} */ t) => (t.source === 'screen' ? 0 : 1);
  const order = (/** @type {Tile} */ t) => (t.media === null ? -1 : Number(t.member));
  tiles.sort((a, b) => rank(a) - rank(b) || order(a) - order(b));
  return tiles.slice(0, MAX_TILES);
}

/**
 * The tile shown big: the one we pinned, while it is there; else the first screen share;
 * else none (every tile the same size).
 * @param {State} state
 * @param {Tile[]} tiles
 */
export function bigTile(state, tiles) {
  const pinned = state.video.pinned;
  if (pinned !== null && tiles.some((t) => t.key === pinned)) return pinned;
  return tiles.find((t) => t.source === 'screen')?.key ?? null;
}

/**
 * What we ask the server for: every video track others publish to us, each with the size its
 * tile is drawn at in device pixels (`sizes`, by tile key), or 0 × 0 when it has no tile or the
 * page is hidden. At most 64 tracks, as the protocol allows.
 * @param {State} state
 * @param {Map<string, {width: number, height: number}>} sizes
 * @returns {{peer: number, id: string, width: number, height: number}[]}
 */
export function videoView(state, sizes) {
  /** @type {{peer: number, id: string, width: number, height: number}[]} */
  const out = [];
  for (const track of state.tracks.values()) {
    if (track.kind !== 'video' || track.peer === state.selfId) continue;
    const size = state.page.hidden ? undefined : sizes.get(track.stream);
    const side = (/** @type {number | undefined} */ v) => Math.max(0, Math.min(16_384, Math.round(v ?? 0)));
    out.push({ peer: Number(track.peer), id: track.id, width: side(size?.width), height: side(size?.height) });
    if (out.length === 64) break;
  }
  return out;
}
