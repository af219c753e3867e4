// @ts-check
// The start page: pick a room and a nickname (or roll the dice for them), or rejoin a recent
// room.

import { capNickname, nickProblem, roomHref, roomProblem, showProblem } from './forms.js';
import { randomRoomName } from './names.js';
import { localNickname } from './nicknames.js';
import * as i18n from './i18n.js';
import * as prefs from './prefs.js';
import { mountList, rememberJoin } from './rooms.js';
import * as ui from './ui.js';

export function homePage() {
  ui.showView('home');
  ui.updateTitle({ room: null });
  const form = ui.$as('home-form', HTMLFormElement);
  const roomInput = ui.$as('home-room', HTMLInputElement);
  const nameInput = ui.$as('home-name', HTMLInputElement);
  nameInput.value = prefs.nickname.get();
  capNickname(nameInput);

  roomInput.addEventListener('input', () => {
    const v = roomInput.value.trim();
    showProblem('home-room-error', v === '' ? null : roomProblem(v));
  });
  nameInput.addEventListener('input', () => showProblem('home-name-error', null));
  ui.$('home-room-dice').addEventListener('click', () => {
    roomInput.value = randomRoomName();
    showProblem('home-room-error', null);
  });
  ui.$('home-name-dice').addEventListener('click', () => {
    nameInput.value = localNickname(i18n.getLanguage());
    showProblem('home-name-error', null);
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = roomInput.value.trim();
    const nick = nameInput.value.trim();
    const rp = roomProblem(room);
    showProblem('home-room-error', rp);
    const np = nick === '' ? null : nickProblem(nick);
    showProblem('home-name-error', np);
    if (rp) {
      roomInput.focus();
      return;
    }
    if (np) {
      nameInput.focus();
      return;
    }
    if (nick) prefs.nickname.set(nick);
    rememberJoin(room, {
      topic: ui.$as('home-topic', HTMLInputElement).value.trim(),
      language: ui.$as('home-language', HTMLInputElement).value.trim(),
      password: ui.$as('home-password', HTMLInputElement).value,
    });
    window.location.assign(roomHref(room, nick));
  });

  const renderRecent = () =>
    ui.renderRecent(prefs.recent.list(), {
      href: (item) => roomHref(item.room, item.name),
      onForget: (item) => {
        prefs.recent.forget(item.room);
        renderRecent();
        const next = ui.find(document, '#recent-list .recent-forget') ?? roomInput;
        next.focus();
      },
    });
  renderRecent();
  mountList((room) => roomHref(room, nameInput.value.trim()));
  roomInput.focus();
}
