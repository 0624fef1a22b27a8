// The composer: the text box with its character and segment counter, the Send button, and a draft per
// conversation (kept in memory only, while the page is open). Enter (or Ctrl/⌘+Enter) sends,
// Shift+Enter is a new line. It writes a Reply (an SMS to the contact) or a Note (only agents see it:
// no segments, another colour, its own limit, possible even to an opted-out contact); each
// conversation keeps its own choice with its draft.

import { countSegments, counterLabel, bodyLength, MAX_BODY_CHARS, UCS2 } from './segments.js';
import { mmsLabel } from './attachments.js';

/** No pictures: what the composer asks of the attachments module when there is none. */
const NO_ATTACHMENTS = { count: () => 0, ready: () => true, pending: () => '', take: () => [], clear() {}, setEnabled() {} };

/** A note's longest body, as the server takes it. */
export const MAX_NOTE_CHARS = 4000;

const PLACEHOLDER = { reply: 'Type a message…', note: 'Only agents see this' };

/**
 * init({store, openId, send, note, typing, attachments}) → {enter, leave, setConversation, update, focus, mode}
 * `send(conv, body, pictures)` queues a message, `note(conv, body)` a note; `typing` is the typing
 * module (input, stop); `attachments` the pictures attached (attachments.js), sent with replies only.
 */
export function init({ store, openId, send, note, typing, attachments = NO_ATTACHMENTS }) {
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
    const pictures = mode === 'reply' ? attachments.count() : 0;
    let warning = '';
    if (tooLong) warning = `Too long: ${chars} of ${max} characters`;
    else if (mode === 'reply' && attachments.pending()) warning = attachments.pending();
    if (mode === 'reply') {
      const info = countSegments(text);
      counter.textContent = pictures ? mmsLabel(pictures, chars) : counterLabel(info);
      counter.dataset.encoding = pictures ? 'mms' : info.encoding;
      if (!warning && info.encoding === UCS2 && !pictures) warning = 'Unicode (UCS-2): 70 characters per SMS';
    }
    counter.hidden = mode === 'note';
    hint.textContent = warning;
    hint.classList.toggle('error', tooLong);
    counter.classList.toggle('error', tooLong);
    const conv = openConversation();
    const empty = text.trim() === '' && pictures === 0;
    const waiting = mode === 'reply' && !attachments.ready();
    button.disabled = !conv || blocked(conv) || empty || tooLong || waiting;
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
    // Pictures go with replies; a note has none.
    attachments.setEnabled(mode === 'reply' && !blocked(conv));
    textarea.placeholder = blocked(conv) ? 'Opted out: messaging is off' : PLACEHOLDER[mode];
    textarea.setAttribute('aria-label', mode === 'note' ? 'Note (only agents see this)' : 'Message');
    update();
  }

  function submit() {
    const conv = openConversation();
    if (!conv || blocked(conv)) return;
    const body = textarea.value.trim();
    const pictures = mode === 'reply' ? attachments.count() : 0;
    const max = mode === 'note' ? MAX_NOTE_CHARS : MAX_BODY_CHARS;
    if ((!body && !pictures) || bodyLength(body) > max) return;
    if (mode === 'reply' && !attachments.ready()) return;
    typing.stop();
    textarea.value = '';
    drafts.delete(conv.id);
    const taken = mode === 'reply' ? attachments.take() : [];
    autoGrow();
    update();
    if (mode === 'note') note(conv, body);
    else send(conv, body, taken);
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
      attachments.clear();
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
