// Run: node --test static/js/views.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VIEWS, DEFAULT_VIEW, belongs, countLabel, countsByView, nextAfter, statusOf, viewById, viewParams } from './views.js';

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
