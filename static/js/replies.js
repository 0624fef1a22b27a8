// Canned replies without the DOM (tested in replies.test.mjs): the list as the page keeps it, what the
// `/` picker shows for what was typed, a reply's placeholders filled in, the add and edit forms' rules,
// and what an error of /api/crm/sms/replies means to a person. The server decides who may change what;
// this only avoids offering what it would refuse. replies-view.js puts it on the page.

import { bodyLength, MAX_BODY_CHARS } from './segments.js';

/** The shortcut rule, as src/domain/shortcut.rs states it (both tested against tests/fixtures/shortcuts.json). */
export const SHORTCUT = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export const SHORTCUT_RULE = 'A shortcut is 1 to 32 lowercase letters, digits, - or _, starting with a letter or a digit.';
export const BODY_RULE = `The text must have 1 to ${MAX_BODY_CHARS} characters.`;

/** The placeholders a body may hold, and what fills each in. */
export const PLACEHOLDERS = ['contact.name', 'contact.phone', 'agent.name'];
const PLACEHOLDER = /\{\{\s*(contact\.name|contact\.phone|agent\.name)\s*\}\}/g;

/** Whether `agent` may change or delete `reply`: its author, or any admin (as Reply::may_be_changed_by). */
export function canChange(reply, agent) {
  if (!reply || !agent) return false;
  return agent.role === 'admin' || String(reply.agentId) === String(agent.id);
}

/** By shortcut, in byte order as the server sorts them (shortcuts are ASCII). */
export function sortReplies(replies) {
  return [...replies].sort((a, b) => (a.shortcut < b.shortcut ? -1 : a.shortcut > b.shortcut ? 1 : 0));
}

/** What follows `/` when the composer's text starts with it on a single line; otherwise null. */
export function slashQuery(text) {
  const t = String(text ?? '');
  if (!t.startsWith('/') || /[\r\n]/.test(t)) return null;
  return t.slice(1);
}

/** Text as compared when matching: lower case, without accents. */
export function fold(text) {
  return String(text ?? '')
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase();
}

/**
 * The replies the picker offers for `query`: those whose shortcut starts with it first, then those
 * whose shortcut holds it, then those whose text holds it (its placeholders aside), by shortcut within
 * each. An empty query offers them all.
 */
export function matchReplies(replies, query) {
  const q = fold(query).trim();
  const sorted = sortReplies(replies);
  if (!q) return sorted;
  const starts = [];
  const inShortcut = [];
  const inBody = [];
  for (const r of sorted) {
    if (r.shortcut.startsWith(q)) starts.push(r);
    else if (r.shortcut.includes(q)) inShortcut.push(r);
    else if (fold(r.body.replace(PLACEHOLDER, ' ')).includes(q)) inBody.push(r);
  }
  return [...starts, ...inShortcut, ...inBody];
}

/** What fills each placeholder in the open conversation: the contact's name (or nothing), their number as the page shows it, and the agent's name. */
export function placeholderValues(conversation, agent, formatPhone = (p) => p) {
  const contact = conversation?.contact || {};
  return {
    'contact.name': String(contact.name ?? '').trim(),
    'contact.phone': contact.phone ? formatPhone(contact.phone) : '',
    'agent.name': String(agent?.name ?? '').trim(),
  };
}

/** `body` with its placeholders filled in from `values`; one without a value becomes nothing, never braces. */
export function fillPlaceholders(body, values) {
  return String(body ?? '').replace(PLACEHOLDER, (_, key) => String(values?.[key] ?? ''));
}

/** A shortcut as typed into the form, as it is sent: without spaces around it or a leading `/`, in lower case. */
export function normalizeShortcut(text) {
  return String(text ?? '')
    .trim()
    .replace(/^\//, '')
    .toLowerCase();
}

/** The form → the body of POST /api/crm/sms/replies, or of PATCH …/:id with only what changed (`editing` is the reply), or {error}. */
export function replyBody(editing, { shortcut, body }) {
  const s = normalizeShortcut(shortcut);
  const text = String(body ?? '');
  if (!SHORTCUT.test(s)) return { error: SHORTCUT_RULE };
  if (!text.trim() || bodyLength(text) > MAX_BODY_CHARS) return { error: BODY_RULE };
  if (!editing) return { body: { shortcut: s, body: text } };
  const changed = {};
  if (s !== editing.shortcut) changed.shortcut = s;
  if (text !== editing.body) changed.body = text;
  return { body: changed };
}

/** A person's sentence for an error of /api/crm/sms/replies (an ApiError-like {status, code, message}). */
export function describeReplyError(err, shortcut) {
  if (err?.code === 'shortcut_taken') return `Another reply already uses /${shortcut || 'this shortcut'}. Choose another shortcut.`;
  if (err?.status === 403) return 'Only the agent who added this reply, or an admin, can change or delete it.';
  if (err?.status === 404) return 'This reply was deleted meanwhile.';
  if (err?.status === 422 && /^shortcut\b/.test(err.message || '')) return SHORTCUT_RULE;
  if (err?.status === 422 && /^body\b/.test(err.message || '')) return BODY_RULE;
  if (err instanceof TypeError) return "Can't reach the server. Check your connection and try again.";
  return err?.message || 'Something went wrong.';
}

/**
 * The replies the page knows, kept from the list the server gives and the changes it pushes. A list
 * read while changes arrive could be older than them: what arrives during a load is applied again over
 * its answer, and a deleted reply never comes back.
 */
export function createReplies() {
  const byId = new Map();
  const deleted = new Set();
  let loading = 0; // the load whose answer counts; 0: none in flight
  let loads = 0;
  let during = []; // changes pushed while that load was in flight

  function put(reply) {
    const id = String(reply.id);
    if (deleted.has(id)) return;
    const known = byId.get(id);
    if (known && String(known.updatedAt) > String(reply.updatedAt)) return;
    byId.set(id, { ...reply, id });
  }

  function drop(id) {
    deleted.add(String(id));
    byId.delete(String(id));
  }

  return {
    /** Every reply, by shortcut. */
    list: () => sortReplies(byId.values()),
    get: (id) => byId.get(String(id)) || null,
    /** A load starts: its token for `loaded`. */
    loading() {
      loads += 1;
      loading = loads;
      during = [];
      return loading;
    },
    /** The answer of load `token`: the list, then what was pushed meanwhile. An older load's answer is dropped. */
    loaded(token, replies) {
      if (token !== loading) return false;
      byId.clear();
      for (const r of replies) put(r);
      for (const apply of during) apply();
      loading = 0;
      during = [];
      return true;
    },
    /** Load `token` failed: what is known stays. */
    failed(token) {
      if (token === loading) {
        loading = 0;
        during = [];
      }
    },
    /** `reply:changed`, or our own add or change answered. */
    changed(reply) {
      put(reply);
      if (loading) during.push(() => put(reply));
    },
    /** `reply:deleted`, or our own delete answered. */
    deleted(id) {
      drop(id);
    },
  };
}
