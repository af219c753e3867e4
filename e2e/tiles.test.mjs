// The video tiles a page shows and what it asks the server for (tiles.js), in Node: pure
// functions of the store's state, built here from the same events the page dispatches.
//
// Run from the repository root: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { WEB_DIR } from './helpers.mjs';

const { initialState, reduce } = await import(pathToFileURL(path.join(WEB_DIR, 'state.js')).href);
const { MAX_TILES, bigTile, tilesOf, videoView } = await import(pathToFileURL(path.join(WEB_DIR, 'tiles.js')).href);

const member = (id, name, extra = {}) => ({ id, name, muted: false, speaking: false, source: Number(id), ...extra });
const track = (peer, id, source) => ({ peer, id, kind: source === 'microphone' ? 'audio' : 'video', source, stream: `${peer}-${id}` });
const received = (key, kind = 'video') => ({ type: 'remote_track', key, kind, track: { id: `t-${key}` }, stream: { id: key } });

/** A room where we are 1, 2 sends a camera and a screen, 3 a camera that is off. */
function room(...events) {
  const joined = {
    type: 'joined',
    selfId: '1',
    name: 'Me',
    members: [member('2', 'Bob', { camera: true, screen: true }), member('3', 'Cy', { camera: false })],
    membersTotal: 2,
    audioSlots: 3,
    tracks: [track('2', '1', 'camera'), track('2', '2', 'screen'), track('3', '1', 'camera'), track('2', '0', 'microphone')],
    chat: [],
  };
  return [joined, received('2-1'), received('2-2'), received('3-1'), ...events].reduce(reduce, initialState());
}

test('tiles show what sends: screen shares first, then cameras, ours first, none for a camera turned off', () => {
  const ours = { id: 'cam' };
  const state = room({ type: 'local_video', source: 'camera', track: ours });
  const tiles = tilesOf(state);
  assert.deepEqual(tiles.map((t) => t.key), ['2-2', 'self-camera', '2-1']);
  assert.equal(tiles[1].track, ours);
  assert.equal(tiles[1].media, null);
  // Cy turns the camera on: a tile for it; Bob stops sharing: his screen's tile goes.
  const later = [{ type: 'video', id: '3', camera: true, screen: false }, { type: 'video', id: '2', camera: true, screen: false }].reduce(reduce, state);
  assert.deepEqual(tilesOf(later).map((t) => t.key), ['self-camera', '2-1', '3-1']);
});

test('the big tile is the pinned one while it is shown, else the first screen share', () => {
  let state = room();
  assert.equal(bigTile(state, tilesOf(state)), '2-2');
  state = reduce(state, { type: 'tile_pinned', key: '2-1' });
  assert.equal(bigTile(state, tilesOf(state)), '2-1');
  state = reduce(state, { type: 'video', id: '2', camera: false, screen: false });
  assert.equal(bigTile(state, tilesOf(state)), null, 'a pinned tile that went away pins nothing');
});

test('a page asks for every video track: its tile size, else 0 x 0, and nothing while hidden', () => {
  let state = room();
  const sizes = new Map([['2-1', { width: 480.4, height: 270 }], ['2-2', { width: 99_999, height: 720 }]]);
  assert.deepEqual(videoView(state, sizes), [
    { peer: 2, id: '1', width: 480, height: 270 },
    { peer: 2, id: '2', width: 16_384, height: 720 },
    { peer: 3, id: '1', width: 0, height: 0 },
  ]);
  state = reduce(state, { type: 'page_changed', narrow: false, hidden: true });
  assert.ok(videoView(state, sizes).every((t) => t.width === 0 && t.height === 0));
});

test('a room of many cameras shows at most MAX_TILES tiles', () => {
  const members = Array.from({ length: 40 }, (_, i) => member(String(i + 2), `M${i}`, { camera: true }));
  const tracks = members.map((m) => track(m.id, '1', 'camera'));
  const joined = { type: 'joined', selfId: '1', name: 'Me', members, membersTotal: 40, audioSlots: 3, tracks, chat: [] };
  const state = [joined, ...tracks.map((t) => received(t.stream))].reduce(reduce, initialState());
  assert.equal(tilesOf(state).length, MAX_TILES);
  assert.equal(videoView(state, new Map()).length, 40);
});
