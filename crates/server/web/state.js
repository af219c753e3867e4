// @ts-check
// The web client's state, in one store. What the page knows of the room is in `State`, and it
// changes only through `dispatch(event)`: `reduce` makes the new state from the old one and the
// event (a pure function: nothing is changed in place, so a changed part is a new object), then
// every subscriber is told. The modules that show the room (members.js, chat.js,
// connection.js, media.js, mic.js, room.js) render from the state they are given.
//
// Remote media is kept per stream, keyed by the msid stream id the server gives it, which the
// browser's `track` event reports as `streams[0].id`: a track of its own ("<member>-<track id>",
// the protocol track's `stream`), or one of our audio slots ("slot-<k>"), which carries
// whichever speaker the server puts on it; the packets' contributing source (CSRC) names that
// speaker by their `source`, and `slotVoices` says whom we hear on each slot now. A member's
// media, slots included, is found with `mediaOf`.
//
// This module touches no browser object when it is imported, so tests can import it in Node.

/** @typedef {import('./signal.js').ChatMessage} ChatMessage */
/** @typedef {import('./signal.js').TrackKind} TrackKind */
/** @typedef {import('./signal.js').TrackSource} TrackSource */

/**
 * @typedef {'idle' | 'connecting' | 'joined' | 'reconnecting' | 'disconnected'} ConnectionStatus
 */

/**
 * A member of the room, ourselves included.
 * @typedef {object} Member
 * @property {string} id The member's id, in decimal (the key of `State.members`).
 * @property {string} name
 * @property {boolean} muted Their microphone is off, for everyone.
 * @property {boolean} speaking Speaking, as the server last said (`speakers`).
 * @property {number} source Their source id in the room: the CSRC naming them on audio slots.
 * @property {Quality} [quality] Their connection as the server sees it (`quality`), once told.
 * @property {string | null} [tag] Who they are beyond one connection, if their client has a
 *   key: the same tag when they come back (after a reload, or a server restart).
 * @property {boolean} [camera] Their camera sends now.
 * @property {boolean} [screen] Their screen share sends now.
 */

/**
 * Our own video: what our camera and screen share send now, and the tile we pinned.
 * @typedef {object} LocalVideo
 * @property {MediaStreamTrack | null} camera
 * @property {MediaStreamTrack | null} screen
 * @property {string | null} pinned The key of the tile shown big by our choice (see tiles.js).
 */

/**
 * A member's connection as the server sees it: `unconnected` when their audio never connected.
 * @typedef {'good' | 'fair' | 'poor' | 'unconnected'} Quality
 */

/**
 * A track another member publishes, as the protocol describes it.
 * @typedef {object} Track
 * @property {string} peer The publishing member's id, in decimal.
 * @property {string} id The track's id in its publisher's session.
 * @property {TrackKind} kind
 * @property {TrackSource} source
 * @property {string} stream Its msid stream id: the key of its media in `State.remoteMedia`.
 */

/**
 * A track we receive.
 * @typedef {object} RemoteMedia
 * @property {string} key The msid stream id of the track (`Track.stream`, or `slot-<k>`).
 * @property {string | null} peer The member who publishes it; null on an audio slot, which
 *   carries whoever the server puts on it (see `State.slotVoices`).
 * @property {number | null} slot The audio slot's index, or null for a track of its own.
 * @property {TrackKind} kind
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream The track's own stream, which holds it alone.
 */

/**
 * Whom we hear on one audio slot now.
 * @typedef {object} SlotVoice
 * @property {string} member Their member id.
 * @property {boolean} loud Their audio level was that of speech a moment ago.
 */

/** @typedef {Record<string, string | number>} TextArgs */

/**
 * A message of messages.js with the values for its placeholders.
 * @typedef {{key: string, args?: TextArgs}} Text
 */

/** @typedef {'rejoin' | 'reconnect_now'} NoticeAction */

/**
 * What the connection notice says.
 * @typedef {object} ConnectionNotice
 * @property {string} key
 * @property {TextArgs} [args]
 * @property {Text} [lead] A first sentence (why we reconnect).
 * @property {{due: number, attempt: number}} [countdown] The text counts down to `due` (ms
 *   since the epoch), and its values are `{s, n}`: seconds left and the attempt.
 * @property {NoticeAction} [action] The button it offers.
 */

/**
 * @typedef {object} Connection
 * @property {ConnectionStatus} status
 * @property {string | null} detail The state of the audio, as a message key shown beside
 *   the status ("audio connecting…"), or null.
 * @property {ConnectionNotice | null} notice
 * @property {number} attempt The reconnection attempt: 0 while connected.
 * @property {number} delayMs The delay of the pending retry.
 * @property {number} rejoins How often we got back into the room after a loss.
 * @property {boolean} everJoined
 * @property {boolean} leaving We are leaving: nothing reconnects.
 * @property {string | null} bye The reason of the server's last `bye`.
 */

