// Canned replies on the page (the rules are replies.js's): the `/` picker in the composer, and the
// Replies panel to add, edit and delete them. The picker is a listbox the text box controls: it opens
// when the text starts with `/`, narrows as the agent types, arrow keys move through it, Enter or a
// click inserts the reply (placeholders filled in) in place of what was typed, Esc closes it until the
// text no longer starts with `/`. The panel offers Edit and Delete only on the replies the agent may
// change. The list is read on every (re)connect and kept live by reply:changed and reply:deleted, so an
// idle page asks nothing. Everything is text (h()/textContent), never HTML.

import { h, setAlert } from './dom.js';
import {
  PLACEHOLDERS,
  canChange,
  createReplies,
  describeReplyError,
  fillPlaceholders,
  matchReplies,
  placeholderValues,
  replyBody,
  slashQuery,
} from './replies.js';

/** The picker shows at most this many; typing more narrows it. */
const MAX_SHOWN = 50;

function openDialog(dialog) {
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
}

function closeDialog(dialog) {
  if (typeof dialog.close === 'function') dialog.close();
  else dialog.removeAttribute('open');
}

const oneLine = (text) => String(text ?? '').replace(/\s+/g, ' ').trim();

/**
 * init({get, api, me, conversation, formatPhone, toast, onAuthError}) → {load, onChanged, onDeleted, open}
 * `me()` is the signed-in agent, `conversation()` the open one (or null); `api(method, path, body)` is api.js's.
 */
