// Run: node --test static/js/socket.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init } from './socket.js';

/** The page's globals that socket.js touches: the badge, and window/document listeners. */
function fakePage() {
  const badge = { dataset: {}, textContent: '', title: '' };
  const on = () => {};
  globalThis.document = { querySelector: () => badge, addEventListener: on, visibilityState: 'visible' };
  globalThis.window = { addEventListener: on };
  return badge;
}

/** socket.io-client's `io()` for one socket whose server events a test fires with `serverSays`. */
function fakeIo() {
  const handlers = new Map();
  const socket = {
    connected: false,
    active: true,
    on(event, handler) {
      handlers.set(event, [...(handlers.get(event) ?? []), handler]);
    },
    connect() {},
    disconnect() {},
    emit() {},
  };
  const serverSays = (event, ...args) => {
    if (event === 'connect') socket.connected = true;
    if (event === 'disconnect') socket.connected = false;
    for (const handler of handlers.get(event) ?? []) handler(...args);
  };
  return { io: () => socket, serverSays };
}

function quietConsole() {
  const log = console.log;
  console.log = () => {};
  return () => (console.log = log);
}

test('resync catches up as a reconnect does, without the connection going anywhere', () => {
  const badge = fakePage();
  const restore = quietConsole();
  const { io, serverSays } = fakeIo();
  const connects = [];
  let resyncs = 0;
  const live = init({
    io,
    agentId: () => '7',
    get: async () => ({}),
    onAuthError: () => false,
    listeners: {},
    onConnect: (how) => connects.push(how),
    onResync: () => (resyncs += 1),
  });
  live.connect();
  serverSays('connect');
  assert.deepEqual(connects, [{ reconnect: false }]);
  assert.equal(resyncs, 0);

  serverSays('resync');
  assert.equal(resyncs, 1, 'asked to catch up');
  assert.equal(connects.length, 1, 'not a reconnect');
  assert.equal(badge.dataset.state, 'live', 'still live');

  serverSays('disconnect', 'transport close');
  serverSays('connect');
  assert.deepEqual(connects.at(-1), { reconnect: true });
  restore();
});
