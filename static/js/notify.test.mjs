// Run: node --test static/js/notify.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFS_KEY, notificationFor, readPrefs, shouldNotify, writePrefs } from './notify.js';
import { PREFIX } from './storage.js';

const inbound = { id: '7', conversationId: '3', direction: 'inbound', from: '+15551230000', body: 'Hi there\nsecond line', media: [] };

test('an inbound message notifies unless its conversation is open in a visible tab', () => {
  assert.equal(shouldNotify({ message: inbound, openId: '9', hidden: false }), true);
  assert.equal(shouldNotify({ message: inbound, openId: null, hidden: false }), true);
  assert.equal(shouldNotify({ message: inbound, openId: '3', hidden: false }), false);
  assert.equal(shouldNotify({ message: inbound, openId: '3', hidden: true }), true, 'tab hidden');
  assert.equal(shouldNotify({ message: { ...inbound, direction: 'outbound' }, openId: '9', hidden: true }), false);
});

test('title: the contact name or number; body: the first line; one tag per conversation', () => {
  const named = { contact: { name: 'Ana', phone: '+15551230000' } };
  assert.deepEqual(notificationFor(inbound, named), { title: 'Ana', options: { body: 'Hi there', tag: 'conv-3' } });
  const unnamed = { contact: { phone: '+15551230000' } };
  assert.equal(notificationFor(inbound, unnamed).title, '+1 (555) 123-0000');
  assert.equal(notificationFor(inbound, undefined).title, '+1 (555) 123-0000');
  assert.equal(notificationFor({ ...inbound, body: '\n  \n  later' }, named).options.body, 'later');
  assert.equal(notificationFor({ ...inbound, body: '', media: [{ url: 'x' }] }, named).options.body, 'Sent an attachment');
});

/** localStorage's interface over a Map. */
function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

test('both choices are off by default and persist', () => {
  const s = memoryStorage();
  assert.deepEqual(readPrefs(s), { notify: false, sound: false });
  writePrefs(s, { notify: true, sound: false });
  assert.deepEqual(readPrefs(s), { notify: true, sound: false });
  assert.deepEqual(readPrefs(null), { notify: false, sound: false });
  s.setItem(PREFS_KEY, '{not json');
  assert.deepEqual(readPrefs(s), { notify: false, sound: false });
});

test('the choices are not among what signing out forgets (they hold no message text)', () => {
  assert.equal(PREFS_KEY.startsWith(PREFIX), false);
});
