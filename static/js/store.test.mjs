// Run: node --test static/js/store.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Store, STATUS_RANK, statusRank, mayReplace, statusGroup, notDelivered } from './store.js';

const fixture = JSON.parse(readFileSync(new URL('../../tests/fixtures/status_precedence.json', import.meta.url), 'utf8'));

test('status ranks and "may replace" are the shared table (tests/fixtures/status_precedence.json)', () => {
  assert.deepEqual(Object.keys(STATUS_RANK).sort(), Object.keys(fixture.ranks).sort(), 'the same statuses');
  for (const [status, rank] of Object.entries(fixture.ranks)) assert.equal(statusRank(status), rank, `rank of ${status}`);
  for (const [next, row] of Object.entries(fixture.mayReplace)) {
    for (const [current, want] of Object.entries(row)) {
      assert.equal(mayReplace(next, current), want, `may ${next} replace ${current}?`);
    }
  }
});

// The same rule where the page applies it: updates without a seq (the server's seq decides otherwise).
test('a message held by the store follows the table for status updates without a seq', () => {
  for (const [next, row] of Object.entries(fixture.mayReplace)) {
    for (const [current, want] of Object.entries(row)) {
      if (next === current) continue;
      const store = new Store();
      store.upsertMessage({ id: '1', conversationId: 'c', direction: 'outbound', status: current });
      const r = store.upsertMessage({ id: '1', conversationId: 'c', direction: 'outbound', status: next });
      assert.equal(r.changed, want, `${current} then ${next}`);
      assert.equal(store.getMessage(r.key).status, want ? next : current);
    }
  }
});

const msg = (over) => ({
  id: '10',
  conversationId: '1',
  direction: 'outbound',
  body: 'hi',
  status: 'queued',
  createdAt: '2026-01-12T10:00:00.000Z',
  seq: 5,
  ...over,
});

test('with a seq, the newer change wins, whatever the statuses', () => {
  const store = new Store();
  store.upsertMessage(msg({ status: 'delivered', seq: 7 }));
  assert.equal(store.upsertMessage(msg({ status: 'sent', seq: 6 })).changed, false, 'older change ignored');
  assert.equal(store.getMessage('i:10').status, 'delivered');
  store.upsertMessage(msg({ status: 'failed', seq: '8', errorMessage: 'nope' }));
  assert.equal(store.getMessage('i:10').status, 'failed');
  assert.equal(store.getMessage('i:10').seq, 8, 'a seq sent as a string is a number');
  assert.equal(store.maxSeq, 8);
});

test('our optimistic bubble and the server copy of it (same clientId) are one message', () => {
  const store = new Store();
  store.upsertConversation({ id: '1', contact: { phone: '+14155550123' }, unreadCount: 0 });
  const local = msg({ id: null, clientId: 'abc', status: 'pending', seq: null, _local: true });
  const first = store.upsertMessage(local);
  assert.equal(first.key, 'c:abc');
  // The server's answer and its message:new carry the same clientId: the same bubble.
  const r = store.upsertMessage(msg({ id: '10', clientId: 'abc', status: 'pending', seq: 3 }));
  assert.equal(r.key, 'c:abc');
  assert.equal(r.isNew, false);
  const m = store.getMessage('c:abc');
  assert.equal(m.id, '10');
  assert.equal(m._local, undefined, 'no longer local');
  // A status by id finds it.
  store.applyStatus({ id: 10, status: 'sent', seq: 4 });
  assert.equal(store.getMessage('c:abc').status, 'sent');
  assert.equal(store.messages.size, 1);
  assert.equal(store.conversations.get('1').lastMessage.status, 'sent');
  // A stale local copy (restored from storage) never overrides the server's.
  assert.equal(store.upsertMessage({ ...local }).changed, false);
});

test('a status that comes before its message is applied when the message arrives', () => {
  const store = new Store();
  assert.equal(store.applyStatus({ id: '10', conversationId: '1', status: 'sent', seq: 6 }), null);
  const r = store.upsertMessage(msg({ status: 'pending', seq: 5 }));
  assert.equal(r.msg.status, 'sent');
  assert.equal(store.getMessage('i:10').status, 'sent');
  assert.equal(store.earlyStatus.size, 0);
  // One older than the message is not.
  store.applyStatus({ id: '11', status: 'queued', seq: 1 });
  assert.equal(store.upsertMessage(msg({ id: '11', status: 'delivered', seq: 9 })).msg.status, 'delivered');
  // Kept for a bounded number of messages.
  for (let i = 0; i < 1000; i += 1) store.applyStatus({ id: `x${i}`, status: 'sent' });
  assert.equal(store.earlyStatus.size, 200);
});

