// The web client's store, in Node: its reducers are pure functions of the state and an event,
// so what a sequence of events leaves behind can be checked without a browser. Media objects
// are stand-ins: the store only keeps and compares them.
//
// Run from the repository root: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { WEB_DIR } from './helpers.mjs';

const { createStore, initialState, mediaOf, reduce, sourceOf } = await import(
  pathToFileURL(path.join(WEB_DIR, 'state.js')).href
);

const member = (id, name, extra = {}) => ({ id, name, muted: false, speaking: false, ...extra });
const track = (peer, id, kind = 'audio', source = kind === 'audio' ? 'microphone' : 'camera') => ({
  peer,
  id,
  kind,
  source,
  stream: `${peer}-${id}`,
});
/** A stand-in for a MediaStream and its one track. */
const received = (key, kind = 'audio') => ({ type: 'remote_track', key, kind, track: { id: `t-${key}` }, stream: { id: key } });

function run(...events) {
  return events.reduce(reduce, initialState());
}

const joinedAs = (selfId, others, tracks = []) => ({ type: 'joined', selfId, members: others, tracks, chat: [] });

test('what we receive is kept by track, and a member finds each of their tracks', () => {
  const s = run(
    { type: 'room_entered', room: 'r', name: 'Ann' },
    joinedAs('1', [member('2', 'Ben')], [track('2', '0'), track('2', '1', 'video'), track('2', '2', 'audio', 'screen')]),
    received('2-0'),
    received('2-1', 'video'),
    received('2-2'),
  );
  assert.deepEqual([...s.remoteMedia.keys()], ['2-0', '2-1', '2-2']);
  assert.deepEqual(mediaOf(s, '2').map((m) => [m.key, m.kind, m.stream.id]), [
    ['2-0', 'audio', '2-0'],
    ['2-1', 'video', '2-1'],
    ['2-2', 'audio', '2-2'],
  ]);
  assert.deepEqual(mediaOf(s, '2').map((m) => sourceOf(s, m)), ['microphone', 'camera', 'screen']);
  assert.deepEqual(mediaOf(s, '1'), []);
});

test('a track that arrives before the protocol describes it is attributed by its key', () => {
  let s = run(joinedAs('1', [member('7', 'Gus')]), received('7-3', 'video'));
  assert.equal(s.remoteMedia.get('7-3').peer, '7');
  assert.equal(sourceOf(s, s.remoteMedia.get('7-3')), 'camera', 'the default for video until told');
  s = reduce(s, { type: 'track_added', track: track('7', '3', 'video', 'screen') });
  assert.equal(sourceOf(s, s.remoteMedia.get('7-3')), 'screen');
});

test('a track that ends, a removed track and a member who leaves take their media with them', () => {
  const events = [
    joinedAs('1', [member('2', 'Ben'), member('3', 'Cy')], [track('2', '0'), track('2', '1', 'video'), track('3', '0')]),
    received('2-0'),
    received('2-1', 'video'),
    received('3-0'),
  ];
  let s = run(...events);
  // A stream that is not the one kept (an older arrival) does not remove the current one.
  s = reduce(s, { type: 'remote_track_ended', key: '2-0', stream: { id: '2-0' } });
  assert.ok(s.remoteMedia.has('2-0'));
  s = reduce(s, { type: 'remote_track_ended', key: '2-0', stream: s.remoteMedia.get('2-0').stream });
  assert.deepEqual([...s.remoteMedia.keys()], ['2-1', '3-0']);
  s = reduce(s, { type: 'track_removed', track: track('2', '1', 'video') });
  assert.deepEqual([...s.remoteMedia.keys()], ['3-0']);
  assert.deepEqual([...s.tracks.keys()], ['2-0', '3-0']);
  s = reduce(s, { type: 'member_left', id: '3' });
  assert.deepEqual([...s.remoteMedia.keys()], []);
  assert.deepEqual([...s.tracks.keys()], ['2-0']);
  assert.deepEqual([...s.members.keys()], ['1', '2']);
  assert.deepEqual(s.chat.log.at(-1), { type: 'system', text: { key: 'sys.left', args: { name: 'Cy' } } });
  // A lost connection forgets what it carried.
  s = reduce(s, { type: 'session_ended' });
  assert.equal(s.tracks.size, 0);
  assert.equal(s.remoteMedia.size, 0);
});

test('members muted for me stay muted across a rejoin, found again by name', () => {
  let s = run(
    { type: 'room_entered', room: 'r', name: 'Ann' },
    joinedAs('1', [member('2', 'Ben'), member('3', 'Cy')]),
    { type: 'local_mute_toggled', id: '3' },
    { type: 'session_ended' },
  );
  s = reduce(s, joinedAs('11', [member('12', 'Ben'), member('13', 'Cy')]));
  assert.deepEqual([...s.localMutes.ids], ['13']);
  assert.equal(s.connection.rejoins, 1);
  assert.equal(s.members.get('11').name, 'Ann');
  assert.deepEqual(s.chat.log.at(-1), { type: 'system', text: { key: 'sys.reconnected', args: {} } });
});

test('our own mute echoes: a toggle still on its way keeps what we show', () => {
  let s = run(joinedAs('1', []), { type: 'muted_set', muted: true }, { type: 'mute_sent' });
  s = reduce(reduce(s, { type: 'muted_set', muted: false }), { type: 'mute_sent' });
  assert.equal(s.mic.muted, false);
  s = reduce(s, { type: 'mute', id: '1', muted: true });
  assert.equal(s.mic.muted, false, 'the first echo is out of date');
  s = reduce(s, { type: 'mute', id: '1', muted: false });
  assert.equal(s.mic.muted, false);
  assert.equal(s.mic.pendingEchoes, 0);
  assert.equal(s.members.get('1').muted, false);
});

test('chat: repeats are dropped, and unread counts only what could not be seen', () => {
  const msg = (seq, from, text) => ({ seq, from, name: `n${from}`, text, ts: 1000 + seq });
  let s = run(
    joinedAs('1', [member('2', 'Ben')]),
    { type: 'page_changed', narrow: true, hidden: false },
    { type: 'chat_collapsed', collapsed: true },
    { type: 'chat_message', message: msg(1, 2, 'hi') },
    { type: 'chat_message', message: msg(1, 2, 'hi') },
    { type: 'chat_message', message: msg(2, 1, 'mine') },
  );
  assert.equal(s.chat.log.filter((e) => e.type === 'message').length, 2);
  assert.equal(s.chat.unread, 1, 'only the other member\'s, once');
  assert.equal(s.chat.log.at(-1).mine, true);
  s = reduce(s, { type: 'chat_collapsed', collapsed: false });
  assert.equal(s.chat.unread, 0);
});

test('subscribers see every event in order, even those dispatched while they are told', () => {
  const store = createStore();
  const seen = [];
  store.subscribe((state, prev, event) => {
    seen.push([event.type, prev.connection.status, state.connection.status]);
    if (event.type === 'connecting') store.dispatch({ type: 'joined', selfId: '1', members: [], tracks: [], chat: [] });
  });
  store.subscribe((state, prev, event) => seen.push(['second', event.type, state.connection.status]));
  store.dispatch({ type: 'connecting' });
  assert.deepEqual(seen, [
    ['connecting', 'idle', 'connecting'],
    ['second', 'connecting', 'connecting'],
    ['joined', 'connecting', 'joined'],
    ['second', 'joined', 'joined'],
  ]);
});
