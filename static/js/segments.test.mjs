// Run: node --test static/js/segments.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countSegments, counterLabel, bodyLength, isGsm7 } from './segments.js';

test('empty string is 0 segments', () => {
  assert.deepEqual(countSegments(''), { encoding: 'GSM-7', length: 0, segments: 0, perSegment: 160 });
  assert.equal(counterLabel(countSegments('')), '0 / 160 · 0 segments');
});

test('plain ASCII: 160 chars is 1 segment', () => {
  assert.deepEqual(countSegments('a'.repeat(160)), { encoding: 'GSM-7', length: 160, segments: 1, perSegment: 160 });
  assert.equal(counterLabel(countSegments('a'.repeat(42))), '42 / 160 · 1 segment');
});

test('plain ASCII: 161 chars is 2 segments of 153', () => {
  assert.deepEqual(countSegments('a'.repeat(161)), { encoding: 'GSM-7', length: 161, segments: 2, perSegment: 153 });
  assert.equal(countSegments('a'.repeat(306)).segments, 2);
  assert.equal(countSegments('a'.repeat(307)).segments, 3);
  assert.equal(counterLabel(countSegments('a'.repeat(161))), '161 / 306 · 2 segments');
});

test('one emoji switches the whole message to UCS-2 (70 / 67)', () => {
  const one = countSegments('Hello 😀');
  assert.equal(one.encoding, 'UCS-2');
  assert.equal(one.length, 8); // the emoji is 2 UTF-16 code units
  assert.equal(one.segments, 1);
  assert.equal(one.perSegment, 70);
  assert.equal(countSegments('a'.repeat(68) + '😀').segments, 1); // 70 units
  const two = countSegments('a'.repeat(69) + '😀'); // 71 units
  assert.equal(two.segments, 2);
  assert.equal(two.perSegment, 67);
  assert.equal(countSegments('é'.repeat(200)).encoding, 'GSM-7'); // é is in the GSM-7 basic set
  assert.equal(countSegments('ê').encoding, 'UCS-2'); // ê is not
});

test('€ and the other extension characters count 2 in GSM-7', () => {
  assert.deepEqual(countSegments('€'), { encoding: 'GSM-7', length: 2, segments: 1, perSegment: 160 });
  assert.equal(countSegments('^{}\\[~]|€\f').length, 20);
  assert.equal(countSegments('€'.repeat(80)).segments, 1); // 160 septets
  assert.equal(countSegments('€'.repeat(81)).segments, 2); // 162 septets
  // an escape pair is never split across parts: 152 + € does not fit in 153
  assert.equal(countSegments('a'.repeat(152) + '€' + 'a'.repeat(152)).segments, 3);
});

test('newlines are GSM-7; bodyLength counts code points', () => {
  assert.equal(isGsm7('line 1\nline 2'), true);
  assert.equal(bodyLength('a😀'), 2);
});
