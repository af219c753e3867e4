// @ts-check
// free4chat web client: routing (the start page or a room), the language, and `window.f4c`, a
// read-only view of the store for the end-to-end tests and the console.

import { homePage } from './home.js';
import * as i18n from './i18n.js';
import { hydrateIcons } from './icons.js';
import * as prefs from './prefs.js';
import { roomPage } from './room.js';
import { mediaOf, memberCount, memberOrder, speakingNow, store } from './state.js';
import * as chatlog from './chatlog.js';
import * as ui from './ui.js';

// In-app browsers that commonly lack microphone access.
const IN_APP_UA = /FBAN|FBAV|FB_IAB|Instagram|Line\/|MicroMessenger|WeChat|Weibo|QQ\/|Twitter|Snapchat|TikTok|musical_ly|BytedanceWebview|LinkedInApp|; wv\)/i;

// -----------------------------------------------------------------------------------------------
// The store, as the console and the tests see it: every field is read from the current state,
// and nothing can be written through it.

const state = () => store.getState();

const f4c = Object.freeze({
  /** The whole state (read it; change nothing). */
  getState: state,
  /** What member `id` sends us, track by track, and the slots we hear them on now. @param {string} id */
  mediaOf: (id) => mediaOf(state(), id),
  /** Whether member `id` is shown speaking (as the server says, or loud on one of our slots). @param {string} id */
  speakingNow: (id) => speakingNow(state(), id),
  /** The member list's order: ourselves, who speaks or spoke lately, everyone else. */
  memberOrder: () => memberOrder(state()),
  /** 'idle' | 'connecting' | 'joined' | 'reconnecting' | 'disconnected' */
  get state() {
    return state().connection.status;
  },
  get room() {
    return state().room;
  },
  /** Our own nickname as last confirmed. */
  get name() {
    return state().name;
  },
  /** Our member id, as a decimal string (the key used in `members`). */
  get selfId() {
    return state().selfId;
  },
  /** id (decimal string) → {id, name, muted, speaking, source}, ourselves included. */
  get members() {
    return state().members;
  },
  /** How many are in the room, ourselves included (those whose page is still coming too). */
  get memberCount() {
    return memberCount(state());
  },
  /** The audio slots we receive speakers on (0: a stream per member's track). */
  get audioSlots() {
    return state().audioSlots;
  },
  /** Whom we hear on each audio slot now: slot key → {member, loud}. */
  get slotVoices() {
    return state().slotVoices;
  },
  /** The others' tracks as the protocol describes them, by stream id. */
  get tracks() {
    return state().tracks;
  },
  /** What we receive, by stream key (the msid stream id): {key, peer, slot, kind, track, stream}. */
  get remoteMedia() {
    return state().remoteMedia;
  },
  /** The RTCPeerConnection with the server, once joined. */
  get pc() {
    return state().pc;
  },
  /** Chat messages in display order: history, others' messages and our acknowledged ones. */
  get chat() {
    return state().chat.log.flatMap((e) => (e.type === 'message' ? [e.message] : []));
  },
  /** Ids of every member (ourselves included) ever reported speaking. */
  get everSpoke() {
    return state().everSpoke;
  },
  /** Every `error` the server sent: {code, message}. */
  get errors() {
    return state().errors;
  },
  /** The reason of the server's last `bye`, if any. */
  get bye() {
    return state().connection.bye;
  },
  /** Our microphone state. */
  get muted() {
    return state().mic.muted;
  },
  /** The microphone problem in words (current language), if the microphone could not be opened. */
  get micError() {
    const problem = state().mic.problem;
    return problem ? i18n.t(problem.key, problem.args) : null;
  },
  /** The same as a stable code: 'denied' | 'not_found' | 'busy' | 'unsupported' | 'other' | 'no_audio' | 'ended'. */
  get micErrorCode() {
    return state().mic.problem?.code ?? null;
  },
  /** Reconnection: attempt (0 while connected), delayMs of the pending retry, count of rejoins. */
  get reconnect() {
    const c = state().connection;
    return { attempt: c.attempt, delayMs: c.delayMs, rejoins: c.rejoins };
  },
  /** Member ids we silenced for ourselves only. */
  get locallyMuted() {
    return state().localMutes.ids;
  },
  /** Everyone silenced for ourselves only. */
  get allMutedForMe() {
    return state().localMutes.all;
  },
  /** Chat messages that arrived while the chat was folded away. */
  get unread() {
    return state().chat.unread;
  },
  /** The language shown. */
  get lang() {
    return state().lang;
  },
  /** The chosen output device, if any. */
  get speakerId() {
    return state().speakerId;
  },
  /** Messages this page sent, by type (counts), for tests: e.g. sent.mute. */
  get sent() {
    return state().sent;
  },
});
Object.defineProperty(window, 'f4c', { value: f4c, enumerable: true });

// -----------------------------------------------------------------------------------------------
// Language

function initLanguage() {
  const stored = prefs.language.get();
  const lang = stored && i18n.isLanguage(stored) ? stored : i18n.pickLanguage(navigator.languages ?? [navigator.language]);
  i18n.setLanguage(lang);
  store.dispatch({ type: 'language_changed', lang: i18n.getLanguage() });
  document.documentElement.lang = i18n.getLanguage();
  i18n.onLanguageChange((code) => {
    store.dispatch({ type: 'language_changed', lang: code });
    document.documentElement.lang = code;
    i18n.translate(document);
    ui.updateTitle();
    chatlog.refreshChatTimes();
    ui.refreshRecentTimes();
  });
  ui.fillLanguages(i18n.LANGUAGES, i18n.getLanguage(), (code) => {
    prefs.language.set(code);
    i18n.setLanguage(code);
  });
  i18n.translate(document);
}

// -----------------------------------------------------------------------------------------------
// Routing

/** @param {string} s */
function decodeSegment(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function route() {
  hydrateIcons(document);
  initLanguage();
  ui.$('inapp-warning').hidden = !IN_APP_UA.test(navigator.userAgent);
  const m = window.location.pathname.match(/^\/room\/([^/]*)\/?$/);
  if (m) {
    roomPage(decodeSegment(m[1]));
    return;
  }
  ui.setRoomTitle(null);
  // The server answers any other address with this page (and a 404): say so, with a way home.
  if (window.location.pathname === '/') homePage();
  else ui.showView('not-found');
}

// A page left for the start page and brought back from the browser's cache would show a room
// it is no longer in: load it afresh (its address then asks for a nickname first).
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted && state().connection.leaving) window.location.reload();
});

route();
