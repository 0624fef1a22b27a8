// Run: node --test static/js/session.test.mjs
// Signing out (logout, or a 401 that sends the agent to /login) forgets the queued sends, whose entries
// hold the text of messages not sent yet; while signed in, nothing queued is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './api.js';
import { Store } from './store.js';
import { init as initStorage } from './storage.js';
import { MemoryStorage } from '../../tests/fixtures/memory-storage.mjs';
import { init as initOutbox } from './outbox.js';
import { init as initSession } from './session.js';

const tick = () => new Promise(setImmediate);

/** The page's pieces as app.js wires them, over `backend`; `server(path)` answers every POST. */
function page(backend, server) {
  const store = new Store();
  store.upsertConversation({ id: '1', ourNumber: '+15550001000', contact: { phone: '+14155550123' } });
  const went = [];
  const toasts = [];
  const posts = [];
  const post = async (path, body) => {
    posts.push(path);
    return server(path, body);
  };
  const storage = initStorage({ backend, agentId: () => '7' });
  let outbox;
  const session = initSession({
    post,
    storage,
    stop: () => outbox.stop(),
    navigate: (url) => went.push(url),
    toast: (text) => toasts.push(text),
  });
  outbox = initOutbox({
    store,
    post,
    storage,
    ingest: (m) => store.upsertMessage(m),
    invalidate: () => {},
    toast: () => {},
    agentId: () => '7',
    onAuthError: session.handleAuthError,
  });
  return { store, session, outbox, went, toasts, posts };
}

const ours = (backend) => Array.from(backend.map.keys()).filter((k) => k.startsWith('smsdesk.'));
const offline = () => Promise.reject(new TypeError('Failed to fetch'));

test('logout forgets the queued sends (for every agent) and goes to /login', async () => {
  const backend = new MemoryStorage();
  backend.setItem('smsdesk.outbox.3', JSON.stringify([{ clientId: 'x', local: { body: 'an earlier agent' } }]));
  backend.setItem('other.app', 'kept');
  let loggedOut = false;
  const p = page(backend, (path) => {
    if (path === '/api/auth/logout') {
      loggedOut = true;
      return null;
    }
    return offline();
  });
  p.outbox.send(p.store.conversations.get('1'), 'Confidential: not sent yet');
  p.outbox.retry({ id: '50', conversationId: '1', body: 'Retried', status: 'failed' });
  await tick();
  assert.deepEqual(ours(backend).sort(), ['smsdesk.outbox.3', 'smsdesk.outbox.7', 'smsdesk.retried.7']);
  assert.match(backend.getItem('smsdesk.outbox.7'), /Confidential: not sent yet/);

  await p.session.logout();
  assert.equal(loggedOut, true);
  assert.deepEqual(ours(backend), [], 'nothing of ours is left');
  assert.equal(backend.getItem('other.app'), 'kept');
  assert.deepEqual(p.went, ['/login']);

  // The sends still waiting stop, and write nothing back.
  const before = p.posts.length;
  p.outbox.wake();
  await tick();
  assert.equal(p.posts.length, before, 'no attempt after signing out');
  assert.deepEqual(ours(backend), []);
});

test('a 401 (the session is gone) forgets them too, even one in flight that answers afterwards', async () => {
  const backend = new MemoryStorage();
  let answerLate;
  const p = page(backend, (path, body) => {
    if (body?.body === 'slow') return new Promise((r) => (answerLate = () => r({ message: { id: '9', conversationId: '1', clientId: body.clientId, status: 'pending', seq: 2 } })));
    return Promise.reject(new ApiError(401, 'unauthorized', 'Sign in'));
  });
  const slow = p.outbox.send(p.store.conversations.get('1'), 'slow');
  await p.outbox.send(p.store.conversations.get('1'), 'Hello');
  assert.deepEqual(p.went, ['/login?session=ended'], 'the sign-in page is told why');
  assert.deepEqual(ours(backend), []);
  answerLate();
  await slow;
  assert.deepEqual(ours(backend), [], 'the late answer writes nothing back');
  // Leaving is once, whatever else answers 401 on the way out.
  p.session.handleAuthError(new ApiError(401, 'unauthorized', 'Sign in'));
  assert.deepEqual(p.went, ['/login?session=ended']);
});

test('a logout the server did not do keeps everything: the agent is still signed in', async () => {
  for (const failure of [new ApiError(503, 'unavailable', 'The database is not answering'), new ApiError(403, 'forbidden', 'Not from here'), new TypeError('Failed to fetch')]) {
    const backend = new MemoryStorage();
    const p = page(backend, (path) => (path === '/api/auth/logout' ? Promise.reject(failure) : offline()));
    p.outbox.send(p.store.conversations.get('1'), 'Still queued');
    await tick();
    await p.session.logout();
    assert.deepEqual(p.went, [], `stays after ${failure.message}`);
    assert.equal(p.toasts.length, 1);
    assert.match(backend.getItem('smsdesk.outbox.7'), /Still queued/);
    // ...and the queue still sends it once the server answers.
    p.outbox.wake();
    await tick();
    assert.ok(p.posts.filter((x) => x === '/api/crm/sms/send').length >= 2, 'still retried');
    p.outbox.stop();
  }
});

test('other errors are not a sign-out', () => {
  const backend = new MemoryStorage();
  backend.setItem('smsdesk.outbox.7', '[]');
  const p = page(backend, offline);
  for (const err of [new ApiError(403, 'forbidden', 'x'), new ApiError(500, 'internal', 'x'), new TypeError('x'), null]) {
    assert.equal(p.session.handleAuthError(err), false);
  }
  assert.deepEqual(p.went, []);
  assert.deepEqual(ours(backend), ['smsdesk.outbox.7']);
});

test('where the browser refuses storage, sends and sign-out still work (the queue lives in memory)', async () => {
  const p = page(null, (path, body) => (path === '/api/auth/logout' ? null : { message: { id: '5', conversationId: '1', clientId: body.clientId, status: 'pending', seq: 1 } }));
  await p.outbox.send(p.store.conversations.get('1'), 'Hello');
  assert.deepEqual(Array.from(p.store.messages.values(), (m) => m.id), ['5']);
  await p.session.logout();
  assert.deepEqual(p.went, ['/login']);
});
