// Run: node --test static/js/search.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SEARCH_DEBOUNCE_MS, createSearch, fold, markParts, searchWords } from './search.js';

test('folding drops case and accents, as the server compares', () => {
  assert.equal(fold('Émile Zoë ÇA'), 'emile zoe ca');
  assert.deepEqual(searchWords('  José, "NEAR(x* 12%'), ['jose', 'near', 'x', '12']);
  assert.deepEqual(searchWords('"*%_'), []);
});

test('marking: every occurrence of every word, whatever its case or accents, as plain parts', () => {
  assert.deepEqual(markParts('José Díaz', ['jose']), [
    { text: 'José', mark: true },
    { text: ' Díaz', mark: false },
  ]);
  assert.deepEqual(markParts('ana banana', ['an']), [
    { text: 'an', mark: true },
    { text: 'a b', mark: false },
    { text: 'anan', mark: true },
    { text: 'a', mark: false },
  ]);
  assert.deepEqual(markParts('<b>hi</b>', ['b']), [
    { text: '<', mark: false },
    { text: 'b', mark: true },
    { text: '>hi</', mark: false },
    { text: 'b', mark: true },
    { text: '>', mark: false },
  ]);
  assert.deepEqual(markParts('no match', ['zzz']), [{ text: 'no match', mark: false }]);
  assert.deepEqual(markParts('', ['a']), []);
  assert.equal(markParts('😀 smile', ['smile']).map((p) => p.text).join(''), '😀 smile');
});

/** A clock the test moves by hand. */
function fakeClock() {
  let now = 0;
  let timers = [];
  return {
    setTimer(fn, ms) {
      const t = { at: now + ms, fn };
      timers.push(t);
      return t;
    },
    clearTimer(t) {
      timers = timers.filter((x) => x !== t);
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.fn();
    },
  };
}

/** A server whose answers the test releases in any order. */
function fakeServer() {
  const asked = [];
  return {
    asked,
    fetchPage: (q, cursor) =>
      new Promise((resolve) => {
        asked.push({ q, cursor, answer: (ids, nextCursor = null) => resolve({ conversations: ids.map((id) => ({ id })), nextCursor }) });
      }),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

test('typing is debounced: one request for the text the agent paused on', async () => {
  const clock = fakeClock();
  const server = fakeServer();
  const s = createSearch({ fetchPage: server.fetchPage, onChange() {}, ...clock });
  s.setQuery('j');
  clock.advance(SEARCH_DEBOUNCE_MS - 1);
  s.setQuery('jo');
  clock.advance(SEARCH_DEBOUNCE_MS - 1);
  s.setQuery('jos');
  assert.equal(server.asked.length, 0);
  assert.equal(s.settled(), false, 'nothing to say "no match" about yet');
  clock.advance(SEARCH_DEBOUNCE_MS);
  assert.deepEqual(server.asked.map((a) => a.q), ['jos']);
  server.asked[0].answer([]);
  await settle();
  assert.equal(s.settled(), true);
  assert.deepEqual(s.ids(), []);
});

test('an answer to an older text is dropped, even when it comes last', async () => {
  const clock = fakeClock();
  const server = fakeServer();
  const s = createSearch({ fetchPage: server.fetchPage, onChange() {}, ...clock });
  s.setQuery('ann');
  clock.advance(SEARCH_DEBOUNCE_MS);
  s.setQuery('anna');
  clock.advance(SEARCH_DEBOUNCE_MS);
  server.asked[1].answer(['2']);
  await settle();
  server.asked[0].answer(['1', '2', '3']);
  await settle();
  assert.deepEqual(s.ids(), ['2']);
  assert.equal(s.query(), 'anna');
});

test('clearing ends the search at once, and a late answer does not bring it back', async () => {
  const clock = fakeClock();
  const server = fakeServer();
  let changes = 0;
  const s = createSearch({ fetchPage: server.fetchPage, onChange: () => (changes += 1), ...clock });
  s.setQuery('bob');
  clock.advance(SEARCH_DEBOUNCE_MS);
  s.setQuery('   ');
  assert.equal(s.active(), false);
  server.asked[0].answer(['9']);
  await settle();
  assert.deepEqual(s.ids(), []);
  assert.ok(changes >= 2);
});

test('rerun() asks again at once from the first page (another view), and drops the answer it replaces', async () => {
  const clock = fakeClock();
  const server = fakeServer();
  const s = createSearch({ fetchPage: server.fetchPage, onChange() {}, ...clock });
  s.rerun();
  assert.equal(server.asked.length, 0, 'no search, nothing to run again');
  s.setQuery('jane');
  clock.advance(SEARCH_DEBOUNCE_MS);
  s.rerun();
  assert.deepEqual(server.asked.map((a) => [a.q, a.cursor]), [
    ['jane', null],
    ['jane', null],
  ]);
  server.asked[1].answer(['8']);
  await settle();
  server.asked[0].answer(['1', '8']);
  await settle();
  assert.deepEqual(s.ids(), ['8']);
});

test('more() asks for the next page with the cursor and appends it', async () => {
  const clock = fakeClock();
  const server = fakeServer();
  const s = createSearch({ fetchPage: server.fetchPage, onChange() {}, ...clock });
  s.setQuery('hello');
  clock.advance(SEARCH_DEBOUNCE_MS);
  server.asked[0].answer(['5', '4'], '77');
  await settle();
  assert.equal(s.hasMore(), true);
  s.more();
  assert.deepEqual(server.asked[1], { ...server.asked[1], q: 'hello', cursor: '77' });
  server.asked[1].answer(['3']);
  await settle();
  assert.deepEqual(s.ids(), ['5', '4', '3']);
  assert.equal(s.hasMore(), false);
});

test('a failed search says why; an auth error is left to its handler', async () => {
  const clock = fakeClock();
  const s = createSearch({ fetchPage: () => Promise.reject(new Error('boom')), onChange() {}, ...clock });
  s.setQuery('x');
  clock.advance(SEARCH_DEBOUNCE_MS);
  await settle();
  assert.equal(s.error(), 'boom');
  let handled = false;
  const t = createSearch({
    fetchPage: () => Promise.reject(new Error('401')),
    onChange() {},
    onError: () => (handled = true),
    ...clock,
  });
  t.setQuery('x');
  clock.advance(SEARCH_DEBOUNCE_MS);
  await settle();
  assert.equal(handled, true);
  assert.equal(t.error(), null);
});