/** @typedef {'denied' | 'not_found' | 'busy' | 'unsupported' | 'other' | 'no_audio' | 'ended'} MicProblemCode */

/**
 * Why we have no microphone: a message and a stable code.
 * @typedef {{key: string, args: TextArgs, code: MicProblemCode}} MicProblem
 */

/**
 * @typedef {object} Mic
 * @property {MediaStream | null} stream
 * @property {MediaStreamTrack | null} track The microphone we send, if we have one.
 * @property {boolean} muted Our microphone state, as everyone is shown it.
 * @property {boolean} mutedForNoMic We muted ourselves because there was no microphone.
 * @property {number} pendingEchoes Our mute changes the server has not echoed yet.
 * @property {MicProblem | null} problem
 */

/**
 * A line of the chat log: someone's message, or a line about the room ("Bob joined").
 * @typedef {{type: 'message', message: ChatMessage, mine: boolean} | {type: 'system', text: Text}} ChatEntry
 */

/**
 * @typedef {object} Chat
 * @property {ChatEntry[]} log In display order.
 * @property {Set<string>} seen `seq:ts` of every message in the log.
 * @property {number} unread Messages that arrived while the chat could not be seen.
 * @property {boolean} collapsed Folded away (on narrow screens).
 */

/**
 * @typedef {object} State
 * @property {string | null} room
 * @property {string | null} name Our own nickname, as last confirmed.
 * @property {string | null} selfId Our member id, in decimal.
 * @property {Connection} connection
 * @property {RTCPeerConnection | null} pc The peer connection with the server, once joined.
 * @property {Map<string, Member>} members By id, ourselves included.
 * @property {Map<string, Track>} tracks The tracks the others publish, by stream id.
 * @property {Map<string, RemoteMedia>} remoteMedia What we receive, by stream key.
 * @property {boolean} audioBlocked The browser would not start playback without a click.
 * @property {Set<string>} everSpoke Ids of every member ever reported speaking.
 * @property {string[]} talkers Members who speak or spoke lately, in the order they started:
 *   shown first in the member list. Every member speaking now is in it; it keeps at most
 *   `TALKERS_KEPT` of the others.
 * @property {number} audioSlots The audio slots our connection receives the room's speakers
 *   on; 0: a stream per other member's track instead.
 * @property {number} membersPending Members the server counted in `joined` that have not
 *   arrived in a page (`more_members`) yet.
 * @property {Map<string, SlotVoice>} slotVoices Whom we hear on each audio slot now, by slot key.
 * @property {{ids: Set<string>, all: boolean, names: Set<string>, tags: Set<string>}} localMutes
 *   Members silenced for us only; `tags`: the tags of those of them who have one, kept for the
 *   room (prefs.mutedTags), so that they are muted again whenever they come back, on a new
 *   connection or after a reload of ours; `names`: for those without a tag, the names of those
 *   muted before a rejoin, while the pages listing the room's members are still coming.
 * @property {Mic} mic
 * @property {LocalVideo} video
 * @property {Chat} chat
 * @property {{narrow: boolean, hidden: boolean}} page A narrow screen; a hidden page.
 * @property {{code: string, message: string}[]} errors Every `error` the server sent.
 * @property {Record<string, number>} sent Messages this page sent, by type.
 * @property {string} lang The language shown.
 * @property {string | null} speakerId The chosen output device, if any.
 */

