// Run: node --test static/js/attachments.test.mjs
// The composer's own checks of a picture before it is uploaded (the server makes the same ones by the
// bytes: tests/api/uploads.rs), and the segment counter's words for an MMS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusal, mmsLabel, imageFiles, MAX_PICTURE_BYTES, MAX_PICTURES } from './attachments.js';

const file = (name, type, size) => ({ name, type, size });

test('JPEG, PNG and GIF pictures up to 5 MB may be attached', () => {
  assert.equal(refusal(file('a.jpg', 'image/jpeg', 1000)), null);
  assert.equal(refusal(file('a.png', 'image/PNG', MAX_PICTURE_BYTES)), null);
  assert.equal(refusal(file('a.gif', 'image/gif', 1)), null);
});

test('anything else is refused in words that name the file and the rule', () => {
  assert.match(refusal(file('page.html', 'text/html', 10)), /page\.html is not a JPEG, PNG or GIF picture/);
  assert.match(refusal(file('pic.webp', 'image/webp', 10)), /not a JPEG, PNG or GIF/);
  assert.match(refusal(file('nothing', '', 10)), /not a JPEG, PNG or GIF/);
  assert.match(refusal(file('big.jpg', 'image/jpeg', MAX_PICTURE_BYTES + 1)), /big\.jpg is too big \(5\.1 MB; at most 5 MB\)/);
  assert.match(refusal(file('empty.png', 'image/png', 0)), /empty/);
});

test('a message takes at most 10 pictures and 5 MB in all', () => {
  const ten = Array.from({ length: MAX_PICTURES }, () => ({ size: 10 }));
  assert.match(refusal(file('11.png', 'image/png', 10), ten), /At most 10 pictures/);
  const half = [{ size: 3 * 1024 * 1024 }];
  assert.match(refusal(file('b.jpg', 'image/jpeg', 3 * 1024 * 1024), half), /together would be 6\.0 MB/);
  assert.equal(refusal(file('c.jpg', 'image/jpeg', 2 * 1024 * 1024), half), null);
});

test('the counter says MMS once a picture is attached', () => {
  assert.equal(mmsLabel(1, 0), 'MMS · 1 picture');
  assert.equal(mmsLabel(3, 12), 'MMS · 3 pictures · 12 characters');
});

test('only image files are taken from a paste or a drop', () => {
  const items = [file('a.png', 'image/png', 1), file('b.txt', 'text/plain', 1), null, file('c.gif', 'image/gif', 1)];
  assert.deepEqual(imageFiles(items).map((f) => f.name), ['a.png', 'c.gif']);
  assert.deepEqual(imageFiles(undefined), []);
});
