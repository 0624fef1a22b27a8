// Run: node --test static/js/auth-text.test.mjs
// The sign-in, setup and invite pages state the password rule and say every error as a sentence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './api.js';
import * as text from './auth-text.js';

const api = (status, code, message) => new ApiError(status, code, message, null);
const offline = new TypeError('Failed to fetch');
const isSentence = (s) => /^[A-Z“"].*[.!?]$/s.test(s) && !/`/.test(s);

test('sentences: capitalised, ending with a stop, quotes instead of backticks', () => {
  assert.equal(text.sentence('too many failed attempts: try again in 3 minutes'), 'Too many failed attempts: try again in 3 minutes.');
  assert.equal(text.sentence('Done!'), 'Done!');
  assert.equal(text.sentence('numbers: `+1 nope` is not a phone number'), 'Numbers: “+1 nope” is not a phone number.');
  assert.equal(text.sentence('  '), '');
  assert.equal(text.sentence(undefined), '');
});

test('a new password: the rule before anything is sent, then the two must agree', () => {
  assert.equal(text.passwordProblem('seven77'), text.PASSWORD_RULE);
  assert.equal(text.passwordProblem(''), text.PASSWORD_RULE);
  assert.equal(text.passwordProblem('😀😀😀😀😀😀😀😀'), '', 'characters, not UTF-16 units');
  assert.equal(text.passwordProblem('😀😀😀😀'), text.PASSWORD_RULE);
  assert.equal(text.passwordProblem('long enough'), '');
  assert.equal(text.passwordProblem('long enough', 'long enough'), '');
  assert.match(text.passwordProblem('long enough', 'long enougH'), /differ/);
  assert.ok(isSentence(text.PASSWORD_RULE));
  assert.match(text.PASSWORD_RULE, /at least 8 characters/);
});

test('sign-in: wrong credentials, a disabled account, throttling and the rest, each a sentence', () => {
  assert.equal(text.loginError(api(401, 'unauthorized', 'sign in first')), 'Wrong email or password.');
  const disabled = text.loginError(api(401, 'account_disabled', 'This account is disabled; ask an admin to enable it again.'));
  assert.match(disabled, /disabled/);
  assert.match(text.loginError(api(429, 'too_many_requests', 'too many failed attempts: try again in 3 minutes')), /^Too many failed attempts: try again in 3 minutes\.$/);
  assert.match(text.loginError(offline), /Can't reach the server/);
  assert.equal(text.loginError(api(500, 'internal', '')), 'Sign-in failed (error 500).');
  for (const err of [api(401, 'unauthorized', 'x'), api(401, 'account_disabled', 'this account is disabled'), api(503, 'busy', 'too many sign-ins are being checked; try again in a second'), offline]) {
    assert.ok(isSentence(text.loginError(err)), text.loginError(err));
  }
});

test('setup and invite: a field the server refused is said for a person, never as the API names it', () => {
  const cases = [
    [api(422, 'invalid_field', 'email is not an email address'), /valid email address/],
    [api(422, 'invalid_field', 'name must be 1 to 100 characters'), /your name/],
    [api(422, 'invalid_field', 'password must be at least 8 characters'), /at least 8 characters/],
    [api(422, 'invalid_field', 'numbers: `555` is not a phone number'), /^“555” is not a phone number\. /],
    [api(422, 'invalid_field', 'numbers must list 1 to 50 Twilio numbers'), /^Enter 1 to 50 phone numbers\./],
    [api(422, 'invalid_field', 'something else entirely'), /^Something else entirely\.$/],
    [api(404, 'not_found', 'setup token not found'), /used already/],
    [api(503, 'unavailable', 'the database is not answering; try again shortly'), /^The database is not answering; try again shortly\.$/],
    [offline, /Can't reach the server/],
  ];
  for (const [err, want] of cases) {
    const said = text.setupError(err);
    assert.match(said, want);
    assert.ok(isSentence(said), said);
  }
  assert.match(text.inviteError(api(404, 'not_found', 'invite not found')), /Ask your admin for a new one\.$/);
  assert.equal(text.inviteError(api(422, 'invalid_field', 'password must be at least 8 characters')), text.PASSWORD_RULE);
  assert.ok(isSentence(text.inviteError(api(500, 'internal', 'internal error'))));
});

test('arriving at sign-in after the session ended says so; otherwise nothing', () => {
  assert.match(text.arrivalNotice('?session=ended'), /session has ended.*disabled/);
  assert.equal(text.arrivalNotice(''), '');
  assert.equal(text.arrivalNotice('?session=other'), '');
});