test('conversations: newest activity first; lastMessage follows the newest message; unread total', () => {
  const store = new Store();
  store.upsertConversation({ id: '1', updatedAt: '2026-01-12T09:00:00Z', unreadCount: 2, contact: { phone: '+1', name: 'A' } });
  store.upsertConversation({ id: '2', updatedAt: '2026-01-12T08:00:00Z', unreadCount: '3', contact: { phone: '+2' } });
  assert.deepEqual(store.sortedConversations().map((c) => c.id), ['1', '2']);
  store.upsertMessage(msg({ id: '20', conversationId: '2', createdAt: '2026-01-12T11:00:00Z', seq: 9 }));
  assert.deepEqual(store.sortedConversations().map((c) => c.id), ['2', '1']);
  assert.equal(store.conversations.get('2').lastMessage.id, '20');
  assert.equal(store.totalUnread(), 5);
  // An update without a contact name keeps the one we have.
  store.upsertConversation({ id: '1', contact: { optedOut: true } });
  assert.deepEqual(store.conversations.get('1').contact, { phone: '+1', name: 'A', optedOut: true });
  // Removing the last message falls back to the one before.
  store.upsertMessage(msg({ id: '21', conversationId: '2', createdAt: '2026-01-12T10:00:00Z', seq: 8 }));
  store.removeMessage('i:20');
  assert.equal(store.conversations.get('2').lastMessage.id, '21');
});

test('a conversation whose last message was not delivered says so, and follows its status events', () => {
  const store = new Store();
  store.upsertConversation({ id: '1', contact: { phone: '+14155550123' } });
  const last = () => store.conversations.get('1').lastMessage;
  store.upsertMessage(msg({ status: 'pending', seq: 1 }));
  assert.equal(notDelivered(last()), false);
  store.applyStatus({ id: '10', status: 'failed', errorCode: 21211, seq: 2 });
  assert.equal(notDelivered(last()), true);
  assert.equal(last().errorCode, 21211);
  // A late delivery receipt is the truth.
  store.applyStatus({ id: '10', status: 'delivered', seq: 3 });
  assert.equal(notDelivered(last()), false);
  store.applyStatus({ id: '10', status: 'undelivered', seq: 4 });
  assert.equal(notDelivered(last()), true);
  // A newer message (the retry, or the contact's answer) takes its place.
  store.upsertMessage(msg({ id: '11', status: 'queued', createdAt: '2026-01-12T10:05:00.000Z', seq: 5 }));
  assert.equal(notDelivered(last()), false);
  for (const status of ['failed', 'undelivered']) assert.equal(notDelivered({ direction: 'inbound', status }), false);
  assert.equal(notDelivered({ direction: 'outbound', status: 'canceled' }), false);
  assert.equal(notDelivered(null), false);
});

test('a thread shows the loaded range, oldest first, with local bubbles last among equals', () => {
  const store = new Store();
  store.upsertMessage(msg({ id: '1', createdAt: '2026-01-12T10:00:00Z', seq: 1 }));
  store.upsertMessage(msg({ id: '2', createdAt: '2026-01-12T12:00:00Z', seq: 3 }));
  store.upsertMessage(msg({ id: '3', createdAt: '2026-01-12T11:00:00Z', seq: 2 }));
  store.upsertMessage(msg({ id: null, clientId: 'z', createdAt: '2026-01-12T12:00:00Z', seq: null, _local: true }));
  const ids = (list) => list.map((m) => m.id ?? m.clientId);
  assert.deepEqual(ids(store.messagesFor('1', { complete: true })), ['1', '3', '2', 'z']);
  assert.deepEqual(ids(store.messagesFor('1', { complete: false, oldest: Date.parse('2026-01-12T11:00:00Z') })), ['3', '2', 'z']);
  assert.equal(store.latestTime('1'), Date.parse('2026-01-12T12:00:00Z'));
});

test('garbage is refused; ids are strings', () => {
  const store = new Store();
  assert.equal(store.upsertMessage(null), null);
  assert.equal(store.upsertMessage({ id: '1' }), null, 'no conversation');
  assert.equal(store.upsertMessage({ conversationId: '1' }), null, 'neither id nor clientId');
  assert.equal(store.upsertConversation({}), null);
  assert.equal(store.applyStatus({}), null);
  const r = store.upsertMessage({ id: 7, conversationId: 3, media: 'not a list' });
  assert.equal(r.msg.id, '7');
  assert.equal(r.msg.conversationId, '3');
  assert.deepEqual(r.msg.media, []);
});

test('what the page shows for each status', () => {
  const groups = Object.fromEntries(Object.keys(STATUS_RANK).map((s) => [s, statusGroup(s)]));
  assert.deepEqual(groups, {
    pending: 'pending',
    accepted: 'pending',
    scheduled: 'pending',
    queued: 'pending',
    sending: 'pending',
    sent: 'sent',
    delivered: 'delivered',
    undelivered: 'failed',
    failed: 'failed',
    canceled: 'canceled',
    read: 'delivered',
    received: 'received',
  });
});
