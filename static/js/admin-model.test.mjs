// Run: node --test static/js/admin-model.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseNumbers,
  statusOf,
  isLastAdmin,
  rowModel,
  sortAgents,
  inviteBody,
  editBody,
  describeAdminError,
} from './admin-model.js';

const agent = (over) => ({
  id: '1',
  email: 'a@x.io',
  name: 'Ana',
  role: 'agent',
  numbers: ['+15550001000'],
  disabled: false,
  invitePending: false,
  ...over,
});

test('numbers are split on commas, semicolons and lines', () => {
  assert.deepEqual(parseNumbers(' +1 555 123 0000, +15551230001\n\n+1 (555) 123-0002;'), [
    '+1 555 123 0000',
    '+15551230001',
    '+1 (555) 123-0002',
  ]);
  assert.deepEqual(parseNumbers(''), []);
  assert.deepEqual(parseNumbers(null), []);
});

test('a status says disabled before invited', () => {
  assert.equal(statusOf(agent()), 'active');
  assert.equal(statusOf(agent({ invitePending: true })), 'invited');
  assert.equal(statusOf(agent({ invitePending: true, disabled: true })), 'disabled');
});

test('the last active admin is found, a disabled admin does not count', () => {
  const boss = agent({ id: '1', role: 'admin' });
  const other = agent({ id: '2', role: 'admin', disabled: true });
  assert.equal(isLastAdmin([boss, other], boss), true);
  assert.equal(isLastAdmin([boss, { ...other, disabled: false }], boss), false);
  assert.equal(isLastAdmin([boss, other], other), false, 'a disabled admin is not the last active one');
  assert.equal(isLastAdmin([boss], agent({ id: '3' })), false);
});

test('a row offers only what the server would allow', () => {
  const boss = agent({ id: '1', role: 'admin', numbers: ['+15550001000', '+15550002000'] });
  const invited = agent({ id: '2', invitePending: true });
  const gone = agent({ id: '3', disabled: true });
  const all = [boss, invited, gone];
  const row = rowModel(boss, all, (n) => `(${n})`);
  assert.equal(row.role, 'Admin');
  assert.equal(row.numbers, '(+15550001000), (+15550002000)');
  assert.equal(row.statusLabel, 'Active');
  assert.equal(row.canDisable, false, 'the last admin');
  assert.equal(row.lastAdmin, true);
  assert.deepEqual(
    [rowModel(invited, all).statusLabel, rowModel(invited, all).canReinvite, rowModel(invited, all).canDisable],
    ['Invite pending', true, true],
  );
  assert.deepEqual([rowModel(gone, all).canEnable, rowModel(gone, all).canDisable], [true, false]);
  assert.equal(rowModel(agent({ name: '<b>x</b>' }), all).name, '<b>x</b>', 'text, shown as text');
});

test('agents sort active, invited, disabled, then by name', () => {
  const list = [
    agent({ id: '1', name: 'zed', disabled: true }),
    agent({ id: '2', name: 'Bea', invitePending: true }),
    agent({ id: '3', name: 'carl' }),
    agent({ id: '4', name: 'Abe' }),
  ];
  assert.deepEqual(sortAgents(list).map((a) => a.id), ['4', '3', '2', '1']);
});

test('the invite form sends trimmed fields and a known role', () => {
  assert.deepEqual(inviteBody({ email: ' b@x.io ', name: ' Bo ', numbers: '+15550001000\n+15550002000', role: 'admin' }), {
    body: { email: 'b@x.io', name: 'Bo', numbers: ['+15550001000', '+15550002000'], role: 'admin' },
  });
  assert.equal(inviteBody({ email: 'b@x.io', name: 'Bo', numbers: '1', role: 'root' }).body.role, 'agent');
  assert.deepEqual(inviteBody({ email: '', name: '', numbers: '' }), {
    error: 'Enter a name, an email, at least one number.',
  });
});

test('the edit form sends only what changed', () => {
  const a = agent({ numbers: ['+15550001000', '+15550002000'] });
  assert.deepEqual(editBody(a, { name: ' Ana ', numbers: '+15550001000\n+15550002000', role: 'agent' }), { body: {} });
  assert.deepEqual(editBody(a, { name: 'Ana B', numbers: '+15550001000', role: 'admin' }), {
    body: { name: 'Ana B', numbers: ['+15550001000'], role: 'admin' },
  });
  assert.deepEqual(editBody(a, { name: ' ', numbers: '+1', role: 'agent' }), { error: 'Enter a name.' });
  assert.deepEqual(editBody(a, { name: 'Ana', numbers: '', role: 'agent' }), { error: 'Enter at least one number.' });
});

test('admin errors read as sentences', () => {
  assert.match(describeAdminError({ status: 409, code: 'email_taken' }), /exists already/);
  assert.match(describeAdminError({ status: 409, code: 'last_admin' }), /last active admin/);
  assert.match(describeAdminError({ status: 403, code: 'forbidden' }), /Only admins/);
  assert.match(describeAdminError(new TypeError('fetch failed')), /reach the server/);
  assert.equal(describeAdminError({ status: 422, code: 'invalid_field', message: 'name must be 1 to 100 characters' }), 'name must be 1 to 100 characters');
});
