// Run: node --test static/js/sync.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './api.js';
import { init, nextCursor } from './sync.js';

test('nextCursor: the server cursor, as a number or a numeric string, never backwards', () => {
  assert.equal(nextCursor(5, 9, []), 9);
  assert.equal(nextCursor(5, '12', []), 12);
  assert.equal(nextCursor(5, 3, []), 5, 'never backwards');
  assert.equal(nextCursor(5, '3', [{ seq: 40 }]), 5, 'the server cursor is the truth when readable');
});

test('nextCursor: without a readable cursor, the highest seq of the page', () => {
  assert.equal(nextCursor(5, undefined, [{ seq: 7 }, { seq: 9 }, { seq: 8 }]), 9);
  assert.equal(nextCursor(5, null, [{ seq: '11' }, {}, null]), 11);
  assert.equal(nextCursor(5, 'abc', [{ seq: 2 }]), 5);
  assert.equal(nextCursor(5, '', []), 5);
  assert.equal(nextCursor(5, NaN, []), 5);
  assert.equal(nextCursor(5, Infinity, [{ seq: 6 }]), 6);
});

/** A fake GET /sync over `changes` (seq ascending), answering `limit` at a time. */
function fakeServer(changes) {
  const calls = [];
  const get = async (path) => {
    const url = new URL(path, 'http://x');
    calls.push(path);
    const since = Number(url.searchParams.get('since'));
    const limit = Number(url.searchParams.get('limit'));
    const after = changes.filter((m) => m.seq > since);
    const page = after.slice(0, limit);
    return { messages: page, cursor: page.length ? page.at(-1).seq : since, hasMore: after.length > limit };
  };
  return { get, calls };
}

const quiet = { onAuthError: () => false, isConnected: () => true };

test('nothing before start(); then pages from the cursor until hasMore is false', async () => {
  const changes = Array.from({ length: 7 }, (_, i) => ({ id: String(i), seq: 10 + i }));
  const server = fakeServer(changes);
  const seen = [];
  let done = 0;
  const sync = init({ ...quiet, get: server.get, ingest: (m) => seen.push(m.seq), onDone: () => (done += 1), limit: 3 });
  await sync.run();
  assert.deepEqual(server.calls, [], 'no sync before the first conversation page set the cursor');
  sync.start(11);
  sync.start(0); // later starts change nothing
  await sync.run();
  assert.deepEqual(seen, [12, 13, 14, 15, 16]);
  assert.deepEqual(server.calls, ['/api/crm/sms/sync?since=11&limit=3', '/api/crm/sms/sync?since=14&limit=3']);
  assert.equal(sync.cursor(), 16);
  assert.equal(done, 1);
  // A reconnect asks from where it stopped.
  changes.push({ id: 'n', seq: 30 });
  await sync.run();
  assert.deepEqual(seen, [12, 13, 14, 15, 16, 30]);
  assert.equal(sync.cursor(), 30);
});

test("the conversations of a page are taken before its messages", async () => {
  const order = [];
  const get = async () => ({
    messages: [{ id: 'm', conversationId: '4', seq: 3 }],
    conversations: [{ id: '4', status: 'open', assignee: null }],
    cursor: 3,
    hasMore: false,
  });
  const sync = init({ ...quiet, get, ingest: (m) => order.push(`message ${m.id}`), ingestConversation: (c) => order.push(`conversation ${c.id}`) });
  sync.start(0);
  await sync.run();
  assert.deepEqual(order, ['conversation 4', 'message m']);
});

test('a run while one is going makes it go round once more, not twice in parallel', async () => {
  let release;
  let inflight = 0;
  let maxInflight = 0;
  const calls = [];
  const get = async (path) => {
    calls.push(path);
    inflight += 1;
    maxInflight = Math.max(maxInflight, inflight);
    await new Promise((r) => (release = r));
    inflight -= 1;
    return { messages: [], cursor: 0, hasMore: false };
  };
  const sync = init({ ...quiet, get, ingest: () => {} });
  sync.start(0);
  const first = sync.run();
  sync.run();
  sync.run();
  release();
  await new Promise(setImmediate);
  release();
  await first;
  assert.equal(calls.length, 2, 'once more, however many runs were asked for');
  assert.equal(maxInflight, 1);
});

test('a page that does not move the cursor ends the sync instead of looping', async () => {
  let calls = 0;
  const get = async () => {
    calls += 1;
    return { messages: [{ id: '1', seq: 3 }], cursor: 3, hasMore: true };
  };
  const sync = init({ ...quiet, get, ingest: () => {} });
  sync.start(3);
  await sync.run();
  assert.equal(calls, 1);
});

test('transient failures are retried with backoff while connected; others stop the sync', async () => {
  const waits = [];
  let n = 0;
  const get = async () => {
    n += 1;
    if (n <= 2) throw new TypeError('Failed to fetch');
    return { messages: [{ id: 'a', seq: 4 }], cursor: 4, hasMore: false };
  };
  let done = 0;
  const sync = init({ ...quiet, get, ingest: () => {}, sleep: async (ms) => waits.push(ms), onDone: () => (done += 1) });
  sync.start(1);
  await sync.run();
  assert.deepEqual(waits, [1000, 2000]);
  assert.equal(sync.cursor(), 4);
  assert.equal(done, 1);

  // Offline (socket not connected): no retry; a 500 is not retried either; the cursor stays.
  const warn = console.warn;
  console.warn = () => {};
  try {
    for (const [err, connected] of [
      [new TypeError('Failed to fetch'), false],
      [new ApiError(500, 'internal', 'boom'), true],
    ]) {
      const tries = [];
      const failing = init({
        get: async () => {
          tries.push(1);
          throw err;
        },
        ingest: () => {},
        onAuthError: () => false,
        isConnected: () => connected,
        sleep: async () => {},
        onDone: () => assert.fail('not done'),
      });
      failing.start(9);
      await failing.run();
      assert.equal(tries.length, 1);
      assert.equal(failing.cursor(), 9);
    }
  } finally {
    console.warn = warn;
  }
});

test('a 401 hands over to the session (which leaves the page)', async () => {
  const seen = [];
  const sync = init({
    get: async () => {
      throw new ApiError(401, 'unauthorized', 'Sign in');
    },
    ingest: () => {},
    onAuthError: (err) => {
      seen.push(err.status);
      return true;
    },
    isConnected: () => true,
    onDone: () => assert.fail('not done'),
  });
  sync.start(0);
  await sync.run();
  assert.deepEqual(seen, [401]);
});
