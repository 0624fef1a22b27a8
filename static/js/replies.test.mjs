// Run: node --test static/js/replies.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  SHORTCUT,
  SHORTCUT_RULE,
  BODY_RULE,
  canChange,
  sortReplies,
  slashQuery,
  matchReplies,
  placeholderValues,
  fillPlaceholders,
  normalizeShortcut,
  replyBody,
  describeReplyError,
  createReplies,
} from './replies.js';
import { formatPhone } from './format.js';

const fixture = JSON.parse(readFileSync(new URL('../../tests/fixtures/shortcuts.json', import.meta.url), 'utf8'));

const reply = (shortcut, body, over) => ({
  id: shortcut,
  shortcut,
  body,
  agentId: '7',
  updatedAt: '2026-01-05T09:30:00.000Z',
  ...over,
});

test('shortcuts follow the shared rule (tests/fixtures/shortcuts.json, as src/domain/shortcut.rs does)', () => {
  assert.ok(fixture.valid.length && fixture.invalid.length);
  for (const good of fixture.valid) assert.ok(SHORTCUT.test(good), JSON.stringify(good));
  for (const bad of fixture.invalid) assert.ok(!SHORTCUT.test(bad), JSON.stringify(bad));
});

test('its author or an admin may change a reply', () => {
  const r = reply('thanks', 'Thanks!');
  assert.equal(canChange(r, { id: '7', role: 'agent' }), true);
  assert.equal(canChange(r, { id: 7, role: 'agent' }), true, 'ids compared as text');
  assert.equal(canChange(r, { id: '8', role: 'admin' }), true);
  assert.equal(canChange(r, { id: '8', role: 'agent' }), false);
  assert.equal(canChange(r, null), false);
});

test('sorted by shortcut in byte order, as the server sorts them', () => {
  const sorted = sortReplies([reply('thanks_again', ''), reply('thanks-late', ''), reply('2fa', ''), reply('thanks', ''), reply('hours', '')]);
  assert.deepEqual(
    sorted.map((r) => r.shortcut),
    ['2fa', 'hours', 'thanks', 'thanks-late', 'thanks_again'],
  );
});

test('the picker opens on a single line that starts with /', () => {
  assert.equal(slashQuery('/'), '');
  assert.equal(slashQuery('/than'), 'than');
  assert.equal(slashQuery('/thanks for'), 'thanks for');
  assert.equal(slashQuery('hi /than'), null, 'only at the start');
  assert.equal(slashQuery(' /than'), null);
  assert.equal(slashQuery('/than\nmore'), null, 'not once the text has a second line');
  assert.equal(slashQuery(''), null);
  assert.equal(slashQuery(undefined), null);
});

test('shortcut prefixes first, then shortcuts that hold the text, then texts that hold it', () => {
  const replies = [
    reply('welcome', 'Thanks for writing, we will get back to you.'),
    reply('thanks-late', 'Sorry for the wait!'),
    reply('thanks', 'Thanks!'),
    reply('nothanks', 'No, thank you.'),
    reply('hours', 'We are open 9 to 5.'),
    reply('cafe', 'Le Café est ouvert.'),
    reply('hi', 'Hi {{contact.name}}!'),
  ];
  const shortcuts = (q) => matchReplies(replies, q).map((r) => r.shortcut);
  assert.deepEqual(shortcuts(''), ['cafe', 'hi', 'hours', 'nothanks', 'thanks', 'thanks-late', 'welcome']);
  assert.deepEqual(shortcuts('than'), ['thanks', 'thanks-late', 'nothanks', 'welcome']);
  assert.deepEqual(shortcuts('THANKS-'), ['thanks-late'], 'whatever the case');
  assert.deepEqual(shortcuts('wait'), ['thanks-late'], 'in the text');
  assert.deepEqual(shortcuts('cafe est'), ['cafe'], 'accents aside');
  assert.deepEqual(shortcuts('café'), ['cafe']);
  assert.deepEqual(shortcuts('  hours '), ['hours'], 'spaces around it aside');
  assert.deepEqual(shortcuts('pizza'), []);
  assert.deepEqual(shortcuts('contact'), [], 'placeholders are not text');
});