/**
 * Everything that happens, as the store is told it.
 * @typedef {(
 *   | {type: 'room_entered', room: string, name: string, mutedTags?: string[]}
 *   | {type: 'language_changed', lang: string}
 *   | {type: 'connecting'}
 *   | {type: 'joined', selfId: string, name: string | null, tag?: string | null, members: Member[], membersTotal: number, audioSlots: number, tracks: Track[], chat: ChatMessage[]}
 *   | {type: 'more_members', members: Member[]}
 *   | {type: 'peer_started', pc: RTCPeerConnection}
 *   | {type: 'media_state', state: RTCPeerConnectionState}
 *   | {type: 'session_ended'}
 *   | {type: 'reconnect_scheduled', attempt: number, delayMs: number, due: number, reason: string}
 *   | {type: 'disconnected', notice?: ConnectionNotice}
 *   | {type: 'bye', reason: string}
 *   | {type: 'server_error', code: string, message: string}
 *   | {type: 'message_sent', msgType: string}
 *   | {type: 'leaving'}
 *   | {type: 'member_joined', member: Member}
 *   | {type: 'member_left', id: string}
 *   | {type: 'member_renamed', id: string, name: string}
 *   | {type: 'mute', id: string, muted: boolean, forced?: boolean}
 *   | {type: 'video', id: string, camera: boolean, screen: boolean}
 *   | {type: 'local_video', source: 'camera' | 'screen', track: MediaStreamTrack | null}
 *   | {type: 'tile_pinned', key: string | null}
 *   | {type: 'notice', text: string}
 *   | {type: 'speakers', ids: string[]}
 *   | {type: 'quality', members: {id: string, quality: Quality}[]}
 *   | {type: 'slot_voices', voices: Map<string, SlotVoice>}
 *   | {type: 'track_added', track: Track}
 *   | {type: 'track_removed', track: Track}
 *   | {type: 'remote_track', key: string, kind: TrackKind, track: MediaStreamTrack, stream: MediaStream}
 *   | {type: 'remote_track_ended', key: string, stream: MediaStream}
 *   | {type: 'audio_blocked'}
 *   | {type: 'audio_unblocked'}
 *   | {type: 'mic_ready', stream: MediaStream, track: MediaStreamTrack}
 *   | {type: 'mic_failed', problem: MicProblem}
 *   | {type: 'mic_ended', track: MediaStreamTrack}
 *   | {type: 'mic_released'}
 *   | {type: 'muted_set', muted: boolean, forNoMic?: boolean}
 *   | {type: 'mute_sent'}
 *   | {type: 'local_mute_toggled', id: string}
 *   | {type: 'all_muted_toggled'}
 *   | {type: 'chat_message', message: ChatMessage, history?: boolean}
 *   | {type: 'chat_cleared'}
 *   | {type: 'chat_updated', message: ChatMessage}
 *   | {type: 'chat_collapsed', collapsed: boolean}
 *   | {type: 'page_changed', narrow: boolean, hidden: boolean}
 *   | {type: 'speaker_chosen', id: string | null}
 * )} StoreEvent
 */

/**
 * Told after every event: the new state, the one before, and the event.
 * @typedef {(state: State, prev: State, event: StoreEvent) => void} Listener
 */

/** @returns {State} */
export function initialState() {
  return {
    room: null,
    name: null,
    selfId: null,
    connection: {
      status: 'idle',
      detail: null,
      notice: null,
      attempt: 0,
      delayMs: 0,
      rejoins: 0,
      everJoined: false,
      leaving: false,
      bye: null,
    },
    pc: null,
    members: new Map(),
    tracks: new Map(),
    remoteMedia: new Map(),
    audioBlocked: false,
    everSpoke: new Set(),
    talkers: [],
    audioSlots: 0,
    membersPending: 0,
    slotVoices: new Map(),
    localMutes: { ids: new Set(), all: false, names: new Set(), tags: new Set() },
    mic: { stream: null, track: null, muted: false, mutedForNoMic: false, pendingEchoes: 0, problem: null },
    video: { camera: null, screen: null, pinned: null },
    chat: { log: [], seen: new Set(), unread: 0, collapsed: false },
    page: { narrow: false, hidden: false },
    errors: [],
    sent: {},
    lang: 'en',
    speakerId: null,
  };
}

// -----------------------------------------------------------------------------------------------
// Reading the state

/** Whether the chat can be seen: not folded away on a narrow screen. */
export function chatVisible(/** @type {State} */ state) {
  return !(state.chat.collapsed && state.page.narrow);
}

/** How many former talkers who no longer speak the member list keeps first. */
export const TALKERS_KEPT = 8;

/** The index of the audio slot whose msid stream id is `key` (`slot-<k>`), or null. */
export function slotIndex(/** @type {string} */ key) {
  const m = /^slot-(\d{1,4})$/.exec(key);
  return m ? Number(m[1]) : null;
}

/**
 * The member a track key belongs to, read from the key itself (`"<member>-<track id>"`), for
 * a track the protocol has not described (yet).
 */
export function peerOfStream(/** @type {string} */ key) {
  const dash = key.indexOf('-');
  return dash < 0 ? key : key.slice(0, dash);
}

/** What member `id` sends us, track by track: their own tracks and the slots they are heard on now. */
export function mediaOf(/** @type {State} */ state, /** @type {string} */ id) {
  return [...state.remoteMedia.values()].filter(
    (m) => m.peer === id || (m.slot !== null && state.slotVoices.get(m.key)?.member === id),
  );
}

