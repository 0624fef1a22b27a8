// Run: node --test static/js/linkify.test.mjs
// Links in messages: http(s) URLs only, without the sentence's punctuation, and the text around them kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkParts } from './linkify.js';

const links = (text) => linkParts(text).filter((p) => p.href).map((p) => p.text);
const joined = (text) => linkParts(text).map((p) => p.text).join('');

test('an http(s) URL becomes a link; the text around it stays text', () => {
  assert.deepEqual(linkParts('See https://example.com/a?b=1&c=2#top for details'), [
    { text: 'See ' },
    { text: 'https://example.com/a?b=1&c=2#top', href: 'https://example.com/a?b=1&c=2#top' },
    { text: ' for details' },
  ]);
  assert.deepEqual(linkParts('http://x.io'), [{ text: 'http://x.io', href: 'http://x.io/' }]);
  assert.deepEqual(links('HTTPS://Example.com/Path and http://a.b/c'), ['HTTPS://Example.com/Path', 'http://a.b/c']);
  assert.deepEqual(linkParts('no links here'), [{ text: 'no links here' }]);
  assert.deepEqual(linkParts(''), []);
  assert.deepEqual(linkParts(null), []);
});

test('punctuation that ends the sentence is not part of the link', () => {
  assert.deepEqual(links('Go to https://example.com/a.'), ['https://example.com/a']);
  assert.deepEqual(links('https://example.com/a?b=1, ok'), ['https://example.com/a?b=1']);
  assert.deepEqual(links('Really? https://x.io/!?'), ['https://x.io/']);
  assert.deepEqual(links('"https://x.io/q"'), ['https://x.io/q']);
  assert.deepEqual(links('(see https://x.io/a)'), ['https://x.io/a']);
  assert.deepEqual(links('https://en.wikipedia.org/wiki/Foo_(bar)'), ['https://en.wikipedia.org/wiki/Foo_(bar)'], 'a bracket it opened stays');
  assert.deepEqual(links('[https://x.io/a]'), ['https://x.io/a']);
  assert.equal(joined('Go to https://example.com/a. Then (https://x.io).'), 'Go to https://example.com/a. Then (https://x.io).', 'no character lost');
});

test('only http and https, with a host, are ever linked', () => {
  for (const text of [
    'javascript:alert(1)',
    'javascript://example.com/%0aalert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox',
    'file:///etc/passwd',
    'ftp://example.com/x',
    'https://',
    'http://.',
    'xhttps://example.com',
    'mailto:a@b.c',
  ]) {
    assert.deepEqual(links(text), [], text);
    assert.equal(joined(text), text, text);
  }
  assert.deepEqual(links('javascript:https://x.io'), ['https://x.io'], 'the http(s) URL inside is a link of its own, to itself');
  for (const p of linkParts('a https://x.io/"><img src=x onerror=alert(1)> b')) {
    if (p.href) assert.equal(new URL(p.href).protocol, 'https:');
  }
});

test('markup in a message stays text around a link', () => {
  const parts = linkParts('<b>hi</b> https://x.io/<script>');
  assert.deepEqual(parts, [{ text: '<b>hi</b> ' }, { text: 'https://x.io/', href: 'https://x.io/' }, { text: '<script>' }]);
});