test('placeholders are filled in: the contact\'s name or nothing, their number as shown, the agent\'s name', () => {
  const conversation = { contact: { phone: '+14155550123', name: 'Jane Doe' } };
  const agent = { id: '1', name: 'Alice Agent' };
  const values = placeholderValues(conversation, agent, formatPhone);
  assert.deepEqual(values, {
    'contact.name': 'Jane Doe',
    'contact.phone': '+1 (415) 555-0123',
    'agent.name': 'Alice Agent',
  });
  assert.equal(
    fillPlaceholders('Hi {{contact.name}}, this is {{agent.name}}. We have {{contact.phone}} on file; {{ contact.name }} again.', values),
    'Hi Jane Doe, this is Alice Agent. We have +1 (415) 555-0123 on file; Jane Doe again.',
  );
  const nameless = placeholderValues({ contact: { phone: '+14155550123', name: null } }, agent, formatPhone);
  assert.equal(fillPlaceholders('Hi {{contact.name}}!', nameless), 'Hi !', 'an empty name is an empty string, never the braces');
  assert.equal(fillPlaceholders('Hi {{contact.name}}!', placeholderValues({ contact: { phone: '+1', name: '   ' } }, agent)), 'Hi !');
  assert.equal(fillPlaceholders('{{agent.name}}', placeholderValues(null, null)), '');
  assert.equal(
    fillPlaceholders('{{contact.email}} {contact.name} {{contact.name}', values),
    '{{contact.email}} {contact.name} {{contact.name}',
    'anything else stays as written',
  );
  assert.equal(fillPlaceholders('$& $1 {{agent.name}}', { 'agent.name': '$& $1' }), '$& $1 $& $1', 'values are text, not patterns');
});

test('the form sends a shortcut as the rule wants it, and only what changed', () => {
  assert.equal(normalizeShortcut('  /Thanks-Late '), 'thanks-late');
  assert.deepEqual(replyBody(null, { shortcut: ' /Thanks', body: 'Thanks, {{contact.name}}!' }), {
    body: { shortcut: 'thanks', body: 'Thanks, {{contact.name}}!' },
  });
  assert.deepEqual(replyBody(null, { shortcut: 'thanks late', body: 'x' }), { error: SHORTCUT_RULE });
  assert.deepEqual(replyBody(null, { shortcut: '', body: 'x' }), { error: SHORTCUT_RULE });
  assert.deepEqual(replyBody(null, { shortcut: 'ok', body: ' \n ' }), { error: BODY_RULE });
  assert.deepEqual(replyBody(null, { shortcut: 'ok', body: 'é'.repeat(1601) }), { error: BODY_RULE });
  assert.deepEqual(replyBody(null, { shortcut: 'ok', body: '😀'.repeat(1600) }).body.body.length, 3200, 'characters, not UTF-16 units');
  const editing = reply('thanks', 'Thanks!');
  assert.deepEqual(replyBody(editing, { shortcut: 'thanks', body: 'Thanks!' }), { body: {} });
  assert.deepEqual(replyBody(editing, { shortcut: 'ty', body: 'Thanks!' }), { body: { shortcut: 'ty' } });
  assert.deepEqual(replyBody(editing, { shortcut: 'thanks', body: 'Thank you!' }), { body: { body: 'Thank you!' } });
});

test('errors read as sentences', () => {
  assert.match(describeReplyError({ status: 409, code: 'shortcut_taken' }, 'thanks'), /already uses \/thanks/);
  assert.match(describeReplyError({ status: 403, code: 'forbidden' }), /Only the agent who added this reply, or an admin/);
  assert.match(describeReplyError({ status: 404, code: 'not_found' }), /deleted/);
  assert.equal(describeReplyError({ status: 422, message: 'shortcut must be 1 to 32 …' }), SHORTCUT_RULE);
  assert.equal(describeReplyError({ status: 422, message: 'body must be 1 to 1600 …' }), BODY_RULE);
  assert.match(describeReplyError(new TypeError('Failed to fetch')), /Can't reach the server/);
  assert.equal(describeReplyError({ status: 500, message: 'internal error' }), 'internal error');
});

test('the list keeps the newest of each reply, and pushed changes win over a list read before them', () => {
  const replies = createReplies();
  const first = replies.loading();
  assert.equal(replies.loaded(first, [reply('b', 'B'), reply('a', 'A')]), true);
  assert.deepEqual(replies.list().map((r) => r.shortcut), ['a', 'b']);

  // A change pushed while a load is in flight, whose answer was read before it.
  const second = replies.loading();
  replies.changed(reply('a', 'A, changed', { updatedAt: '2026-01-05T09:31:00.000Z' }));
  replies.changed(reply('c', 'C, new'));
  replies.deleted('b');
  assert.equal(replies.loaded(second, [reply('a', 'A'), reply('b', 'B')]), true);
  assert.deepEqual(
    replies.list().map((r) => [r.shortcut, r.body]),
    [
      ['a', 'A, changed'],
      ['c', 'C, new'],
    ],
  );

  // An older change arriving late (another instance) does not undo a newer one; a deleted reply stays deleted.
  replies.changed(reply('a', 'A, stale', { updatedAt: '2026-01-05T09:30:30.000Z' }));
  replies.changed(reply('b', 'B, back?', { updatedAt: '2026-01-05T10:00:00.000Z' }));
  assert.deepEqual(replies.list().map((r) => r.body), ['A, changed', 'C, new']);

  // Of two loads, the later one's answer counts; a failed load keeps what is known.
  const older = replies.loading();
  const newer = replies.loading();
  assert.equal(replies.loaded(older, []), false);
  replies.failed(newer);
  assert.deepEqual(replies.list().map((r) => r.shortcut), ['a', 'c']);
  assert.equal(replies.get('a').body, 'A, changed');
  assert.equal(replies.get('zzz'), null);
});
