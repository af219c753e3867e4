// @ts-check
// The admin console: polls this node's admin API every two seconds, shows its rooms and their
// members, and asks before every action. The token lives in sessionStorage (this tab only) and
// goes with each call as `Authorization: Bearer`.

const API = '/admin/api';
const TOKEN_KEY = 'free4chat-admin-token';
const POLL_MS = 2000;
/** The server samples its last hour every ten seconds; no need to ask more often. */
const HISTORY_MS = 10_000;

/**
 * A member's connection as the server measures it (null until their media session reports).
 * @typedef {{ connected: boolean, loss_in: number | null, loss_out: number | null,
 *   jitter: number | null, rtt: number | null, bitrate_in: number, bitrate_out: number,
 *   path: string | null, quality: string | null }} Connection
 * @typedef {{ id: number, name: string, muted: boolean, muted_for_everyone: boolean,
 *   speaking: boolean, connection: Connection | null }} Member
 * @typedef {{ room: string, id: string, members: Member[], max_members: number | null,
 *   chat_messages: number }} Room
 * A sample of the node's last hour, as `GET /admin/api/history` gives it (`t` in Unix seconds;
 * packets per second over the interval before it).
 * @typedef {{ t: number, rooms: number, members: number, packets_in: number,
 *   packets_out: number }} Sample
 */

/** @param {string} id */
function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

/** @param {string} id */
function input(id) {
  const e = el(id);
  if (!(e instanceof HTMLInputElement)) throw new Error(`#${id} is not an input`);
  return e;
}

/**
 * A new element with text and classes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [text]
 * @param {string} [cls]
 * @returns {HTMLElementTagNameMap[K]}
 */
function make(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** Raised for a 401: the token is wrong or was changed on the server. */
class Unauthorized extends Error {}

/** The node's last hour, as last fetched. @type {Sample[]} */
let samples = [];
/** When the history was last fetched (ms). */
let historyAt = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
/** Rooms as last polled, by name. @type {Map<string, Room>} */
let rooms = new Map();

/**
 * Calls the API with the kept token.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {string | null} [token]
 * @returns {Promise<any>}
 */
async function call(method, path, body, token = sessionStorage.getItem(TOKEN_KEY)) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${token ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${API}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (res.status === 401) throw new Unauthorized('unauthorized');
  const text = await res.text();
  /** @type {any} */
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new Error(data && typeof data.message === 'string' ? data.message : `HTTP ${res.status}`);
  }
  return data;
}

/** @param {string} message */
function showLogin(message = '') {
  clearTimeout(timer);
  el('console').hidden = true;
  el('sign-out').hidden = true;
  el('login').hidden = false;
  el('login-error').textContent = message;
  el('status').textContent = '';
  input('token').value = '';
  input('token').focus();
}

function showConsole() {
  el('login').hidden = true;
  el('console').hidden = false;
  el('sign-out').hidden = false;
}

/** Polls once, draws, and plans the next poll. */
async function poll() {
  clearTimeout(timer);
  try {
    const data = await call('GET', '/rooms');
    /** @type {Room[]} */
    const list = Array.isArray(data?.rooms) ? data.rooms : [];
    rooms = new Map(list.map((r) => [r.room, r]));
    if (Date.now() - historyAt >= HISTORY_MS) {
      const history = await call('GET', '/history');
      samples = Array.isArray(history?.samples) ? history.samples : [];
      historyAt = Date.now();
      drawCharts();
    }
    render(list);
    el('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('The token was refused: it is not (or no longer) this node\'s admin token.');
      return;
    }
    el('status').textContent = `cannot reach the admin API: ${e instanceof Error ? e.message : e}`;
  }
  timer = setTimeout(poll, POLL_MS);
}

/**
 * Draws lines in an SVG box of 600 × 120 by its id: time left to right over the samples, zero
 * at the bottom, the top at the largest value of any of the lines. Returns that top.
 * @param {string} svg
 * @param {{ id: string, value: (s: Sample) => number }[]} lines
 */
function drawLines(svg, lines) {
  const first = samples[0];
  const last = samples[samples.length - 1];
  const span = Math.max(last.t - first.t, 1);
  const top = Math.max(1, ...samples.flatMap((s) => lines.map((l) => l.value(s))));
  for (const line of lines) {
    const points = samples
      .map((s) => `${(((s.t - first.t) / span) * 600).toFixed(1)},${(118 - (line.value(s) / top) * 112).toFixed(1)}`)
      .join(' ');
    el(line.id).setAttribute('points', points);
  }
  el(svg).dataset.samples = String(samples.length);
  return top;
}