export function init({ get, api, me, conversation, formatPhone, toast, onAuthError }) {
  const replies = createReplies();
  const composer = document.querySelector('#composer');
  const textarea = document.querySelector('#composer-input');

  // ------------------------------------------------------------------ The picker

  const options = h('ul', { id: 'reply-options', class: 'reply-options', role: 'listbox', 'aria-label': 'Canned replies' });
  const nothing = h('p', { class: 'reply-nothing', hidden: true });
  const popup = h(
    'div',
    { id: 'reply-popup', class: 'reply-popup', hidden: true },
    options,
    nothing,
    h(
      'div',
      { class: 'reply-popup-footer' },
      h('span', { class: 'reply-popup-keys' }, '↑ ↓ to choose · Enter to insert · Esc to close'),
      h('button', { type: 'button', class: 'btn btn-link', onclick: () => open() }, 'Manage replies'),
    ),
  );
  // A click in the picker must not take the focus (and the caret) from the text box.
  popup.addEventListener('mousedown', (e) => e.preventDefault());
  composer.append(popup);
  textarea.setAttribute('aria-controls', 'reply-options');
  textarea.setAttribute('aria-autocomplete', 'list');

  let shown = [];
  let active = 0;
  let dismissed = false;

  function closePicker() {
    popup.hidden = true;
    shown = [];
    textarea.removeAttribute('aria-activedescendant');
  }

  function renderPicker() {
    options.replaceChildren(
      ...shown.map((r, i) =>
        h(
          'li',
          {
            id: `reply-option-${r.id}`,
            class: 'reply-option',
            role: 'option',
            'aria-selected': i === active ? 'true' : 'false',
            dataset: { id: r.id, shortcut: r.shortcut },
            onclick: () => insert(r),
          },
          h('span', { class: 'reply-shortcut' }, `/${r.shortcut}`),
          h('span', { class: 'reply-preview' }, oneLine(r.body)),
        ),
      ),
    );
    const current = shown[active];
    if (current) {
      textarea.setAttribute('aria-activedescendant', `reply-option-${current.id}`);
      document.getElementById(`reply-option-${current.id}`)?.scrollIntoView({ block: 'nearest' });
    } else {
      textarea.removeAttribute('aria-activedescendant');
    }
  }

  /** Shows the picker for the text box's text, or closes it. `keep`: stay on the same reply (the list changed, not the text). */
  function refreshPicker({ keep = false } = {}) {
    const query = textarea.disabled ? null : slashQuery(textarea.value);
    if (query === null) dismissed = false;
    if (query === null || dismissed || document.activeElement !== textarea) {
      closePicker();
      return;
    }
    const before = keep ? shown[active]?.id : null;
    shown = matchReplies(replies.list(), query).slice(0, MAX_SHOWN);
    const kept = shown.findIndex((r) => r.id === before);
    active = kept >= 0 ? kept : 0;
    const all = replies.list().length;
    nothing.textContent = !all ? 'No canned replies yet.' : shown.length ? '' : `No replies match “${query.trim()}”.`;
    nothing.hidden = shown.length > 0;
    options.hidden = !shown.length;
    renderPicker();
    popup.hidden = false;
  }

  function move(step) {
    active = (active + step + shown.length) % shown.length;
    renderPicker();
  }

  /** Puts `reply`, its placeholders filled in, in place of the `/…` typed. */
  function insert(reply) {
    const text = fillPlaceholders(reply.body, placeholderValues(conversation(), me(), formatPhone));
    // Whatever the reply says, the picker stays closed until the agent types a new `/`.
    dismissed = true;
    closePicker();
    textarea.value = text;
    textarea.setSelectionRange(text.length, text.length);
    // The composer counts, grows and tells others we are typing, as for text typed.
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
    textarea.focus({ preventScroll: true });
  }

  textarea.addEventListener('input', () => refreshPicker());
  textarea.addEventListener('focus', () => refreshPicker());
  textarea.addEventListener('blur', closePicker);
  // Before the composer's own keys (Enter sends): the picker's keys, while it is open.
  composer.addEventListener(
    'keydown',
    (e) => {
      if (e.target !== textarea || popup.hidden) return;
      const plain = !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey;
      let handled = true;
      if (e.key === 'Escape') {
        dismissed = true;
        closePicker();
      } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && plain && shown.length) {
        move(e.key === 'ArrowDown' ? 1 : -1);
      } else if (e.key === 'Enter' && plain && !e.isComposing && e.keyCode !== 229 && shown.length) {
        insert(shown[active]);
      } else {
        handled = false;
      }
      if (handled) {
        e.preventDefault();
        e.stopPropagation();
      }
    },
    true,
  );

  // ------------------------------------------------------------------ The panel

  const list = h('ul', { id: 'replies-list', class: 'replies-list' });
  const empty = h('p', { class: 'replies-empty', hidden: true }, 'No replies yet. Add the answers you type again and again.');
  const panel = h(
    'dialog',
    { id: 'replies-dialog', class: 'dialog replies-dialog', 'aria-labelledby': 'replies-title' },
    h(
      'div',
      { class: 'replies-header' },
      h('h2', { id: 'replies-title' }, 'Replies'),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'new-reply-button', onclick: () => openForm(null) }, '+ New reply'),
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => closeDialog(panel) }, 'Close'),
    ),
    h(
      'p',
      { class: 'dialog-note replies-note' },
      'Type / at the start of a message to insert one. ',
      PLACEHOLDERS.map((p) => `{{${p}}}`).join(', '),
      ' are filled in when it is inserted.',
    ),
    h('div', { class: 'replies-scroller' }, list, empty),
  );
  document.body.append(panel);

  function renderPanel() {
    const agent = me();
    const rows = replies.list().map((r) => {
      const mine = String(r.agentId) === String(agent?.id);
      return h(
        'li',
        { class: 'reply-row', dataset: { id: r.id, shortcut: r.shortcut } },
        h(
          'div',
          { class: 'reply-row-head' },
          h('span', { class: 'reply-shortcut' }, `/${r.shortcut}`),
          mine && h('span', { class: 'reply-mine' }, 'Yours'),
          canChange(r, agent) &&
            h(
              'span',
              { class: 'reply-actions' },
              h('button', { type: 'button', class: 'btn btn-link reply-edit', onclick: () => openForm(r) }, 'Edit'),
              h('button', { type: 'button', class: 'btn btn-link btn-danger reply-delete', onclick: () => confirmDelete(r) }, 'Delete'),
            ),
        ),
        h('p', { class: 'reply-body' }, r.body),
      );
    });
    list.replaceChildren(...rows);
    empty.hidden = rows.length > 0;
  }

  // Add and edit.
  let editing = null;
  const formTitle = h('h2', { id: 'reply-form-title' });
  const shortcutInput = h('input', {
    name: 'shortcut',
    type: 'text',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    maxlength: '40',
    placeholder: 'thanks',
    required: true,
  });
  const bodyInput = h('textarea', { name: 'body', rows: '5', required: true, placeholder: 'Hi {{contact.name}}, thanks for your message!' });
  const insertPlaceholder = (text) => {
    bodyInput.focus();
    bodyInput.setRangeText(text, bodyInput.selectionStart, bodyInput.selectionEnd, 'end');
  };
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const saveButton = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
  const form = h(
    'form',
    { class: 'dialog-form', novalidate: true },
    formTitle,
    h(
      'label',
      { class: 'field' },
      h('span', { class: 'field-label' }, 'Shortcut'),
      shortcutInput,
      h('span', { class: 'field-help' }, 'Lowercase letters, digits, - and _; typed after / in a message.'),
    ),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Text'), bodyInput),
    h(
      'div',
      { class: 'placeholder-buttons' },
      h('span', { class: 'field-help' }, 'Insert:'),
      PLACEHOLDERS.map((p) => h('button', { type: 'button', class: 'btn btn-link', onclick: () => insertPlaceholder(`{{${p}}}`) }, `{{${p}}}`)),
    ),
    formError,
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => closeDialog(formDialog) }, 'Cancel'),
      saveButton,
    ),
  );
  const formDialog = h('dialog', { id: 'reply-form-dialog', class: 'dialog', 'aria-labelledby': 'reply-form-title' }, form);
  document.body.append(formDialog);

  function openForm(reply) {
    editing = reply;
    formTitle.textContent = reply ? `Edit /${reply.shortcut}` : 'New reply';
    saveButton.textContent = reply ? 'Save' : 'Add reply';
    shortcutInput.value = reply?.shortcut ?? '';
    bodyInput.value = reply?.body ?? '';
    setAlert(formError, '');
    openDialog(formDialog);
    shortcutInput.focus();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setAlert(formError, '');
    const { body, error } = replyBody(editing, { shortcut: shortcutInput.value, body: bodyInput.value });
    if (error) return setAlert(formError, error);
    if (editing && !Object.keys(body).length) return closeDialog(formDialog);
    saveButton.disabled = true;
    try {
      const saved = editing
        ? await api('PATCH', `/api/crm/sms/replies/${encodeURIComponent(editing.id)}`, body)
        : await api('POST', '/api/crm/sms/replies', body);
      onChanged(saved);
      closeDialog(formDialog);
      toast(editing ? 'Reply saved.' : 'Reply added.');
    } catch (err) {
      if (!onAuthError(err)) setAlert(formError, describeReplyError(err, body.shortcut ?? editing?.shortcut));
    } finally {
      saveButton.disabled = false;
    }
  });

  // Delete, confirmed.
  let deleting = null;
  const confirmText = h('p', { class: 'dialog-note', id: 'reply-delete-text' });
  const confirmError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const deleteButton = h('button', { type: 'submit', class: 'btn btn-primary btn-danger' }, 'Delete');
  const confirmForm = h(
    'form',
    { class: 'dialog-form', novalidate: true },
    h('h2', { id: 'reply-delete-title' }, 'Delete reply?'),
    confirmText,
    confirmError,
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => closeDialog(confirmDialog) }, 'Cancel'),
      deleteButton,
    ),
  );
  const confirmDialog = h('dialog', { id: 'reply-delete-dialog', class: 'dialog', 'aria-labelledby': 'reply-delete-title' }, confirmForm);
  document.body.append(confirmDialog);

  function confirmDelete(reply) {
    deleting = reply;
    confirmText.textContent = `/${reply.shortcut} will be gone for every agent.`;
    setAlert(confirmError, '');
    openDialog(confirmDialog);
  }

  confirmForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    deleteButton.disabled = true;
    try {
      await api('DELETE', `/api/crm/sms/replies/${encodeURIComponent(deleting.id)}`);
      onDeleted({ id: deleting.id });
      closeDialog(confirmDialog);
      toast('Reply deleted.');
    } catch (err) {
      if (!onAuthError(err)) setAlert(confirmError, describeReplyError(err, deleting.shortcut));
    } finally {
      deleteButton.disabled = false;
    }
  });

  // The way in, beside the composer's counter (the picker's footer has one too).
  const button = h('button', { type: 'button', class: 'btn btn-link composer-replies', id: 'replies-button' }, 'Replies');
  button.addEventListener('click', () => open());
  composer.querySelector('.composer-meta')?.append(button);

  // ------------------------------------------------------------------ The list

  function redraw() {
    renderPanel();
    if (!popup.hidden) refreshPicker({ keep: true });
  }

  function onChanged(reply) {
    replies.changed(reply);
    redraw();
  }

  function onDeleted(payload) {
    replies.deleted(payload.id);
    redraw();
  }

  async function load() {
    const token = replies.loading();
    try {
      const answer = await get('/api/crm/sms/replies');
      if (replies.loaded(token, answer?.replies || [])) redraw();
    } catch (err) {
      // Kept as known; the next connect reads the list again.
      replies.failed(token);
      onAuthError(err);
    }
  }

  function open() {
    renderPanel();
    openDialog(panel);
  }

  return { load, onChanged, onDeleted, open };
}