/**
 * Whether member `id` is speaking: as the server says, or loud on one of our slots now. A
 * member whose microphone is off is not, whatever was heard of them a moment before.
 */
export function speakingNow(/** @type {State} */ state, /** @type {string} */ id) {
  const member = state.members.get(id);
  if (member?.muted) return false;
  if (member?.speaking) return true;
  for (const voice of state.slotVoices.values()) if (voice.loud && voice.member === id) return true;
  return false;
}

/**
 * The order of the member list: ourselves, then who speaks or spoke lately (in the order they
 * started), then everyone else in the order the server listed them.
 * @param {State} state
 * @returns {string[]}
 */
export function memberOrder(state) {
  /** @type {string[]} */
  const order = [];
  const placed = new Set();
  /** @param {string} id */
  const place = (id) => {
    if (placed.has(id) || !state.members.has(id)) return;
    placed.add(id);
    order.push(id);
  };
  if (state.selfId !== null) place(state.selfId);
  for (const id of state.talkers) place(id);
  for (const id of state.members.keys()) place(id);
  return order;
}

/** How many members the list shows at first, and how many more each "show more" adds. */
export const LIST_PAGE = 50;

/**
 * The members the member list shows, in order (the first `limit` of `memberOrder`, or of those
 * whose name contains `query`), how many more match, and how many match in all.
 * @param {State} state
 * @param {{limit: number, query: string}} view
 */
export function shownMembers(state, { limit, query }) {
  const q = query.trim().toLocaleLowerCase();
  let order = memberOrder(state);
  if (q) order = order.filter((id) => (state.members.get(id)?.name ?? '').toLocaleLowerCase().includes(q));
  const shown = order.slice(0, limit);
  return { shown, hidden: order.length - shown.length, matches: order.length };
}

/** How many are in the room, ourselves included, counting those whose page is still coming. */
export function memberCount(/** @type {State} */ state) {
  return state.members.size + state.membersPending;
}

/** What a track we receive carries: as its publisher declared it, else the default of its kind. */
export function sourceOf(/** @type {State} */ state, /** @type {RemoteMedia} */ media) {
  const track = state.tracks.get(media.key);
  if (track) return track.source;
  return media.kind === 'audio' ? 'microphone' : 'camera';
}

/** The button state of our own microphone. */
export function muteButton(/** @type {State} */ state) {
  const mic = state.mic;
  return {
    muted: mic.muted,
    enabled: !!mic.track && state.connection.status === 'joined',
    noMic: !mic.track && !!mic.problem,
  };
}

// -----------------------------------------------------------------------------------------------
// Changing it

/**
 * @template K, V
 * @param {Map<K, V>} map
 * @param {(value: V, key: K) => boolean} keep
 * @returns {Map<K, V>} `map` itself if everything is kept
 */
function filterMap(map, keep) {
  const out = new Map();
  for (const [k, v] of map) if (keep(v, k)) out.set(k, v);
  return out.size === map.size ? map : out;
}

/**
 * @param {Map<string, Member>} members
 * @param {string} id
 * @param {Partial<Member>} change
 */
function withMember(members, id, change) {
  const member = members.get(id);
  if (!member) return members;
  return new Map(members).set(id, { ...member, ...change });
}

/**
 * `talkers` with `started` added at its end (those not in it yet), then cut back to the
 * members speaking now and the last `TALKERS_KEPT` of the others.
 * @param {string[]} talkers
 * @param {Iterable<string>} started
 * @param {(id: string) => boolean} speaking
 * @param {string | null} selfId never a talker: we are shown first anyway
 */
function withTalkers(talkers, started, speaking, selfId) {
  let out = talkers;
  for (const id of started) {
    if (id === selfId || out.includes(id)) continue;
    if (out === talkers) out = [...talkers];
    out.push(id);
  }
  let drop = out.filter((id) => !speaking(id)).length - TALKERS_KEPT;
  if (drop <= 0) return out;
  // The oldest of those who stopped make way.
  return out.filter((id) => speaking(id) || drop-- <= 0);
}

/**
 * `members` with the `speaking` flag of each set from `speakers`: the same map if nothing changed.
 * @param {Map<string, Member>} members
 * @param {Set<string>} speakers
 */
function withSpeakers(members, speakers) {
  let out = members;
  for (const [id, m] of members) {
    const speaking = speakers.has(id);
    if (m.speaking === speaking) continue;
    if (out === members) out = new Map(members);
    out.set(id, { ...m, speaking });
  }
  return out;
}

/** @param {Chat} chat @param {Text} text @returns {Chat} */
function withSystemLine(chat, text) {
  return { ...chat, log: [...chat.log, { type: 'system', text }] };
}

