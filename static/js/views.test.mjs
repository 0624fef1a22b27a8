// Run: node --test static/js/views.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VIEWS, DEFAULT_VIEW, COUNTS_WAIT_MS, belongs, countLabel, countsByView, createCounts, listed, nextAfter, statusOf, viewById, viewParams } from './views.js';
import { Store } from './store.js';

const conv = (status, assignee) => ({ id: '1', status, snoozedUntil: null, assignee: assignee == null ? null : { id: assignee, name: 'X' } });

test('the views in order, Mine first, each with the filters the server takes', () => {
  assert.deepEqual(VIEWS.map((v) => v.label), ['Mine', 'Unassigned', 'Open', 'Snoozed', 'Closed']);
  assert.deepEqual(viewParams('mine'), { status: 'open', assignee: 'me' });
  assert.deepEqual(viewParams('unassigned'), { status: 'open', assignee: 'none' });
  assert.deepEqual(viewParams('open'), { status: 'open' });
  assert.deepEqual(viewParams('snoozed'), { status: 'snoozed' });
  assert.deepEqual(viewParams('closed'), { status: 'closed' });
  assert.equal(viewById('nonsense').id, DEFAULT_VIEW, 'an unknown view (an old saved choice) is the default one');
});

test('a conversation belongs to the views its status and assignee put it in', () => {
  const where = (c) => VIEWS.filter((v) => belongs(c, v.id, '7')).map((v) => v.id);
  assert.deepEqual(where(conv('open', null)), ['unassigned', 'open']);
  assert.deepEqual(where(conv('open', 7)), ['mine', 'open'], 'an id as a number is the same agent');
  assert.deepEqual(where(conv('open', '8')), ['open'], "a colleague's is only Open");
  assert.deepEqual(where(conv('snoozed', '7')), ['snoozed']);
  assert.deepEqual(where(conv('closed', null)), ['closed']);
  assert.deepEqual(where({ id: '2' }), ['unassigned', 'open'], 'a conversation without the fields is open and unassigned');
  assert.equal(statusOf({ status: 'weird' }), 'open');
});

test('counts: whole numbers per view; anything else shows nothing', () => {
  assert.deepEqual(countsByView({ mine: 2, unassigned: 0, open: 5, snoozed: 1, closed: 1200 }), {
    mine: 2,
    unassigned: 0,
    open: 5,
    snoozed: 1,
    closed: 1200,
  });
  assert.deepEqual(countsByView(null), { mine: null, unassigned: null, open: null, snoozed: null, closed: null });
  assert.deepEqual(countsByView({ mine: '2', open: -1, closed: 1.5 }).mine, null);
  assert.equal(countLabel(null), '');
  assert.equal(countLabel(0), '0');
  assert.equal(countLabel(1200), '999+');
});

test('the next conversation after one leaves the list: below it, else above it, else none', () => {
  assert.equal(nextAfter(['a', 'b', 'c'], 'b'), 'c');
  assert.equal(nextAfter(['a', 'b', 'c'], 'c'), 'b');
  assert.equal(nextAfter(['a'], 'a'), null);
  assert.equal(nextAfter(['a', 'b'], 'z'), 'a', 'one no longer listed: the first');
  assert.equal(nextAfter([], 'z'), null);
});

test('the list: what belongs to the view now, no gap below its last page, only the results while searching', () => {
  const store = new Store();
  const at = (min) => new Date(Date.UTC(2026, 0, 14, 10, min)).toISOString();
  const add = (id, min, status, assignee = null) =>
    store.upsertConversation({ id, status, assignee: assignee && { id: assignee, name: 'X' }, updatedAt: at(min), lastMessage: null, contact: {} });
  add('a', 50, 'open', '7');
  add('b', 40, 'open');
  add('c', 30, 'closed');
  add('d', 10, 'open'); // known from elsewhere, older than the view's page
  const list = (view, extra = {}) =>
    listed(store.sortedConversations(), {
      belongs: (c) => belongs(c, view, '7'),
      page: { loaded: true, nextCursor: 'more', oldest: Date.parse(at(30)) },
      activity: (c) => store.activity(c),
      ...extra,
    }).map((c) => c.id);
  assert.deepEqual(list('open'), ['a', 'b'], 'd waits for the page that holds it');
  assert.deepEqual(list('open', { page: { loaded: true, nextCursor: null, oldest: Date.parse(at(30)) } }), ['a', 'b', 'd'], 'the last page: all of them');
  assert.deepEqual(list('mine'), ['a']);
  assert.deepEqual(list('closed'), ['c']);

  // Closed by someone: it leaves Open and enters Closed as its update arrives.
  store.upsertConversation({ id: 'b', status: 'closed' });
  assert.deepEqual(list('open'), ['a']);
  assert.deepEqual(list('closed'), ['b', 'c']);
  // Reopened by an inbound SMS (newer activity): back in Open, at the top.
  store.upsertConversation({ id: 'c', status: 'open', updatedAt: at(55) });
  assert.deepEqual(list('open'), ['c', 'a']);
  assert.deepEqual(list('unassigned'), ['c']);

  // A search shows its results that are in the view, whatever their age.
  assert.deepEqual(list('open', { found: ['d', 'b', 'a'] }), ['a', 'd']);
  assert.deepEqual(list('open', { found: [] }), []);
});

test('counts: a burst of changes is one read, one during a read is one more after it, a failure keeps them', async () => {
  const timers = [];
  const answers = [];
  let asked = 0;
  const shown = [];
  const counts = createCounts({
    fetchCounts: () => {
      asked += 1;
      return new Promise((resolve, reject) => answers.push({ resolve, reject }));
    },
    onChange: (c) => shown.push(c.mine),
    onError: () => false,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
  });
  const settle = () => new Promise((r) => setImmediate(r));
  for (let i = 0; i < 5; i += 1) counts.request();
  assert.equal(timers.length, 1, 'one wait for the whole burst');
  assert.equal(timers[0].ms, COUNTS_WAIT_MS);
  assert.equal(asked, 0);
  timers.shift().fn();
  assert.equal(asked, 1);
  counts.request(); // a change while the read is out: a new wait…
  timers.shift().fn(); // …whose read joins the one out
  counts.load();
  assert.equal(asked, 1, 'never two reads at once');
  answers.shift().resolve({ mine: 1, unassigned: 0, open: 1, snoozed: 0, closed: 0 });
  await settle();
  assert.equal(asked, 2, 'read once more after it');
  answers.shift().resolve({ mine: 2, unassigned: 0, open: 2, snoozed: 0, closed: 0 });
  await settle();
  assert.deepEqual(shown, [1, 2]);
  counts.load();
  answers.shift().reject(new TypeError('Failed to fetch'));
  await settle();
  assert.equal(counts.counts().mine, 2, 'what is shown stays');
  assert.equal(asked, 3);
});
