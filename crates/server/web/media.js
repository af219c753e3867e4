// @ts-check
// What we receive: the peer connection's `track` events go into the store under the stream's
// key (the msid stream id the server gives it, `streams[0].id`), and from the store this module
// plays every audio stream through an element of its own and feeds each member's level bar.
//
// Two kinds of audio stream arrive. On audio slots (`slot-<k>`, when `joined` gave us any) the
// server puts the room's loudest speakers; who is on a slot now is read every
// `SLOT_POLL_MS` from the receiver's contributing sources (each packet's CSRC is the speaker's
// `source`, with its audio level), which names the member for the speaking ring, the level
// bar and `mediaOf`. Silencing one member for ourselves is then the server's job (connection.js
// sends `local_mutes`). A stream of its own (`<member>-<track id>`) carries one member's
// track: we silence it here if we muted that member, and measure its level from its sound.

import { LevelMeters, meterLevel } from './levels.js';
import { renderingFromStore, sourceOf, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').RemoteMedia} RemoteMedia */
/** @typedef {import('./state.js').SlotVoice} SlotVoice */

/** How often the slots' contributing sources are read. */
const SLOT_POLL_MS = 200;
/** A slot still carries its speaker this long after the last packet of theirs was played. */
const SLOT_HOLD_MS = 1000;
/** The audio level (linear, 1 = 0 dBov) from which a packet counts as speech: -45 dBov, as the server's speaking detector. */
const LOUD_LEVEL = 10 ** (-45 / 20);
/** A speaker stays loud this long after their last loud packet, so that the ring does not flicker between syllables. */
const LOUD_HOLD_MS = 600;

const levels = new LevelMeters((id) => ui.levelBar(id));

/**
 * A remote track arrived on the peer connection.
 * @param {RTCTrackEvent} ev
 */
export function onRemoteTrack(ev) {
  const stream = ev.streams[0];
  if (!stream) {
    console.warn('a remote track without a stream; cannot tell what it is');
    return;
  }
  const key = stream.id;
  const kind = ev.track.kind === 'video' ? 'video' : 'audio';
  store.dispatch({ type: 'remote_track', key, kind, track: ev.track, stream });
  // The server stops the track's m-line when it ends: the track leaves its stream.
  stream.onremovetrack = () => {
    if (stream.getTracks().length === 0) store.dispatch({ type: 'remote_track_ended', key, stream });
  };
}

/**
 * Whether we silence `media` here: everything when we muted all; a stream of its own when we
 * muted its publisher (the server keeps those off our slots).
 * @param {State} state
 * @param {RemoteMedia} media
 */
function mutedForUs(state, media) {
  return state.localMutes.all || (media.peer !== null && state.localMutes.ids.has(media.peer));
}

/** @param {State} state */
function renderAudio(state) {
  const keep = new Set();
  for (const media of state.remoteMedia.values()) {
    if (media.kind !== 'audio') continue;
    keep.add(media.key);
    const member = media.peer ?? state.slotVoices.get(media.key)?.member ?? null;
    ui.playRemoteAudio(media.key, member, media.stream, {
      muted: mutedForUs(state, media),
      sinkId: state.speakerId,
      onBlocked: () => store.dispatch({ type: 'audio_blocked' }),
    });
  }
  ui.removeRemoteAudioExcept(keep);
}

/**
 * Which stream shows each member's level from its sound: their microphone (or, without one,
 * their first audio track) when it has a stream of its own, and ours from our own microphone.
 * Members heard on slots are measured from the slots' audio levels instead (`pollSlots`).
 * @param {State} state
 * @returns {Map<string, MediaStream>}
 */
function levelSources(state) {
  const out = new Map();
  for (const media of state.remoteMedia.values()) {
    if (media.kind !== 'audio' || media.peer === null) continue;
    if (!out.has(media.peer) || sourceOf(state, media) === 'microphone') out.set(media.peer, media.stream);
  }
  if (state.selfId !== null && state.mic.stream) out.set(state.selfId, state.mic.stream);
  return out;
}

/** @param {State} state */
function renderLevels(state) {
  const want = levelSources(state);
  for (const id of levels.ids()) if (!want.has(id)) levels.detach(id);
  for (const [id, stream] of want) levels.attach(id, stream);
}

// -----------------------------------------------------------------------------------------------
// Who is on each slot

/**
 * What we last read of one slot.
 * @typedef {object} SlotReading
 * @property {number} played The newest contributing source's timestamp.
 * @property {number} source Its CSRC.
 * @property {number} level Its audio level (linear, 0…1).
 * @property {number} at When it last advanced (performance.now()).
 * @property {number} loudAt When this source was last loud on the slot.
 */

/** @type {Map<string, SlotReading>} */
const readings = new Map();
/** @type {ReturnType<typeof setInterval> | undefined} */
let pollTimer;
/** Member id by source id, for the members map it was made from. */
let bySource = { members: /** @type {State['members'] | null} */ (null), ids: new Map() };

/** @param {State} state @param {number} source */
function memberOfSource(state, source) {
  if (bySource.members !== state.members) {
    const ids = new Map();
    for (const m of state.members.values()) if (m.source !== 0) ids.set(m.source, m.id);
    bySource = { members: state.members, ids };
  }
  return bySource.ids.get(source) ?? null;
}

/**
 * The contributing source of `receiver` whose packet was played last, if any.
 * @param {RTCRtpReceiver} receiver
 */
function newestSource(receiver) {
  let newest = null;
  if (typeof receiver.getContributingSources !== 'function') return null;
  for (const s of receiver.getContributingSources()) {
    if (!newest || s.timestamp > newest.timestamp) newest = s;
  }
  return newest;
}

/**
 * Reads every slot's contributing sources: whom we hear on it now (a speaker whose packets
 * keep being played there), how loud, and each member's level for their bar.
 */
function pollSlots() {
  const state = store.getState();
  const pc = state.pc;
  const slots = [...state.remoteMedia.values()].filter((m) => m.slot !== null);
  if (!pc || slots.length === 0) return;
  const receivers = pc.getReceivers();
  const now = performance.now();
  /** @type {Map<string, SlotVoice>} */
  const voices = new Map();
  /** @type {Map<string, number>} */
  const heard = new Map();
  for (const media of slots) {
    const receiver = receivers.find((r) => r.track === media.track);
    const newest = receiver ? newestSource(receiver) : null;
    const last = readings.get(media.key);
    let reading = last;
    if (newest && (!last || newest.timestamp !== last.played || newest.source !== last.source)) {
      const level = newest.audioLevel ?? 0;
      const loudAt = level >= LOUD_LEVEL ? now : last && last.source === newest.source ? last.loudAt : -Infinity;
      reading = { played: newest.timestamp, source: newest.source, level, at: now, loudAt };
      readings.set(media.key, reading);
    }
    if (!reading || now - reading.at > SLOT_HOLD_MS) continue;
    const member = memberOfSource(state, reading.source);
    if (member === null) continue;
    const fresh = reading.at === now;
    voices.set(media.key, { member, loud: now - reading.loudAt <= LOUD_HOLD_MS });
    if (fresh) heard.set(member, Math.max(heard.get(member) ?? 0, meterLevel(reading.level)));
  }
  levels.setExternal(heard);
  if (!sameVoices(voices, state.slotVoices)) store.dispatch({ type: 'slot_voices', voices });
}

/** @param {Map<string, SlotVoice>} a @param {Map<string, SlotVoice>} b */
function sameVoices(a, b) {
  if (a.size !== b.size) return false;
  for (const [key, v] of a) {
    const w = b.get(key);
    if (!w || w.member !== v.member || w.loud !== v.loud) return false;
  }
  return true;
}

/** Reads the slots while there are any. @param {State} state */
function renderSlots(state) {
  const any = [...state.remoteMedia.values()].some((m) => m.slot !== null);
  if (any && pollTimer === undefined) {
    pollTimer = setInterval(pollSlots, SLOT_POLL_MS);
  } else if (!any && pollTimer !== undefined) {
    clearInterval(pollTimer);
    pollTimer = undefined;
    readings.clear();
    levels.setExternal(new Map());
  }
}

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  const media = !prev || state.remoteMedia !== prev.remoteMedia || state.tracks !== prev.tracks;
  if (media || !prev || state.localMutes !== prev.localMutes || state.slotVoices !== prev.slotVoices) {
    renderAudio(state);
  }
  if (media || !prev || state.mic.stream !== prev.mic.stream || state.selfId !== prev.selfId) renderLevels(state);
  if (media) renderSlots(state);
}

/** Starts rendering from the store (once). */
export const mount = renderingFromStore(render);

/** Starts the level meters after a user gesture if the browser kept them suspended. */
export function resumeLevels() {
  levels.resume();
}

/** Stops measuring anything (we are leaving). */
export function stopLevels() {
  levels.detachAll();
}
