// The send queue. A message the agent sends shows at once as an optimistic bubble (`pending`, keyed by a
// new clientId) and is posted with that clientId until the server has it: network failures and "try
// later" answers are retried with backoff (sooner when the connection comes back), and the entry is kept
// in storage so a reload resumes it. The server's answer (and its message:new / message:status for the
// same clientId) then update that one bubble. Failing answers turn it red with the reason. Notes (only
// agents see them) take the same way to POST …/notes.

import { ApiError, describeError, isTransient, uuid } from './api.js';
import { countSegments } from './segments.js';

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;
const MAX_AGE_MS = 24 * 3600 * 1000;
const RETRIED_KEPT = 500;

/**
 * init({store, post, storage, ingest, onQueued, invalidate, toast, agentId, onAuthError, now, newId})
 * → {send, note, retry, wasRetried, restore, wake, stop}
 * `ingest(message)` takes the server's answer; `onQueued()` runs when a new bubble is in the store.
 */
export function init({
  store,
  post,
  storage,
  ingest,
  onQueued = () => {},
  invalidate,
  toast,
  agentId,
  onAuthError,
  now = Date.now,
  newId = uuid,
}) {
  const retried = new Set(); // ids of failed messages already retried (no second Retry button)
  const wakers = new Set();
  let stopped = false;

  const saved = () => {
    const list = storage.read('outbox', []);
    return Array.isArray(list) ? list.filter((e) => e && typeof e === 'object') : [];
  };
  const save = (entry) => storage.write('outbox', [...saved().filter((e) => e.clientId !== entry.clientId), entry]);
  const remove = (clientId) => storage.write('outbox', saved().filter((e) => e.clientId !== clientId));

  /** Wait `ms`, or less when woken (the connection is back) or stopped. */
  function backoff(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakers.add(done);
    });
  }

  function wake() {
    for (const w of Array.from(wakers)) w();
  }

  function makeLocal(conv, body, clientId, direction, pictures = []) {
    const at = new Date(Math.max(now(), store.latestTime(conv.id) + 1)).toISOString();
    return {
      id: null,
      clientId,
      conversationId: conv.id,
      direction,
      from: conv.ourNumber ?? null,
      to: conv.contact?.phone ?? null,
      body,
      // The pictures as the agent picked them (object URLs) until the server's replace them.
      media: pictures.map((p) => ({ url: p.localUrl, contentType: p.contentType, localUrl: p.localUrl })),
      status: direction === 'note' ? 'note' : 'pending',
      errorCode: null,
      errorMessage: null,
      twilioSid: null,
      agentId: agentId() ?? null,
      segments: direction === 'note' ? 0 : Math.max(countSegments(body).segments, pictures.length ? 1 : 0),
      createdAt: at,
      updatedAt: at,
      seq: null,
      _local: true,
    };
  }

  function failLocal(entry, err) {
    const key = `c:${entry.clientId}`;
    const local = store.getMessage(key);
    if (entry.kind === 'retry' && err instanceof ApiError && err.code === 'not_retryable') {
      store.removeMessage(key);
      invalidate('list', 'thread');
      toast(`This message can't be retried: ${err.message}`, 'error');
      return;
    }
    if (err instanceof ApiError && err.code === 'opted_out') {
      const conv = store.conversations.get(entry.conversationId);
      if (conv) conv.contact = { ...(conv.contact || {}), optedOut: true };
    }
    if (local && local._local) {
      store.upsertMessage({
        ...local,
        status: 'failed',
        errorCode: err instanceof ApiError ? err.code : null,
        errorMessage: describeError(err),
        _local: true,
        _localError: true,
      });
    }
    invalidate('list', 'thread');
  }

  async function deliver(entry) {
    save(entry);
    let delay = FIRST_DELAY_MS;
    while (!stopped) {
      try {
        const res = await post(entry.path, entry.payload);
        remove(entry.clientId);
        if (res?.message) ingest({ ...res.message, clientId: res.message.clientId || entry.clientId });
        return;
      } catch (err) {
        if (isTransient(err)) {
          await backoff(delay);
          delay = Math.min(delay * 2, MAX_DELAY_MS);
          continue;
        }
        if (onAuthError(err)) return; // signed out: the page forgets the queue as it leaves
        remove(entry.clientId);
        failLocal(entry, err);
        return;
      }
    }
  }

  function enqueue(conv, body, kind, path, payload, pictures = []) {
    const local = makeLocal(conv, body, payload.clientId, kind === 'note' ? 'note' : 'outbound', pictures);
    store.upsertMessage(local);
    onQueued();
    invalidate('list', 'thread');
    return deliver({ kind, clientId: payload.clientId, conversationId: conv.id, path, payload, local, createdAt: now() });
  }

  return {
    /**
     * Send a new message in `conv`, with `pictures` (uploaded: {id, contentType, localUrl}); resolves when
     * the server has it (or refused it).
     */
    send(conv, body, pictures = []) {
      const clientId = newId();
      const payload = { conversationId: conv.id, body, clientId };
      if (pictures.length) payload.mediaIds = pictures.map((p) => p.id);
      return enqueue(conv, body, 'send', '/api/crm/sms/send', payload, pictures);
    },

    /** Add a note to `conv` (only agents see it); resolves when the server has it (or refused it). */
    note(conv, body) {
      const clientId = newId();
      const path = `/api/crm/sms/conversations/${encodeURIComponent(conv.id)}/notes`;
      return enqueue(conv, body, 'note', path, { body, clientId });
    },

    /** Send a failed message again, as a new message (once per failed message). */
    retry(m) {
      if (m.id == null || retried.has(m.id)) return Promise.resolve();
      retried.add(m.id);
      storage.write('retried', Array.from(retried).slice(-RETRIED_KEPT));
      const conv = store.conversations.get(m.conversationId) || {
        id: m.conversationId,
        ourNumber: m.from,
        contact: { phone: m.to },
      };
      const path = `/api/crm/sms/messages/${encodeURIComponent(m.id)}/retry`;
      return enqueue(conv, m.body ?? '', 'retry', path, { clientId: newId() });
    },

    wasRetried: (id) => retried.has(String(id)),

    /** After sign-in: show and resume what an earlier page of this agent left queued. */
    restore() {
      const ids = storage.read('retried', []);
      if (Array.isArray(ids)) for (const id of ids) retried.add(String(id));
      const resumed = [];
      for (const entry of saved()) {
        if (!entry.clientId || !entry.path || now() - (entry.createdAt || 0) > MAX_AGE_MS) {
          remove(entry.clientId);
          continue;
        }
        if (entry.local) store.upsertMessage({ ...entry.local, _local: true });
        resumed.push(deliver(entry));
      }
      invalidate('list', 'thread');
      return Promise.all(resumed);
    },

    /** Retry now: the connection is back. */
    wake,

    /** No more attempts (the page is leaving). */
    stop() {
      stopped = true;
      wake();
    },
  };
}