/** Draws the node's last hour: members and rooms, and media packets per second. */
function drawCharts() {
  const last = samples[samples.length - 1];
  if (!last) return;
  const topCounts = drawLines('chart', [
    { id: 'line-members', value: (s) => s.members },
    { id: 'line-rooms', value: (s) => s.rooms },
  ]);
  const topPackets = drawLines('chart-packets', [
    { id: 'line-in', value: (s) => s.packets_in },
    { id: 'line-out', value: (s) => s.packets_out },
  ]);
  el('now-members').textContent = String(last.members);
  el('now-rooms').textContent = String(last.rooms);
  el('now-in').textContent = String(Math.round(last.packets_in));
  el('now-out').textContent = String(Math.round(last.packets_out));
  const from = `from ${new Date(samples[0].t * 1000).toLocaleTimeString()}`;
  el('chart-from').textContent = from;
  el('chart-packets-from').textContent = from;
  el('chart-max').textContent = `top of the chart: ${topCounts}`;
  el('chart-packets-max').textContent = `top of the chart: ${Math.round(topPackets)} per second`;
}

/** @param {Room[]} list */
function render(list) {
  el('no-rooms').hidden = list.length > 0;
  const box = el('rooms');
  box.replaceChildren(...list.map(roomView));
}

/**
 * @param {string} label
 * @param {string} action
 * @param {() => void} onClick
 * @param {boolean} [danger]
 */
function button(label, action, onClick, danger = false) {
  const b = make('button', label, danger ? 'danger' : undefined);
  b.type = 'button';
  b.dataset.action = action;
  b.addEventListener('click', onClick);
  return b;
}

/** @param {Room} room */
function roomView(room) {
  const path = `/rooms/${encodeURIComponent(room.room)}`;
  const section = make('section', undefined, 'room');
  section.dataset.room = room.room;
  const head = make('div', undefined, 'room-head');
  const limit = room.max_members === null ? 'server limit' : `limit ${room.max_members}`;
  head.append(
    make('h3', room.room),
    make('span', `${room.members.length} member${room.members.length === 1 ? '' : 's'} · ${limit} · ${room.chat_messages} chat messages`, 'facts'),
  );
  const actions = make('div', undefined, 'actions');
  actions.append(
    button('Send notice', 'notice', () =>
      ask({
        title: `Notice to “${room.room}”`,
        text: 'Everyone in the room sees it in their chat.',
        field: { label: 'Notice', value: '' },
        ok: 'Send',
        run: (text) => call('POST', `${path}/notice`, { text }),
      })),
    button('Member limit', 'limits', () =>
      ask({
        title: `Member limit of “${room.room}”`,
        text: 'Those already in stay. Leave it empty for the server\'s limit.',
        field: { label: 'Most members', value: room.max_members === null ? '' : String(room.max_members), type: 'number' },
        ok: 'Set limit',
        run: (value) => {
          const trimmed = value.trim();
          const n = trimmed === '' ? null : Number(trimmed);
          if (n !== null && (!Number.isInteger(n) || n < 1)) throw new Error('a whole number, 1 or more');
          return call('PUT', `${path}/limits`, { max_members: n });
        },
      })),
    button('Close room', 'close', () =>
      ask({
        title: `Close “${room.room}”?`,
        text: `All ${room.members.length} members are told the room was closed.`,
        ok: 'Close room',
        run: () => call('POST', `${path}/close`),
      }), true),
  );
  head.append(actions);
  section.append(head);

  if (room.members.length === 0) {
    section.append(make('p', 'Nobody in the room.', 'quiet'));
    return section;
  }
  const table = make('table');
  const thead = make('thead');
  const hr = make('tr');
  for (const h of ['Name', 'Muted', 'Muted for everyone', 'Speaking', 'Connection', '']) hr.append(make('th', h));
  thead.append(hr);
  const body = make('tbody');
  for (const m of room.members) {
    const tr = make('tr');
    tr.dataset.member = String(m.id);
    const who = make('td', m.name || '(no name)');
    who.title = `member ${m.id}`;
    const forced = m.muted_for_everyone;
    tr.append(
      who,
      make('td', m.muted ? 'muted' : '—', m.muted ? 'quiet' : undefined),
      tagCell(forced, 'muted for everyone', 'yes', 'forced'),
      tagCell(m.speaking, 'speaking', 'speaking', 'speaking'),
      connectionCell(m.connection),
    );
    const cell = make('td', undefined, 'actions');
    cell.append(
      button(forced ? 'Unmute for everyone' : 'Mute for everyone', forced ? 'unmute' : 'mute', () =>
        ask({
          title: forced ? `Let ${m.name} speak again?` : `Mute ${m.name} for everyone?`,
          text: forced
            ? 'They stay muted until they unmute themselves.'
            : 'Nobody hears them, and they cannot unmute until this is lifted.',
          ok: forced ? 'Unmute for everyone' : 'Mute for everyone',
          run: () => call('POST', `${path}/members/${m.id}/mute`, { muted: !forced }),
        })),
      button('Remove', 'remove', () =>
        ask({
          title: `Remove ${m.name} from “${room.room}”?`,
          text: 'They are told they were removed. They may join again.',
          ok: 'Remove',
          run: () => call('DELETE', `${path}/members/${m.id}`),
        }), true),
    );
    tr.append(cell);
    body.append(tr);
  }
  table.append(thead, body);
  section.append(table);
  return section;
}

