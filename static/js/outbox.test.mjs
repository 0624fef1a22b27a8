// Run: node --test static/js/outbox.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './api.js';
import { Store } from './store.js';
import { init as initStorage } from './storage.js';
import { MemoryStorage } from '../../tests/fixtures/memory-storage.mjs';
import { init as initOutbox } from './outbox.js';

const tick = () => new Promise(setImmediate);
const CONV = { id: '1', ourNumber: '+15550001000', contact: { phone: '+14155550123' }, unreadCount: 0 };

/** A queue over a fresh Store and `backend`; `answer(path, body, n)` answers the n-th POST. */
function setup({ backend = new MemoryStorage(), answer, now = () => Date.parse('2026-01-12T10:00:00Z') } = {}) {
  const store = new Store();
  store.upsertConversation(structuredClone(CONV));
  const posts = [];
  const toasts = [];
  const authErrors = [];
  let ids = 0;
  const storage = initStorage({ backend, agentId: () => '7' });
  const outbox = initOutbox({
    store,
    storage,
    post: async (path, body) => {
      posts.push({ path, body });
      return answer(path, body, posts.length);
    },
    ingest: (m) => store.upsertMessage(m),
    invalidate: () => {},
    toast: (text) => toasts.push(text),
    agentId: () => '7',
    onAuthError: (err) => {
      if (err instanceof ApiError && err.status === 401) {
        authErrors.push(err);
        return true;
      }
      return false;
    },
    now,
    newId: () => `client-${++ids}`,
  });
  const queued = () => JSON.parse(backend.getItem('smsdesk.outbox.7') ?? '[]');
  return { store, outbox, posts, toasts, authErrors, backend, queued };
}

const accepted = (body, clientId, over = {}) => ({
  message: { id: '100', conversationId: '1', direction: 'outbound', body, clientId, status: 'pending', seq: 9, ...over },
});

test('a send shows its bubble at once, is kept until the server has it, then is one message', async () => {
  let release;
  const t = setup({ answer: (path, body) => new Promise((r) => (release = () => r(accepted(body.body, body.clientId)))) });
  const done = t.outbox.send(t.store.conversations.get('1'), 'Hello');
  const bubble = t.store.getMessage('c:client-1');
  assert.equal(bubble.status, 'pending');
  assert.equal(bubble._local, true);
  assert.equal(bubble.agentId, '7');
  assert.deepEqual(t.posts, [{ path: '/api/crm/sms/send', body: { conversationId: '1', body: 'Hello', clientId: 'client-1' } }]);
  assert.equal(t.queued().length, 1, 'in storage while the server has not answered');
  assert.equal(t.queued()[0].local.body, 'Hello');
  release();
  await done;
  assert.deepEqual(t.queued(), [], 'gone from storage once the server has it');
  const m = t.store.getMessage('c:client-1');
  assert.equal(m.id, '100');
  assert.equal(m._local, undefined);
  assert.equal(t.store.messages.size, 1);
});

test('a note: its own bubble at once (a note, no segments), posted to …/notes with a clientId, then one message', async () => {
  let release;
  const t = setup({
    answer: (path, body) =>
      new Promise((r) => (release = () => r(accepted(body.body, body.clientId, { direction: 'note', status: 'note', segments: 0 })))),
  });
  const done = t.outbox.note(t.store.conversations.get('1'), 'Called her, she will reply tomorrow');
  const bubble = t.store.getMessage('c:client-1');
  assert.equal(bubble.direction, 'note');
  assert.equal(bubble.status, 'note');
  assert.equal(bubble.segments, 0);
  assert.equal(bubble._local, true);
  assert.deepEqual(t.posts, [
    { path: '/api/crm/sms/conversations/1/notes', body: { body: 'Called her, she will reply tomorrow', clientId: 'client-1' } },
  ]);
  assert.equal(t.queued().length, 1, 'kept across a reload like a send');
  release();
  await done;
  const m = t.store.getMessage('c:client-1');
  assert.equal(m.id, '100');
  assert.equal(m.direction, 'note');
  assert.equal(t.store.messages.size, 1);
  assert.deepEqual(t.queued(), []);
});

test('network failures and 503s are retried with the same clientId; waking skips the wait', async () => {
  const t = setup({
    answer: (path, body, n) => {
      if (n === 1) throw new TypeError('Failed to fetch');
      if (n === 2) throw new ApiError(503, 'unavailable', 'The database is not answering');
      return accepted(body.body, body.clientId);
    },
  });
  const done = t.outbox.send(t.store.conversations.get('1'), 'Hello');
  await tick();
  assert.equal(t.posts.length, 1);
  assert.equal(t.queued().length, 1, 'still queued after a failure');
  t.outbox.wake(); // the connection is back
  await tick();
  assert.equal(t.posts.length, 2, 'retried at once when woken');
  t.outbox.wake();
  await done;
  assert.equal(t.posts.length, 3);
  assert.deepEqual(new Set(t.posts.map((p) => p.body.clientId)), new Set(['client-1']), 'one clientId: never sent twice');
  assert.deepEqual(t.queued(), []);
  assert.equal(t.store.getMessage('c:client-1').id, '100');
});

