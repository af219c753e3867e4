// Everything that touches the page. User-supplied strings (nicknames, chat text, room names)
// only ever reach the DOM through textContent or attribute setters, never as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A small microphone-with-a-slash icon, drawn here so the page loads nothing from elsewhere. */
function micOffIcon() {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '18');
  svg.setAttribute('height', '18');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const parts = [
    ['rect', { x: '9', y: '3', width: '6', height: '11', rx: '3' }],
    ['path', { d: 'M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21M8.5 21h7' }],
    ['path', { d: 'M4 4l16 16' }],
  ];
  for (const [tag, attrs] of parts) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    svg.appendChild(node);
  }
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Views and status

const VIEWS = ['home', 'ask-name', 'fatal', 'room'];

export function showView(name) {
  for (const v of VIEWS) $(v).hidden = v !== name;
}

export function showFatal(text) {
  $('fatal-text').textContent = text;
  showView('fatal');
}

export function setRoomTitle(room) {
  const t = $('room-title');
  t.textContent = room ? `# ${room}` : '';
  t.hidden = !room;
  document.title = room ? `${room} · free4chat` : 'free4chat';
}

const STATE_TEXT = {
  connecting: 'Connecting…',
  joined: 'Connected',
  disconnected: 'Disconnected',
};

/** Shows the connection state; `detail` adds a short note (e.g. the audio state). */
export function setConnection(state, detail = '') {
  document.body.dataset.state = state;
  const conn = $('conn');
  conn.hidden = !(state in STATE_TEXT);
  conn.dataset.state = state;
  $('conn-text').textContent = (STATE_TEXT[state] ?? state) + (detail ? ` · ${detail}` : '');
}

/** A persistent message at the top of the room (e.g. why the connection ended). */
export function setNotice(text, action) {
  const n = $('room-notice');
  n.replaceChildren();
  if (!text) {
    n.hidden = true;
    return;
  }
  n.appendChild(el('span', '', text));
  if (action) {
    const b = el('button', 'notice-action', action.label);
    b.type = 'button';
    b.addEventListener('click', action.onClick);
    n.appendChild(b);
  }
  n.hidden = false;
}

/** A short-lived message in the corner (errors from the server and the like). */
export function toast(text, kind = 'info', ms = 6000) {
  const box = $('toasts');
  const t = el('div', `toast toast-${kind}`, text);
  t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.appendChild(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => t.remove(), ms);
}

export function setFieldError(id, text) {
  const p = $(id);
  p.textContent = text || '';
  p.hidden = !text;
  const input = document.querySelector(`[aria-describedby="${id}"]`);
  if (input) input.setAttribute('aria-invalid', text ? 'true' : 'false');
}

// ---------------------------------------------------------------------------------------------
// Members

/**
 * Renders the member list: `members` is a Map id → {name, muted, speaking}; `selfId` is ours.
 * Entries are kept per id and updated in place, so frequent speaking changes stay cheap.
 */
export function renderMembers(members, selfId) {
  const list = $('members');
  const order = [...members.keys()];
  if (selfId !== null && members.has(selfId)) {
    order.splice(order.indexOf(selfId), 1);
    order.unshift(selfId);
  }
  const existing = new Map();
  for (const li of list.children) existing.set(li.dataset.memberId, li);
  for (const [id, li] of existing) if (!members.has(id)) li.remove();

  let prev = null;
  for (const id of order) {
    const m = members.get(id);
    let li = existing.get(id);
    if (!li) li = memberItem(id);
    updateMemberItem(li, m, id === selfId);
    const want = prev ? prev.nextElementSibling : list.firstElementChild;
    if (want !== li) list.insertBefore(li, want);
    prev = li;
  }
  $('member-count').textContent = `(${members.size})`;
}

