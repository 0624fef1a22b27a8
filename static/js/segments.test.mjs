// Run: node --test static/js/segments.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { countSegments, counterLabel, bodyLength } from './segments.js';

const fixture = JSON.parse(readFileSync(new URL('../../tests/fixtures/segments.json', import.meta.url), 'utf8'));

test('segments follow the shared rule (tests/fixtures/segments.json, as src/sms.rs does)', () => {
  assert.ok(fixture.cases.length > 0);
  for (const c of fixture.cases) {
    const text = c.text.map((piece) => (typeof piece === 'string' ? piece : piece[0].repeat(piece[1]))).join('');
    const info = countSegments(text);
    assert.equal(info.encoding, c.encoding, c.name);
    assert.deepEqual(info.parts, c.parts, c.name);
    assert.equal(info.segments, c.segments, c.name);
    assert.equal(info.length, c.parts.reduce((a, b) => a + b, 0), c.name);
  }
});

test('empty string is 0 segments', () => {
  assert.deepEqual(countSegments(''), { encoding: 'GSM-7', length: 0, segments: 0, perSegment: 160, parts: [] });
  assert.equal(counterLabel(countSegments('')), '0 / 160 · 0 segments');
});

test('the counter shows the capacity of one SMS, then of the parts', () => {
  assert.equal(counterLabel(countSegments('a'.repeat(42))), '42 / 160 · 1 segment');
  assert.equal(countSegments('a'.repeat(160)).perSegment, 160);
  assert.equal(counterLabel(countSegments('a'.repeat(161))), '161 / 306 · 2 segments');
  assert.equal(counterLabel(countSegments('a'.repeat(152) + '€' + 'a'.repeat(152))), '306 / 459 · 3 segments');
  assert.equal(counterLabel(countSegments('Hello 😀')), '8 / 70 · 1 segment');
  assert.equal(counterLabel(countSegments('a'.repeat(69) + '😀')), '71 / 134 · 2 segments');
});

test('bodyLength counts code points', () => {
  assert.equal(bodyLength('a😀'), 2);
});
