// The composer: the text box with its character and segment counter, the Send button, and a draft per
// conversation (kept in memory only, while the page is open). Enter sends, Shift+Enter is a new line.

import { countSegments, counterLabel, bodyLength, MAX_BODY_CHARS, UCS2 } from './segments.js';
import { mmsLabel } from './attachments.js';

/** No pictures: what the composer asks of the attachments module when there is none. */
const NO_ATTACHMENTS = { count: () => 0, ready: () => true, pending: () => '', take: () => [], clear() {}, setEnabled() {} };

/**
 * init({store, openId, send, typing, attachments}) → {enter, leave, setConversation, update, focus}
 * `send(conv, body, pictures)` queues a message; `typing` is the typing module (input, stop);
 * `attachments` the pictures attached (attachments.js).
 */
export function init({ store, openId, send, typing, attachments = NO_ATTACHMENTS }) {
  const form = document.querySelector('#composer');
  const textarea = document.querySelector('#composer textarea');
  const button = document.querySelector('#send-button');
  const counter = document.querySelector('#segment-counter');
  const hint = document.querySelector('#composer-hint');
  const drafts = new Map(); // conversationId -> text not sent yet

  function autoGrow() {
    textarea.style.height = 'auto';
    textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 160)}px`;
  }

  function update() {
    const text = textarea.value;
    const info = countSegments(text);
    const chars = bodyLength(text);
    const pictures = attachments.count();
    counter.textContent = pictures ? mmsLabel(pictures, chars) : counterLabel(info);
    counter.dataset.encoding = pictures ? 'mms' : info.encoding;
    const tooLong = chars > MAX_BODY_CHARS;
    let note = '';
    if (tooLong) note = `Too long: ${chars} of ${MAX_BODY_CHARS} characters`;
    else if (attachments.pending()) note = attachments.pending();
    else if (info.encoding === UCS2 && !pictures) note = 'Unicode (UCS-2): 70 characters per SMS';
    hint.textContent = note;
    hint.classList.toggle('error', tooLong);
    counter.classList.toggle('error', tooLong);
    const id = openId();
    const conv = id ? store.conversations.get(id) : null;
    const empty = text.trim() === '' && pictures === 0;
    button.disabled = !conv || Boolean(conv.contact?.optedOut) || empty || tooLong || !attachments.ready();
  }

  function submit() {
    const id = openId();
    const conv = id ? store.conversations.get(id) : null;
    if (!conv || conv.contact?.optedOut) return;
    const body = textarea.value.trim();
    if ((!body && !attachments.count()) || bodyLength(body) > MAX_BODY_CHARS || !attachments.ready()) return;
    typing.stop();
    textarea.value = '';
    drafts.delete(conv.id);
    const pictures = attachments.take();
    autoGrow();
    update();
    send(conv, body, pictures);
    textarea.focus({ preventScroll: true });
  }

  textarea.addEventListener('input', () => {
    autoGrow();
    update();
    typing.input(textarea.value);
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });

  return {
    /** Conversation `id` opens: its draft comes back. */
    enter(id) {
      textarea.value = drafts.get(id) || '';
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
    /** The open conversation changed (e.g. opted out): messaging on or off. */
    setConversation(conv) {
      const optedOut = Boolean(conv.contact?.optedOut);
      textarea.disabled = optedOut;
      attachments.setEnabled(!optedOut);
      textarea.placeholder = optedOut ? 'Opted out: messaging is off' : 'Type a message…';
      update();
    },
    update,
    focus() {
      const conv = store.conversations.get(openId());
      if (conv && !conv.contact?.optedOut) textarea.focus({ preventScroll: true });
    },
  };
}