/**
 * Adds a message unless the log has it: sequence numbers start again in a room made afresh
 * (after a server restart), so the time tells a repeat (history after a reconnection) from a
 * new message.
 * @param {State} state
 * @param {Chat} chat
 * @param {ChatMessage} message
 * @param {boolean} history
 * @returns {Chat}
 */
function withMessage(state, chat, message, history) {
  const key = `${message.seq}:${message.ts}`;
  if (chat.seen.has(key)) return chat;
  const mine = String(message.from) === state.selfId;
  const seen = new Set(chat.seen).add(key);
  const unseen = !history && !mine && (!chatVisible({ ...state, chat }) || state.page.hidden);
  return {
    ...chat,
    log: [...chat.log, { type: 'message', message, mine }],
    seen,
    unread: chat.unread + (unseen ? 1 : 0),
  };
}

/** Unread messages are read once the chat can be seen on a visible page. @param {State} state */
function readIfVisible(state) {
  if (state.chat.unread > 0 && chatVisible(state) && !state.page.hidden) {
    return { ...state, chat: { ...state.chat, unread: 0 } };
  }
  return state;
}

/** @type {Record<string, string | null>} */
const MEDIA_DETAIL = {
  connected: null,
  failed: 'conn.audioFailed',
  disconnected: 'conn.audioInterrupted',
};

/**
 * The state after `event`.
 * @param {State} state
 * @param {StoreEvent} event
 * @returns {State}
 */