function memberItem(id) {
  const li = el('li', 'member');
  li.dataset.memberId = id;
  const avatar = el('span', 'avatar');
  avatar.setAttribute('aria-hidden', 'true');
  const who = el('span', 'who');
  who.append(el('span', 'name'), el('span', 'you', ' (you)'));
  const mic = el('span', 'mic-off');
  mic.title = 'Microphone off';
  mic.appendChild(micOffIcon());
  mic.appendChild(el('span', 'visually-hidden', 'muted'));
  // Three small bars that move while the member speaks.
  const speaking = el('span', 'speaking-badge');
  speaking.title = 'Speaking';
  speaking.append(el('i'), el('i'), el('i'), el('span', 'visually-hidden', 'speaking'));
  li.append(avatar, who, mic, speaking);
  return li;
}

function updateMemberItem(li, m, isSelf) {
  const name = li.querySelector('.name');
  if (name.textContent !== m.name) name.textContent = m.name;
  const initial = [...m.name.trim()][0] ?? '?';
  li.querySelector('.avatar').textContent = initial.toUpperCase();
  li.querySelector('.you').hidden = !isSelf;
  li.querySelector('.mic-off').hidden = !m.muted;
  li.classList.toggle('self', isSelf);
  li.dataset.muted = String(!!m.muted);
  li.dataset.speaking = String(!!m.speaking);
}

export function setMuteButton({ muted, enabled, label }) {
  const b = $('mute-btn');
  b.disabled = !enabled;
  b.setAttribute('aria-pressed', String(!!muted));
  b.textContent = label ?? (muted ? 'Unmute' : 'Mute');
  b.classList.toggle('active', !!muted);
}

// ---------------------------------------------------------------------------------------------
// Chat

function formatTime(ts) {
  const d = new Date(Number(ts));
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function scrollChat(log, wasAtBottom) {
  if (wasAtBottom) log.scrollTop = log.scrollHeight;
}

function atBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

/** Adds one chat message ({seq, from, name, text, ts}). */
export function appendChat(message, isMine) {
  const log = $('chat-log');
  const stick = atBottom(log) || isMine;
  const li = el('li', isMine ? 'chat-msg mine' : 'chat-msg');
  li.dataset.seq = String(message.seq);
  li.dataset.from = String(message.from);
  const meta = el('div', 'meta');
  meta.appendChild(el('span', 'chat-name', String(message.name)));
  const time = el('time', 'chat-time', formatTime(message.ts));
  const d = new Date(Number(message.ts));
  if (!Number.isNaN(d.getTime())) time.dateTime = d.toISOString();
  meta.appendChild(time);
  li.append(meta, el('div', 'chat-text', String(message.text)));
  log.appendChild(li);
  scrollChat(log, stick);
}

/** A line about the room itself ("Bob joined"). */
export function appendSystemLine(text) {
  const log = $('chat-log');
  const stick = atBottom(log);
  log.appendChild(el('li', 'chat-system', text));
  scrollChat(log, stick);
}

export function setChatEnabled(enabled) {
  $('chat-input').disabled = !enabled;
  $('chat-send').disabled = !enabled;
}

// ---------------------------------------------------------------------------------------------
// Remote audio

/**
 * Plays a member's stream through an <audio> element (one per stream). Besides making it heard,
 * this is what lets the stream feed Web Audio in Chromium.
 * `onBlocked` is called if the browser refuses to start playback without a click.
 */
export function attachRemoteAudio(id, stream, onBlocked) {
  const box = $('remote-audio');
  let audio = box.querySelector(`audio[data-member-id="${CSS.escape(id)}"]`);
  if (!audio) {
    audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.memberId = id;
    box.appendChild(audio);
  }
  if (audio.srcObject !== stream) audio.srcObject = stream;
  const p = audio.play();
  if (p && typeof p.catch === 'function') {
    p.catch((err) => {
      if (err && err.name === 'NotAllowedError' && onBlocked) onBlocked();
    });
  }
  return audio;
}

export function detachRemoteAudio(id) {
  const audio = $('remote-audio').querySelector(`audio[data-member-id="${CSS.escape(id)}"]`);
  if (audio) {
    audio.srcObject = null;
    audio.remove();
  }
}

/** Starts every remote audio element again (after a click, when autoplay was refused). */
export function resumeRemoteAudio() {
  const all = [...$('remote-audio').querySelectorAll('audio')];
  return Promise.allSettled(all.map((a) => a.play()));
}
