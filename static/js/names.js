// Naming a contact (docs/api.md, "Conversations"): click the name in the thread's header, type, Enter saves, Esc
// cancels. The server pushes the new name to every agent of the number (`conversation:updated`); the
// answer is merged at once so this tab does not wait for it.

import { describeError } from './api.js';

export const MAX_NAME_CHARS = 100;

/**
 * What to send for what the agent typed: `{contactName}` (null clears the name), or `{error}` for a
 * name the server would refuse anyway.
 */
export function renameBody(typed) {
  const name = String(typed ?? '').trim();
  if (!name) return { body: { contactName: null } };
  if (Array.from(name).length > MAX_NAME_CHARS) {
    return { error: `A name can have at most ${MAX_NAME_CHARS} characters.` };
  }
  return { body: { contactName: name } };
}

/** init({store, patch, openId, invalidate, toast, onAuthError}) → {editing, cancel} */
export function init({ store, patch, openId, invalidate, toast, onAuthError }) {
  const title = document.querySelector('#thread-title');
  const input = document.querySelector('#rename-input');
  let editingId = null;
  let saving = false;

  function start() {
    const id = openId();
    const conv = id && store.conversations.get(id);
    if (!conv) return;
    editingId = id;
    input.value = conv.contact?.name || '';
    input.placeholder = 'Name this contact';
    title.hidden = true;
    input.hidden = false;
    input.focus();
    input.select();
  }

  function stop() {
    editingId = null;
    input.hidden = true;
    title.hidden = false;
  }

  async function save() {
    const id = editingId;
    if (!id || saving) return;
    const { body, error } = renameBody(input.value);
    if (error) {
      toast(error, 'error');
      return;
    }
    saving = true;
    try {
      const conv = await patch(`/api/crm/sms/conversations/${encodeURIComponent(id)}`, body);
      store.upsertConversation(conv);
      stop();
      title.focus();
    } catch (err) {
      if (onAuthError(err)) return;
      toast(`Could not rename: ${describeError(err)}`, 'error');
    } finally {
      saving = false;
    }
    invalidate('list', 'thread');
  }

  title.addEventListener('click', start);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      stop();
      title.focus();
    }
  });
  input.addEventListener('blur', () => {
    if (!saving) stop();
  });

  return {
    editing: () => editingId,
    /** Another conversation was opened: an unsaved name is dropped. */
    cancel() {
      if (editingId && editingId !== openId()) stop();
    },
  };
}