export function reduce(state, event) {
  const conn = state.connection;
  switch (event.type) {
    case 'room_entered':
      return {
        ...state,
        room: event.room,
        name: event.name,
        localMutes: { ...state.localMutes, tags: new Set(event.mutedTags ?? []) },
      };

    case 'language_changed':
      return { ...state, lang: event.lang };

    case 'connecting': {
      const again = conn.attempt > 0;
      return {
        ...state,
        connection: {
          ...conn,
          status: again ? 'reconnecting' : 'connecting',
          detail: null,
          bye: null,
          // Why we reconnect stays said until we are back.
          notice: again ? { key: 'conn.reconnectingNow', args: { n: conn.attempt }, lead: conn.notice?.lead } : conn.notice,
        },
      };
    }

    case 'joined': {
      // People muted "for me" keep that across a reconnection (their ids change): by tag, or
      // for those without one, by name.
      const tags = state.localMutes.tags;
      const mutedNames = new Set(state.localMutes.names);
      for (const id of state.localMutes.ids) {
        const name = state.members.get(id)?.name;
        if (name !== undefined) mutedNames.add(name);
      }
      // Our name in the room: the one we asked for, or that with a suffix if someone has it.
      const name = event.name ?? state.name;
      const members = new Map();
      members.set(event.selfId, {
        id: event.selfId,
        name: name ?? '',
        muted: state.mic.muted,
        speaking: false,
        source: 0,
        tag: event.tag ?? null,
      });
      const everSpoke = new Set(state.everSpoke);
      const ids = new Set();
      for (const m of event.members) {
        members.set(m.id, m);
        if (m.speaking) everSpoke.add(m.id);
        if (m.tag ? tags.has(m.tag) : mutedNames.has(m.name)) ids.add(m.id);
      }
      const membersPending = Math.max(0, event.membersTotal - event.members.length);
      const speaking = (/** @type {string} */ id) => !!members.get(id)?.speaking;
      const talkers = withTalkers(
        [],
        event.members.filter((m) => m.speaking).map((m) => m.id),
        speaking,
        event.selfId,
      );
      const rejoined = conn.everJoined;
      let chat = rejoined ? withSystemLine(state.chat, { key: 'sys.reconnected', args: {} }) : state.chat;
      const next = {
        ...state,
        name,
        selfId: event.selfId,
        members,
        membersPending,
        audioSlots: event.audioSlots,
        slotVoices: new Map(),
        talkers,
        everSpoke,
        tracks: new Map(event.tracks.map((t) => [t.stream, t])),
        localMutes: { ...state.localMutes, ids, names: membersPending > 0 ? mutedNames : new Set() },
        connection: {
          ...conn,
          status: /** @type {ConnectionStatus} */ ('joined'),
          detail: 'conn.audioConnecting',
          notice: null,
          attempt: 0,
          delayMs: 0,
          everJoined: true,
          rejoins: conn.rejoins + (rejoined ? 1 : 0),
        },
      };
      for (const message of event.chat) chat = withMessage(next, chat, message, true);
      return { ...next, chat };
    }

    case 'more_members': {
      const members = new Map(state.members);
      const names = state.localMutes.names;
      let ids = state.localMutes.ids;
      const everSpoke = new Set(state.everSpoke);
      let arrived = 0;
      for (const m of event.members) {
        if (members.has(m.id)) continue;
        arrived++;
        members.set(m.id, m);
        if (m.speaking) everSpoke.add(m.id);
        if (m.tag ? state.localMutes.tags.has(m.tag) : names.has(m.name)) {
          if (ids === state.localMutes.ids) ids = new Set(ids);
          ids.add(m.id);
        }
      }
      const membersPending = Math.max(0, state.membersPending - arrived);
      const talkers = withTalkers(
        state.talkers,
        event.members.filter((m) => m.speaking).map((m) => m.id),
        (id) => !!members.get(id)?.speaking,
        state.selfId,
      );
      const localMutes =
        ids !== state.localMutes.ids || (membersPending === 0 && names.size > 0)
          ? { ...state.localMutes, ids, names: membersPending > 0 ? names : new Set() }
          : state.localMutes;
      return { ...state, members, membersPending, everSpoke, talkers, localMutes };
    }

    case 'peer_started':
      return { ...state, pc: event.pc };

    case 'media_state': {
      if (conn.status !== 'joined') return state;
      const detail = event.state in MEDIA_DETAIL ? MEDIA_DETAIL[event.state] : 'conn.audioConnecting';
      return { ...state, connection: { ...conn, detail } };
    }

    case 'session_ended': {
      return {
        ...state,
        pc: null,
        members: withSpeakers(state.members, new Set()),
        tracks: new Map(),
        remoteMedia: new Map(),
        slotVoices: new Map(),
        mic: { ...state.mic, pendingEchoes: 0 },
      };
    }

    case 'reconnect_scheduled':
      return {
        ...state,
        connection: {
          ...conn,
          status: 'reconnecting',
          detail: null,
          attempt: event.attempt,
          delayMs: event.delayMs,
          notice: {
            key: 'conn.reconnectIn',
            lead: { key: event.reason, args: { code: '' } },
            countdown: { due: event.due, attempt: event.attempt },
            action: 'reconnect_now',
          },
        },
      };

    case 'disconnected':
      return {
        ...state,
        connection: {
          ...conn,
          status: 'disconnected',
          detail: null,
          notice: event.notice === undefined ? conn.notice : event.notice,
        },
      };

    case 'bye':
      return { ...state, connection: { ...conn, bye: event.reason } };

    case 'server_error': {
      const errors = [...state.errors, { code: event.code, message: event.message }];
      // An unmute the server refused: we stay muted.
      if (event.code === 'muted_for_everyone') return { ...state, errors, mic: { ...state.mic, pendingEchoes: 0, muted: true } };
      return { ...state, errors };
    }

    case 'message_sent':
      return { ...state, sent: { ...state.sent, [event.msgType]: (state.sent[event.msgType] ?? 0) + 1 } };

    case 'leaving':
      return { ...state, connection: { ...conn, leaving: true } };

    case 'member_joined': {
      const m = event.member;
      const everSpoke = m.speaking ? new Set(state.everSpoke).add(m.id) : state.everSpoke;
      const members = new Map(state.members).set(m.id, m);
      // Someone we muted for ourselves, back on a new connection.
      const localMutes = m.tag && state.localMutes.tags.has(m.tag) ? { ...state.localMutes, ids: new Set(state.localMutes.ids).add(m.id) } : state.localMutes;
      const talkers = m.speaking ? withTalkers(state.talkers, [m.id], (id) => !!members.get(id)?.speaking, state.selfId) : state.talkers;
      return {
        ...state,
        members,
        everSpoke,
        talkers,
        localMutes,
        chat: withSystemLine(state.chat, { key: 'sys.joined', args: { name: m.name } }),
      };
    }

    case 'member_left': {
      const id = event.id;
      const member = state.members.get(id);
      const members = filterMap(state.members, (_, k) => k !== id);
      let localMutes = state.localMutes;
      if (localMutes.ids.has(id)) {
        const ids = new Set(localMutes.ids);
        ids.delete(id);
        localMutes = { ...localMutes, ids };
      }
      return {
        ...state,
        members,
        localMutes,
        talkers: state.talkers.includes(id) ? state.talkers.filter((t) => t !== id) : state.talkers,
        slotVoices: filterMap(state.slotVoices, (v) => v.member !== id),
        tracks: filterMap(state.tracks, (t) => t.peer !== id),
        remoteMedia: filterMap(state.remoteMedia, (m) => m.peer !== id),
        chat: member ? withSystemLine(state.chat, { key: 'sys.left', args: { name: member.name } }) : state.chat,
      };
    }

    case 'member_renamed': {
      const member = state.members.get(event.id);
      if (!member) return state;
      const old = member.name;
      const self = event.id === state.selfId;
      return {
        ...state,
        members: withMember(state.members, event.id, { name: event.name }),
        name: self ? event.name : state.name,
        chat: old !== event.name ? withSystemLine(state.chat, { key: 'sys.renamed', args: { old, name: event.name } }) : state.chat,
      };
    }

    case 'notice':
      return { ...state, chat: withSystemLine(state.chat, { key: 'sys.notice', args: { text: event.text } }) };

    case 'mute': {
      if (!state.members.has(event.id)) return state;
      let mic = state.mic;
      if (event.id === state.selfId && event.forced) {
        // The operator muted us for everyone: we are muted, whatever toggles are on their way.
        const chat = withSystemLine(state.chat, { key: 'sys.muted_for_everyone', args: {} });
        mic = { ...mic, pendingEchoes: 0, muted: true };
        return { ...state, mic, chat, members: withMember(state.members, event.id, { muted: true }) };
      }
      if (event.id === state.selfId) {
        // Our own change, echoed. While later toggles are still on their way, keep what we show.
        const pending = Math.max(0, mic.pendingEchoes - 1);
        if (pending > 0) return { ...state, mic: { ...mic, pendingEchoes: pending } };
        mic = { ...mic, pendingEchoes: 0, muted: event.muted };
      }
      return { ...state, mic, members: withMember(state.members, event.id, { muted: event.muted }) };
    }

    case 'video':
      return { ...state, members: withMember(state.members, event.id, { camera: event.camera, screen: event.screen }) };

    case 'local_video':
      return { ...state, video: { ...state.video, [event.source]: event.track } };

    case 'tile_pinned':
      return { ...state, video: { ...state.video, pinned: event.key } };

    case 'speakers': {
      const speakers = new Set(event.ids.filter((id) => state.members.has(id)));
      const members = withSpeakers(state.members, speakers);
      if (members === state.members) return state;
      const fresh = [...speakers].filter((id) => !state.everSpoke.has(id));
      const everSpoke = fresh.length > 0 ? new Set([...state.everSpoke, ...fresh]) : state.everSpoke;
      const next = { ...state, members, everSpoke };
      return { ...next, talkers: withTalkers(state.talkers, speakers, (id) => speakingNow(next, id), state.selfId) };
    }

    case 'quality': {
      let members = state.members;
      for (const { id, quality } of event.members) {
        const m = members.get(id);
        if (m && m.quality !== quality) members = withMember(members, id, { quality });
      }
      return members === state.members ? state : { ...state, members };
    }

    case 'slot_voices': {
      const next = { ...state, slotVoices: event.voices };
      const loud = [...event.voices.values()].filter((v) => v.loud && state.members.has(v.member)).map((v) => v.member);
      return { ...next, talkers: withTalkers(state.talkers, loud, (id) => speakingNow(next, id), state.selfId) };
    }

    case 'track_added': {
      const t = event.track;
      // Media that arrived first was attributed by its key; the protocol's word is final.
      const known = state.remoteMedia.get(t.stream);
      const remoteMedia = known && known.slot === null && known.peer !== t.peer ? new Map(state.remoteMedia).set(t.stream, { ...known, peer: t.peer }) : state.remoteMedia;
      return { ...state, tracks: new Map(state.tracks).set(t.stream, t), remoteMedia };
    }

    case 'track_removed': {
      const key = event.track.stream;
      return {
        ...state,
        tracks: filterMap(state.tracks, (_, k) => k !== key),
        remoteMedia: filterMap(state.remoteMedia, (_, k) => k !== key),
      };
    }

    case 'remote_track': {
      const known = state.tracks.get(event.key);
      const slot = slotIndex(event.key);
      /** @type {RemoteMedia} */
      const media = {
        key: event.key,
        peer: slot !== null ? null : known ? known.peer : peerOfStream(event.key),
        slot,
        kind: event.kind,
        track: event.track,
        stream: event.stream,
      };
      return { ...state, remoteMedia: new Map(state.remoteMedia).set(event.key, media) };
    }

    case 'remote_track_ended': {
      if (state.remoteMedia.get(event.key)?.stream !== event.stream) return state;
      return { ...state, remoteMedia: filterMap(state.remoteMedia, (_, k) => k !== event.key) };
    }

    case 'audio_blocked':
      return { ...state, audioBlocked: true };

    case 'audio_unblocked':
      return { ...state, audioBlocked: false };

    case 'mic_ready':
      return { ...state, mic: { ...state.mic, stream: event.stream, track: event.track, problem: null } };

    case 'mic_failed':
      // A microphone we still have is not a problem: only a switch to another one failed.
      if (state.mic.track) return state;
      return { ...state, mic: { ...state.mic, problem: event.problem } };

    case 'mic_ended':
      if (state.mic.track !== event.track) return state;
      return { ...state, mic: { ...state.mic, track: null, problem: { key: 'mic.ended', args: {}, code: 'ended' } } };

    case 'mic_released':
      return { ...state, mic: { ...state.mic, stream: null, track: null } };

    case 'muted_set': {
      const mic = { ...state.mic, muted: event.muted, mutedForNoMic: !!event.forNoMic };
      const members = state.selfId ? withMember(state.members, state.selfId, { muted: event.muted }) : state.members;
      return { ...state, mic, members };
    }

    case 'mute_sent':
      return { ...state, mic: { ...state.mic, pendingEchoes: state.mic.pendingEchoes + 1 } };

    case 'local_mute_toggled': {
      const ids = new Set(state.localMutes.ids);
      const tag = state.members.get(event.id)?.tag;
      let tags = state.localMutes.tags;
      if (ids.has(event.id)) {
        ids.delete(event.id);
        if (tag && tags.has(tag)) {
          tags = new Set(tags);
          tags.delete(tag);
        }
      } else {
        ids.add(event.id);
        if (tag && !tags.has(tag)) tags = new Set(tags).add(tag);
      }
      return { ...state, localMutes: { ...state.localMutes, ids, tags } };
    }

    case 'all_muted_toggled':
      return { ...state, localMutes: { ...state.localMutes, all: !state.localMutes.all } };

    case 'chat_message':
      return { ...state, chat: withMessage(state, state.chat, event.message, !!event.history) };

    case 'chat_cleared':
      // A moderator cleared the chat: every message goes, lines about the room stay.
      return {
        ...state,
        chat: { ...state.chat, log: state.chat.log.filter((e) => e.type !== 'message'), seen: new Set(), unread: 0 },
      };
    case 'chat_updated': {
      // The message as it is now, in its place (the same seq and time: the same message).
      const m = event.message;
      const i = state.chat.log.findIndex((e) => e.type === 'message' && e.message.seq === m.seq && e.message.ts === m.ts);
      if (i < 0) return state;
      const log = [...state.chat.log];
      const entry = log[i];
      if (entry.type === 'message') log[i] = { ...entry, message: m };
      return { ...state, chat: { ...state.chat, log } };
    }

    case 'chat_collapsed':
      return readIfVisible({ ...state, chat: { ...state.chat, collapsed: event.collapsed } });

    case 'page_changed':
      return readIfVisible({ ...state, page: { narrow: event.narrow, hidden: event.hidden } });

    case 'speaker_chosen':
      return { ...state, speakerId: event.id };

    default:
      return state;
  }
}

