// @ts-check
// What we receive, track by track: the peer connection's `track` events go into the store under
// the track's key (the msid stream id the server gives it, `streams[0].id`), and from the store
// this module plays every audio track through an element of its own, silences what we muted for
// ourselves, and feeds each member's level bar from their microphone (ours from our own).

import { LevelMeters } from './levels.js';
import { renderingFromStore, sourceOf, store } from './state.js';
import * as ui from './ui.js';

/** @typedef {import('./state.js').State} State */
/** @typedef {import('./state.js').RemoteMedia} RemoteMedia */

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
 * Whether we silenced `media`'s publisher for ourselves.
 * @param {State} state
 * @param {RemoteMedia} media
 */
function mutedForUs(state, media) {
  return state.localMutes.all || state.localMutes.ids.has(media.peer);
}

/** @param {State} state */
function renderAudio(state) {
  const keep = new Set();
  for (const media of state.remoteMedia.values()) {
    if (media.kind !== 'audio') continue;
    keep.add(media.key);
    ui.playRemoteAudio(media.key, media.peer, media.stream, {
      muted: mutedForUs(state, media),
      sinkId: state.speakerId,
      onBlocked: () => store.dispatch({ type: 'audio_blocked' }),
    });
  }
  ui.removeRemoteAudioExcept(keep);
}

/**
 * Which stream shows each member's level: their microphone (or, without one, their first
 * audio track), and ours from our own microphone.
 * @param {State} state
 * @returns {Map<string, MediaStream>}
 */
function levelSources(state) {
  const out = new Map();
  for (const media of state.remoteMedia.values()) {
    if (media.kind !== 'audio') continue;
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

/**
 * @param {State} state
 * @param {State | null} prev null: render everything
 */
function render(state, prev) {
  const media = !prev || state.remoteMedia !== prev.remoteMedia || state.tracks !== prev.tracks;
  if (media || !prev || state.localMutes !== prev.localMutes) renderAudio(state);
  if (media || !prev || state.mic.stream !== prev.mic.stream || state.selfId !== prev.selfId) renderLevels(state);
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