/** @param {number | null} f a fraction */
const percent = (f) => (f === null ? '–' : `${(f * 100).toFixed(1)} %`);
/** @param {number | null} ms */
const millis = (ms) => (ms === null ? '–' : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`);
/** @param {number} bits per second */
const kbits = (bits) => `${Math.round(bits / 1000)}`;

/**
 * The member's connection: the level the room is told, then loss each way, round trip,
 * jitter, bitrate each way and the path.
 * @param {Connection | null} c
 */
function connectionCell(c) {
  const td = make('td', undefined, 'connection');
  td.dataset.field = 'connection';
  if (!c) {
    td.append(make('span', 'no media session', 'quiet'));
    return td;
  }
  const level = c.quality ?? (c.connected ? 'measuring' : 'connecting');
  const tag = make('span', level, `tag q-${level}`);
  tag.dataset.quality = level;
  const figures = c.connected
    ? [
        `loss ${percent(c.loss_in)} in, ${percent(c.loss_out)} out`,
        `rtt ${millis(c.rtt)}`,
        `jitter ${millis(c.jitter)}`,
        `${kbits(c.bitrate_in)}/${kbits(c.bitrate_out)} kbit/s`,
        c.path ?? '–',
      ].join(' · ')
    : 'media not connected';
  const facts = make('span', figures, 'figures');
  td.append(tag, facts);
  return td;
}

/**
 * @param {boolean} on
 * @param {string} label
 * @param {string} cls
 * @param {string} key
 */
function tagCell(on, label, cls, key) {
  const td = make('td');
  td.dataset.field = key;
  td.append(on ? make('span', label, `tag ${cls}`) : make('span', '—', 'quiet'));
  return td;
}

/**
 * @typedef {{ title: string, text: string, ok: string,
 *   field?: { label: string, value: string, type?: string },
 *   run: (value: string) => Promise<unknown> }} Question
 */

/** @type {Question | null} */
let asking = null;

/** Asks for confirmation (and a value, if the action takes one), then acts. @param {Question} q */
function ask(q) {
  asking = q;
  const dialog = /** @type {HTMLDialogElement} */ (el('confirm'));
  el('confirm-title').textContent = q.title;
  el('confirm-text').textContent = q.text;
  el('confirm-ok').textContent = q.ok;
  el('confirm-error').textContent = '';
  el('confirm-field').hidden = !q.field;
  const field = input('confirm-input');
  if (q.field) {
    el('confirm-label').textContent = q.field.label;
    field.type = q.field.type ?? 'text';
    field.value = q.field.value;
  }
  dialog.showModal();
  if (q.field) field.focus();
}

async function confirmed() {
  const q = asking;
  if (!q) return;
  const ok = /** @type {HTMLButtonElement} */ (el('confirm-ok'));
  ok.disabled = true;
  try {
    await q.run(input('confirm-input').value);
    asking = null;
    /** @type {HTMLDialogElement} */ (el('confirm')).close();
    await poll();
  } catch (e) {
    if (e instanceof Unauthorized) {
      /** @type {HTMLDialogElement} */ (el('confirm')).close();
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('The token was refused: it is not (or no longer) this node\'s admin token.');
    } else {
      el('confirm-error').textContent = `Not done: ${e instanceof Error ? e.message : e}`;
    }
  } finally {
    ok.disabled = false;
  }
}

el('confirm-ok').addEventListener('click', () => void confirmed());
el('confirm-cancel').addEventListener('click', () => {
  asking = null;
  /** @type {HTMLDialogElement} */ (el('confirm')).close();
});
input('confirm-input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') void confirmed();
});

el('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = input('token').value.trim();
  el('login-error').textContent = '';
  try {
    await call('GET', '/rooms', undefined, token);
  } catch (err) {
    el('login-error').textContent = err instanceof Unauthorized
      ? 'Wrong token: the admin API refused it.'
      : `Cannot reach the admin API: ${err instanceof Error ? err.message : err}`;
    input('token').select();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  showConsole();
  void poll();
});

el('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});

if (sessionStorage.getItem(TOKEN_KEY)) {
  showConsole();
  void poll();
} else {
  showLogin();
}