// -----------------------------------------------------------------------------------------------
// The store

/** Reports an error thrown by a subscriber without stopping the others. */
function report(/** @type {unknown} */ err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else setTimeout(() => {
    throw err;
  });
}

/**
 * A store holding `initial`. Events dispatched while subscribers are being told of another
 * wait for them to finish, so every subscriber sees the events in order.
 * @param {State} [initial]
 */
export function createStore(initial = initialState()) {
  let state = initial;
  /** @type {Set<Listener>} */
  const listeners = new Set();
  /** @type {StoreEvent[]} */
  const queue = [];
  let busy = false;

  return {
    /** The current state. Never change it: dispatch an event. */
    getState() {
      return state;
    },

    /** @param {StoreEvent} event */
    dispatch(event) {
      queue.push(event);
      if (busy) return;
      busy = true;
      try {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const prev = state;
          state = reduce(prev, next);
          for (const listener of [...listeners]) {
            try {
              listener(state, prev, next);
            } catch (err) {
              report(err);
            }
          }
        }
      } finally {
        busy = false;
      }
    },

    /**
     * Calls `listener` after every event from now on; returns a function that stops it.
     * @param {Listener} listener
     */
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

/** @typedef {ReturnType<typeof createStore>} Store */

/** The page's store. */
export const store = createStore();

/**
 * A module's `mount` for a module that only renders: the first call subscribes `render` to the
 * store and renders the state as it is; later calls do nothing.
 * @param {(state: State, prev: State | null) => void} render
 * @returns {() => void}
 */
export function renderingFromStore(render) {
  let mounted = false;
  return () => {
    if (mounted) return;
    mounted = true;
    store.subscribe(render);
    render(store.getState(), null);
  };
}
