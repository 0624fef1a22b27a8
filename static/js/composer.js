// The composer: the text box with its character and segment counter, the Send button, and a draft per
// conversation (kept in memory only, while the page is open). Enter (or Ctrl/⌘+Enter) sends,
// Shift+Enter is a new line. It writes a Reply (an SMS to the contact) or a Note (only agents see it:
// no segments, another colour, its own limit, possible even to an opted-out contact); each
// conversation keeps its own choice with its draft.

import { countSegments, counterLabel, bodyLength, MAX_BODY_CHARS, UCS2 } from './segments.js';

/** A note's longest body, as the server takes it. */
export const MAX_NOTE_CHARS = 4000;

const PLACEHOLDER = { reply: 'Type a message…', note: 'Only agents see this' };

/**
 * init({store, openId, send, note, typing}) → {enter, leave, setConversation, update, focus, mode}
 * `send(conv, body)` queues a message, `note(conv, body)` a note; `typing` is the typing module (input, stop).
 */
export function init({ store, openId, send, note, typing }) {
  const form = document.querySelector('#composer');
  const textarea = document.querySelector('#composer textarea');
  const button = document.querySelector('#send-button');
  const counter = document.querySelector('#segment-counter');
  const hint = document.querySelector('#composer-hint');
  const modeHint = document.querySelector('#composer-mode-hint');
  const modeButtons = Array.from(form.querySelectorAll('.composer-mode'));
  const drafts = new Map(); // conversationId -> text not sent yet
  const modes = new Map(); // conversationId -> 'note' (a reply is not kept)
  let mode = 'reply';

  const openConversation = () => {
    const id = openId();
    return id ? store.conversations.get(id) : null;
  };
  /** Replies are off for an opted-out contact; notes never are. */
  const blocked = (conv) => mode === 'reply' && Boolean(conv?.contact?.optedOut);

  function autoGrow() {
    textarea.style.height = 'auto';
    textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 160)}px`;
  }

  function update() {
    const text = textarea.value;
    const chars = bodyLength(text);
    const max = mode === 'note' ? MAX_NOTE_CHARS : MAX_BODY_CHARS;
    const tooLong = chars > max;
    let warning = '';
    if (tooLong) warning = `Too long: ${chars} of ${max} characters`;
    if (mode === 'reply') {
      const info = countSegments(text);
      counter.textContent = counterLabel(info);
      counter.dataset.encoding = info.encoding;
      if (!tooLong && info.encoding === UCS2) warning = 'Unicode (UCS-2): 70 characters per SMS';
    }
    counter.hidden = mode === 'note';
    hint.textContent = warning;
    hint.classList.toggle('error', tooLong);
    counter.classList.toggle('error', tooLong);
    const conv = openConversation();
    button.disabled = !conv || blocked(conv) || text.trim() === '' || tooLong;
  }

  /** Shows mode `next` ('reply' or 'note') for the open conversation. */
  function setMode(next) {
    mode = next === 'note' ? 'note' : 'reply';
    form.dataset.mode = mode;
    for (const b of modeButtons) b.setAttribute('aria-checked', String(b.dataset.mode === mode));
    button.textContent = mode === 'note' ? 'Add note' : 'Send';
    modeHint.textContent = mode === 'note' ? 'Only agents see this' : '';
    const conv = openConversation();
    textarea.disabled = blocked(conv);
    textarea.placeholder = blocked(conv) ? 'Opted out: messaging is off' : PLACEHOLDER[mode];
    textarea.setAttribute('aria-label', mode === 'note' ? 'Note (only agents see this)' : 'Message');
    update();
  }

  function submit() {
    const conv = openConversation();
    if (!conv || blocked(conv)) return;
    const body = textarea.value.trim();
    if (!body || bodyLength(body) > (mode === 'note' ? MAX_NOTE_CHARS : MAX_BODY_CHARS)) return;
    typing.stop();
    textarea.value = '';
    drafts.delete(conv.id);
    autoGrow();
    update();
    if (mode === 'note') note(conv, body);
    else send(conv, body);
    textarea.focus({ preventScroll: true });
  }

  textarea.addEventListener('input', () => {
    autoGrow();
    update();
    typing.input(textarea.value);
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.isComposing || e.keyCode === 229) return;
    if (e.ctrlKey || e.metaKey || (!e.shiftKey && !e.altKey)) {
      e.preventDefault();
      submit();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  for (const b of modeButtons) {
    b.addEventListener('click', () => {
      const id = openId();
      if (id && b.dataset.mode === 'note') modes.set(id, 'note');
      else if (id) modes.delete(id);
      setMode(b.dataset.mode);
      textarea.focus({ preventScroll: true });
    });
  }
  // A radio group: the arrow keys move the choice.
  form.querySelector('.composer-modes').addEventListener('keydown', (e) => {
    if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(e.key)) return;
    e.preventDefault();
    const other = modeButtons.find((b) => b.dataset.mode !== mode);
    other.click();
    other.focus();
  });

  return {
    /** Conversation `id` opens: its draft and its Reply or Note come back. */
    enter(id) {
      textarea.value = drafts.get(id) || '';
      setMode(modes.get(id) || 'reply');
      autoGrow();
    },
    /** Conversation `id` closes: keep what was typed. */
    leave(id) {
      typing.stop();
      if (!id) return;
      const text = textarea.value;
      if (text) drafts.set(id, text);
      else drafts.delete(id);
    },
    /** The open conversation changed (e.g. opted out): replies on or off. */
    setConversation() {
      setMode(mode);
    },
    update,
    mode: () => mode,
    focus() {
      const conv = openConversation();
      if (conv && !blocked(conv)) textarea.focus({ preventScroll: true });
    },
  };
}
