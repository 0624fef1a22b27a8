// Run: node --test static/js/render.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init } from './render.js';

function scheduler() {
  const drawn = [];
  const queue = [];
  const render = init({ order: ['list', 'thread', 'typing'], after: () => drawn.push('after'), defer: (fn) => queue.push(fn) });
  for (const name of ['list', 'thread', 'typing']) render.define(name, () => drawn.push(name));
  const runQueued = () => {
    while (queue.length) queue.shift()();
  };
  return { render, drawn, queue, runQueued };
}

test('many changes in one tick are one pass, each part once, in order', () => {
  const s = scheduler();
  s.render.invalidate('typing', 'list');
  s.render.invalidate('list');
  s.render.invalidate('thread', 'typing');
  assert.equal(s.queue.length, 1, 'one pass scheduled');
  assert.deepEqual(s.drawn, [], 'nothing drawn before the pass');
  s.runQueued();
  assert.deepEqual(s.drawn, ['list', 'thread', 'typing', 'after']);
});

test('only what changed is drawn; a part marked during a pass is drawn too', () => {
  const s = scheduler();
  s.render.invalidate('thread');
  s.runQueued();
  assert.deepEqual(s.drawn, ['thread', 'after']);

  // Marked by an earlier part: drawn later in the same pass.
  s.drawn.length = 0;
  s.render.define('list', () => {
    s.drawn.push('list');
    s.render.invalidate('typing');
  });
  s.render.invalidate('list');
  s.runQueued();
  assert.deepEqual(s.drawn.filter((d) => d !== 'after'), ['list', 'typing']);

  // Marked by a later part: drawn in the next pass, not lost.
  s.drawn.length = 0;
  s.render.define('list', () => s.drawn.push('list'));
  s.render.define('typing', () => {
    s.drawn.push('typing');
    if (!s.drawn.includes('list')) s.render.invalidate('list');
  });
  s.render.invalidate('typing');
  s.runQueued();
  assert.deepEqual(s.drawn, ['typing', 'after', 'list', 'after']);
});

test('an unknown part is a programming error', () => {
  const s = scheduler();
  assert.throws(() => s.render.define('sidebar', () => {}), /unknown part/);
});

test('by default the pass runs in a microtask, before timers', async () => {
  const drawn = [];
  const render = init({ order: ['list'] });
  render.define('list', () => drawn.push('list'));
  render.invalidate('list');
  render.invalidate('list');
  await Promise.resolve();
  assert.deepEqual(drawn, ['list']);
});