test('a queued send survives a reload while signed in, and is sent from the new page', async () => {
  const backend = new MemoryStorage();
  const first = setup({ backend, answer: () => Promise.reject(new TypeError('Failed to fetch')) });
  first.outbox.send(first.store.conversations.get('1'), 'Sent before the reload');
  await tick();
  first.outbox.stop(); // the old page is gone
  assert.equal(first.queued().length, 1);

  const second = setup({ backend, answer: (path, body) => accepted(body.body, body.clientId) });
  const resumed = second.outbox.restore();
  const bubble = second.store.getMessage('c:client-1');
  assert.equal(bubble.body, 'Sent before the reload', 'the bubble is back at once');
  assert.equal(bubble.status, 'pending');
  await resumed;
  assert.deepEqual(second.posts.map((p) => p.body), [{ conversationId: '1', body: 'Sent before the reload', clientId: 'client-1' }]);
  assert.deepEqual(second.queued(), []);
  assert.equal(second.store.getMessage('c:client-1').id, '100');
});

test('entries older than a day, or broken, are dropped on restore', async () => {
  const backend = new MemoryStorage();
  const now = Date.parse('2026-01-12T10:00:00Z');
  const entry = (clientId, createdAt) => ({ kind: 'send', clientId, conversationId: '1', path: '/api/crm/sms/send', payload: { clientId }, createdAt });
  backend.setItem('smsdesk.outbox.7', JSON.stringify([entry('old', now - 25 * 3600 * 1000), { clientId: 'no-path' }, null, entry('new', now - 60_000)]));
  const t = setup({ backend, now: () => now, answer: () => ({}) });
  await t.outbox.restore();
  assert.deepEqual(t.posts.map((p) => p.body.clientId), ['new']);
  assert.deepEqual(t.queued(), []);
});

test('a refusal turns the bubble red with the reason and leaves the queue; opted_out marks the contact', async () => {
  const t = setup({ answer: () => Promise.reject(new ApiError(409, 'opted_out', 'This contact has opted out')) });
  await t.outbox.send(t.store.conversations.get('1'), 'Hello');
  const m = t.store.getMessage('c:client-1');
  assert.equal(m.status, 'failed');
  assert.equal(m.errorMessage, 'This contact has opted out');
  assert.equal(m.errorCode, 'opted_out');
  assert.deepEqual(t.queued(), []);
  assert.equal(t.store.conversations.get('1').contact.optedOut, true);
  assert.equal(t.posts.length, 1, 'not retried');
});

test('retry: a new message for the failed one, once; not_retryable removes the attempt', async () => {
  const t = setup({
    answer: (path, body, n) => {
      if (n === 1) return accepted('Hello', body.clientId, { id: '101' });
      throw new ApiError(409, 'not_retryable', 'Only failed messages can be retried');
    },
  });
  const failed = t.store.upsertMessage({ id: '50', conversationId: '1', direction: 'outbound', body: 'Hello', status: 'failed', seq: 3 }).msg;
  await t.outbox.retry(failed);
  assert.deepEqual(t.posts[0], { path: '/api/crm/sms/messages/50/retry', body: { clientId: 'client-1' } });
  assert.equal(t.store.getMessage('c:client-1').id, '101');
  assert.equal(t.outbox.wasRetried('50'), true);
  await t.outbox.retry(failed);
  assert.equal(t.posts.length, 1, 'a failed message is retried once');
  assert.deepEqual(JSON.parse(t.backend.getItem('smsdesk.retried.7')), ['50'], 'remembered across reloads');

  const other = t.store.upsertMessage({ id: '51', conversationId: '1', direction: 'outbound', body: 'Hi', status: 'undelivered', seq: 4 }).msg;
  await t.outbox.retry(other);
  assert.equal(t.store.getMessage('c:client-2'), undefined, 'the attempt is gone');
  assert.match(t.toasts[0], /can't be retried: Only failed messages/);
});

test('a 401 hands over to the session and the loop ends', async () => {
  const t = setup({ answer: () => Promise.reject(new ApiError(401, 'unauthorized', 'Sign in')) });
  await t.outbox.send(t.store.conversations.get('1'), 'Hello');
  assert.equal(t.authErrors.length, 1);
  assert.equal(t.posts.length, 1);
});

test('stop() ends the retries: nothing is posted afterwards', async () => {
  const t = setup({ answer: () => Promise.reject(new TypeError('Failed to fetch')) });
  const done = t.outbox.send(t.store.conversations.get('1'), 'Hello');
  await tick();
  t.outbox.stop();
  await done;
  assert.equal(t.posts.length, 1);
});

test('a send with pictures posts their ids and shows them from the files until the server has them', async () => {
  const t = setup({
    answer: (path, body) =>
      accepted(body.body, body.clientId, {
        media: [{ url: '/api/crm/sms/messages/100/media/0', contentType: 'image/png' }],
      }),
  });
  const pictures = [{ id: '42', contentType: 'image/png', localUrl: 'blob:page/1' }];
  const done = t.outbox.send(t.store.conversations.get('1'), '', pictures);
  const bubble = t.store.getMessage('c:client-1');
  assert.deepEqual(bubble.media, [{ url: 'blob:page/1', contentType: 'image/png', localUrl: 'blob:page/1' }]);
  assert.equal(bubble.segments, 1, 'a picture without text is one message');
  assert.deepEqual(t.posts[0].body, { conversationId: '1', body: '', clientId: 'client-1', mediaIds: ['42'] });
  await done;
  assert.deepEqual(t.store.getMessage('c:client-1').media, [
    { url: '/api/crm/sms/messages/100/media/0', contentType: 'image/png' },
  ]);
});
