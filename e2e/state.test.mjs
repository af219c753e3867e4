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

const {
  LIST_PAGE,
  TALKERS_KEPT,
  createStore,
  initialState,
  mediaOf,
  memberCount,
  memberOrder,
  reduce,
  shownMembers,
  sourceOf,
  speakingNow,
} = await import(pathToFileURL(path.join(WEB_DIR, 'state.js')).href);

const member = (id, name, extra = {}) => ({ id, name, muted: false, speaking: false, source: Number(id) + 100, ...extra });
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

const joinedAs = (selfId, others, tracks = [], { membersTotal = others.length, audioSlots = 0 } = {}) => ({
  type: 'joined',
  selfId,
  members: others,
  membersTotal,
  audioSlots,
  tracks,
  chat: [],
});

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

test('members muted for me are found again by tag: back on a new connection, after a rejoin, and from what the room remembered', () => {
  const tagged = (id, name, tag) => ({ ...member(id, name), tag });
  const a = 'a'.repeat(32);
  let s = run(
    { type: 'room_entered', room: 'r', name: 'Ann', mutedTags: [] },
    joinedAs('1', [tagged('2', 'Ben', a), member('3', 'Cy')]),
    { type: 'local_mute_toggled', id: '2' },
  );
  assert.deepEqual([...s.localMutes.tags], [a]);
  // Ben comes back under a new id (and a new name): still muted; unmuting forgets his tag.
  s = [{ type: 'member_left', id: '2' }, { type: 'member_joined', member: tagged('4', 'Benny', a) }].reduce(reduce, s);
  assert.deepEqual([...s.localMutes.ids], ['4']);
  s = reduce(s, joinedAs('11', [tagged('12', 'Ben', a)]));
  assert.deepEqual([...s.localMutes.ids], ['12']);
  s = reduce(s, { type: 'local_mute_toggled', id: '12' });
  assert.deepEqual([...s.localMutes.tags], []);
  // A page that remembered the tag mutes him as he arrives.
  s = run({ type: 'room_entered', room: 'r', name: 'Ann', mutedTags: [a] }, joinedAs('1', [tagged('5', 'Ben', a), member('6', 'Ben')]));
  assert.deepEqual([...s.localMutes.ids], ['5'], 'by tag, not by name');
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
    if (event.type === 'connecting') store.dispatch(joinedAs('1', []));
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

test('members listed in pages: the count includes those still coming, and muted names are found in every page', () => {
  let s = run(
    { type: 'room_entered', room: 'r', name: 'Ann' },
    joinedAs('1', [member('2', 'Ben'), member('3', 'Cy'), member('4', 'Di')]),
    { type: 'local_mute_toggled', id: '3' },
    { type: 'local_mute_toggled', id: '4' },
    { type: 'session_ended' },
  );
  // Back in: Cy is on the first page, Di on the second.
  s = reduce(s, joinedAs('11', [member('12', 'Ben'), member('13', 'Cy')], [], { membersTotal: 4 }));
  assert.equal(memberCount(s), 5, 'ourselves, two listed, two to come');
  assert.deepEqual([...s.localMutes.ids], ['13']);
  s = reduce(s, { type: 'more_members', members: [member('14', 'Di')] });
  assert.deepEqual([...s.localMutes.ids].sort(), ['13', '14'], 'Di is muted again once listed');
  assert.equal(memberCount(s), 5);
  const before = s.localMutes;
  s = reduce(s, { type: 'more_members', members: [member('15', 'Ed'), member('14', 'Di')] });
  assert.equal(s.membersPending, 0);
  assert.equal(s.members.size, 5, 'a member listed twice is kept once');
  assert.deepEqual(s.localMutes.names, new Set(), 'once everyone is listed, the names are forgotten');
  assert.deepEqual([...s.localMutes.ids].sort(), [...before.ids].sort());
  // Someone called Di who joins later is somebody else.
  s = reduce(s, { type: 'member_joined', member: member('16', 'Di') });
  assert.ok(!s.localMutes.ids.has('16'));
  // A member who leaves is no longer in the list we send; one who was not muted changes nothing.
  const mutes = s.localMutes;
  s = reduce(s, { type: 'member_left', id: '15' });
  assert.equal(s.localMutes, mutes);
  s = reduce(s, { type: 'member_left', id: '14' });
  assert.deepEqual([...s.localMutes.ids], ['13']);
});

test('speakers: the whole set says who speaks; the list shows them first, in the order they started, and keeps a few who stopped', () => {
  const others = Array.from({ length: 20 }, (_, i) => member(String(i + 2), `M${i + 2}`));
  let s = run(joinedAs('1', others));
  assert.deepEqual(memberOrder(s).slice(0, 4), ['1', '2', '3', '4']);
  s = reduce(s, { type: 'speakers', ids: ['9', '5', '1'] });
  assert.deepEqual(
    [...s.members.values()].filter((m) => m.speaking).map((m) => m.id).sort(),
    ['1', '5', '9'],
    'we are told about ourselves too',
  );
  assert.deepEqual(memberOrder(s).slice(0, 4), ['1', '9', '5', '2'], 'ourselves, then the speakers, then the rest');
  assert.deepEqual(memberOrder(s).length, 21);
  // 5 stops, 7 starts: 5 stays where it was (no jumping), 7 comes after it.
  s = reduce(s, { type: 'speakers', ids: ['9', '7'] });
  assert.deepEqual(memberOrder(s).slice(0, 5), ['1', '9', '5', '7', '2']);
  assert.ok(!speakingNow(s, '5') && speakingNow(s, '7'));
  assert.ok(s.everSpoke.has('5') && s.everSpoke.has('7'));
  // The same set again changes nothing at all.
  assert.equal(reduce(s, { type: 'speakers', ids: ['7', '9'] }), s);
  // Many take turns: every current speaker stays first, with the last few who stopped.
  for (let id = 2; id <= 21; id++) s = reduce(s, { type: 'speakers', ids: [String(id)] });
  s = reduce(s, { type: 'speakers', ids: ['3', '21'] });
  const quiet = s.talkers.filter((id) => !speakingNow(s, id));
  assert.equal(quiet.length, TALKERS_KEPT);
  assert.ok(s.talkers.includes('3') && s.talkers.includes('21'));
  assert.deepEqual(quiet, ['13', '14', '15', '16', '17', '18', '19', '20'], 'the latest who stopped, in order');
  // Speakers who leave or whose connection ends are no longer shown speaking.
  s = reduce(s, { type: 'member_left', id: '21' });
  assert.ok(!s.talkers.includes('21'));
  s = reduce(s, { type: 'session_ended' });
  assert.ok([...s.members.values()].every((m) => !m.speaking));
});

test('audio slots: a slot carries whom its voices say, and a loud voice is shown speaking before the server says so', () => {
  const slot = (k) => ({ type: 'remote_track', key: `slot-${k}`, kind: 'audio', track: { id: `t-slot-${k}` }, stream: { id: `slot-${k}` } });
  let s = run(
    joinedAs('1', [member('2', 'Ben'), member('3', 'Cy'), member('4', 'Di')], [track('2', '0'), track('3', '0'), track('3', '1', 'video')], {
      audioSlots: 3,
    }),
    slot(0),
    slot(1),
    slot(2),
    received('3-1', 'video'),
  );
  assert.equal(s.audioSlots, 3);
  assert.deepEqual(
    [...s.remoteMedia.values()].map((m) => [m.key, m.peer, m.slot]),
    [['slot-0', null, 0], ['slot-1', null, 1], ['slot-2', null, 2], ['3-1', '3', null]],
    'slots have no publisher; a video track of its own still has one',
  );
  assert.deepEqual(mediaOf(s, '2'), [], 'nobody is on a slot yet');
  s = reduce(s, {
    type: 'slot_voices',
    voices: new Map([
      ['slot-0', { member: '4', loud: true }],
      ['slot-1', { member: '2', loud: false }],
    ]),
  });
  assert.deepEqual(mediaOf(s, '4').map((m) => m.key), ['slot-0']);
  assert.deepEqual(mediaOf(s, '2').map((m) => m.key), ['slot-1']);
  assert.deepEqual(mediaOf(s, '3').map((m) => m.key), ['3-1']);
  assert.ok(speakingNow(s, '4'), 'loud on a slot: speaking');
  assert.ok(!speakingNow(s, '2'), 'on a slot but quiet: not speaking');
  assert.deepEqual(memberOrder(s).slice(0, 2), ['1', '4']);
  // A protocol track never takes a slot's place, even with the same key.
  s = reduce(s, { type: 'track_added', track: { ...track('3', '0'), stream: 'slot-1' } });
  assert.equal(s.remoteMedia.get('slot-1').peer, null);
  // The member heard leaves: the slot no longer names them.
  s = reduce(s, { type: 'member_left', id: '4' });
  assert.deepEqual([...s.slotVoices.keys()], ['slot-1']);
  assert.equal(s.remoteMedia.size, 4, 'the slots stay');
  s = reduce(s, { type: 'session_ended' });
  assert.equal(s.slotVoices.size, 0);
});

test('a room of 500: the list shows a page, speakers first; search finds anyone; a speakers change leaves the others as they were', () => {
  const others = Array.from({ length: 499 }, (_, i) => member(String(i + 2), `Listener ${i + 2}`));
  // As the server sends them: the first 200 in `joined`, the rest in pages.
  let s = run(
    { type: 'room_entered', room: 'big', name: 'Me' },
    joinedAs('1', others.slice(0, 200), [], { membersTotal: 499, audioSlots: 3 }),
  );
  assert.equal(memberCount(s), 500);
  s = reduce(s, { type: 'more_members', members: others.slice(200, 400) });
  s = reduce(s, { type: 'more_members', members: others.slice(400) });
  assert.equal(s.members.size, 500);
  assert.equal(memberCount(s), 500);

  const before = s.members;
  s = reduce(s, { type: 'speakers', ids: ['377', '450'] });
  for (const [id, m] of s.members) {
    if (id !== '377' && id !== '450') assert.equal(m, before.get(id), `member ${id} is the same object`);
  }
  const first = shownMembers(s, { limit: LIST_PAGE, query: '' });
  assert.equal(first.shown.length, LIST_PAGE);
  assert.equal(first.hidden, 500 - LIST_PAGE);
  assert.deepEqual(first.shown.slice(0, 4), ['1', '377', '450', '2'], 'ourselves, the speakers, then the rest in order');
  const more = shownMembers(s, { limit: 2 * LIST_PAGE, query: '' });
  assert.deepEqual(more.shown.slice(0, LIST_PAGE), first.shown, 'showing more keeps what was shown');
  assert.equal(more.hidden, 500 - 2 * LIST_PAGE);
  const found = shownMembers(s, { limit: LIST_PAGE, query: '  listener 49' });
  assert.deepEqual(found.shown, ['49', '490', '491', '492', '493', '494', '495', '496', '497', '498', '499'].filter((id) => s.members.has(id)));
  assert.equal(found.hidden, 0);
  assert.deepEqual(shownMembers(s, { limit: LIST_PAGE, query: 'nobody' }), { shown: [], hidden: 0, matches: 0 });
});
