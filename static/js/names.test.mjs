// Run: node --test static/js/names.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NAME_CHARS, renameBody } from './names.js';

test('a name is sent trimmed; a blank one clears the name', () => {
  assert.deepEqual(renameBody('  Ana Lima '), { body: { contactName: 'Ana Lima' } });
  assert.deepEqual(renameBody('   '), { body: { contactName: null } });
  assert.deepEqual(renameBody(''), { body: { contactName: null } });
});

test('more than 100 characters is refused before asking the server (which would say 422)', () => {
  assert.deepEqual(renameBody('é'.repeat(MAX_NAME_CHARS)), { body: { contactName: 'é'.repeat(100) } });
  assert.ok(renameBody('x'.repeat(MAX_NAME_CHARS + 1)).error);
  // Characters, not UTF-16 units: 100 emoji are 100 characters.
  assert.ok(renameBody('😀'.repeat(100)).body);
});
