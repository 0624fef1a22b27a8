// smsdesk inbox (/agent/messages): the composition root. Plain ES modules, no build step.
//
// Data flow: REST loads pages (conversations, threads); the socket pushes message:new, message:status,
// conversation:updated, typing and the canned replies' changes; every (re)connect, and every `resync` the
// server sends after its link to the other servers came back, calls /sync from the last cursor so nothing
// missed is lost, and reads the canned replies again. Everything is merged into the Store (by id, and by clientId for our own
// optimistic bubbles); modules then mark the parts of the page that changed and the render scheduler
// redraws them once per tick. Idle, the page makes no HTTP requests. Each module owns its state and
// its part of the page; this file only creates them, in order, and connects them.

import { io } from '/vendor/socket.io.esm.min.js';
import { api, get, post, patch, describeError } from '/js/api.js';
import { $, toast } from '/js/dom.js';
import { Store } from '/js/store.js';
import { init as initStorage, browserStorage } from '/js/storage.js';
import { init as initSession } from '/js/session.js';
import { init as initRender } from '/js/render.js';
import { init as initSocket } from '/js/socket.js';
import { init as initSync } from '/js/sync.js';
import { init as initInbox } from '/js/inbox.js';
import { init as initOutbox } from '/js/outbox.js';
import { init as initList } from '/js/list.js';
import { init as initThread } from '/js/thread.js';
import { init as initComposer } from '/js/composer.js';
import { init as initTyping } from '/js/typing.js';
import { init as initDialogs } from '/js/dialogs.js';
import { init as initAdmin } from '/js/admin.js';
import { formatPhone } from '/js/format.js';
import { init as initSearch } from '/js/search.js';
import { init as initNames } from '/js/names.js';
import { init as initNotify } from '/js/notify.js';
import { init as initReplies } from '/js/replies-view.js';
import { init as initAttachments } from '/js/attachments.js';

const store = new Store();
let agent = null;
const agentId = () => agent?.id ?? null;

/** The agent's numbers; without them, the numbers of the conversations we have. */
function agentNumbers() {
  const nums = Array.isArray(agent?.numbers) ? agent.numbers.filter(Boolean).map(String) : [];
  if (nums.length) return nums;
  return Array.from(new Set(Array.from(store.conversations.values(), (c) => c.ourNumber).filter(Boolean)));
}

// Modules that need a module made further down get a function that looks it up when called: every
// module is made before boot() runs, and none calls another while it is being made.
const storage = initStorage({ backend: browserStorage(), agentId });
const session = initSession({
  post,
  storage,
  stop: () => {
    socket.disconnect();
    outbox.stop();
  },
  navigate: (url) => location.assign(url),
  toast,
  button: $('#logout-button'),
});
const onAuthError = session.handleAuthError;

const render = initRender({ order: ['list', 'thread', 'typing'], after: () => list.updateTitle() });
const { invalidate } = render;
const openId = () => thread.openId();

const typing = initTyping({ agentId, emit: (event, payload) => socket.emit(event, payload), openId, invalidate });
const inbox = initInbox({
  store,
  post,
  invalidate,
  openId,
  isVisible: () => document.visibilityState === 'visible',
  clearTyping: typing.clear,
  requestRefresh: () => list.requestRefresh(),
  onAuthError,
});
const outbox = initOutbox({
  store,
  post,
  storage,
  ingest: inbox.ingest,
  onQueued: () => thread.followNewest(),
  invalidate,
  toast,
  agentId,
  onAuthError,
});
const attachments = initAttachments({ toast, onChange: () => composer.update(), onAuthError });
const composer = initComposer({
  store,
  openId,
  send: (conv, body, pictures) => outbox.send(conv, body, pictures).finally(() => attachments.release(pictures)),
  typing,
  attachments,
});
const replies = initReplies({
  get,
  api,
  me: () => agent,
  conversation: () => store.conversations.get(openId()) ?? null,
  formatPhone,
  toast,
  onAuthError,
});
const search = initSearch({ get, store, invalidate, onAuthError });
const list = initList({
  store,
  get,
  invalidate,
  openId,
  typingNames: typing.names,
  agentNumbers,
  select: (id) => thread.select(id),
  search,
  // The list's own sync cursor: a change still committing while the list was read is above it,
  // even when a newer one is already in the list.
  onLoaded: (syncCursor) => sync.start(syncCursor ?? store.maxSeq),
  onRefreshed: inbox.maybeMarkRead,
  onAuthError,
});
const thread = initThread({
  store,
  get,
  invalidate,
  composer,
  markRead: inbox.markRead,
  retry: outbox.retry,
  wasRetried: outbox.wasRetried,
  focusRow: list.focusRow,
  onAuthError,
});
const names = initNames({ store, patch, openId, invalidate, toast, onAuthError });
const notify = initNotify({ store, openId, select: (id) => thread.select(id), storage: browserStorage(), toast });
const sync = initSync({
  get,
  ingest: (m) => inbox.ingest(m, { live: false }),
  onAuthError,
  isConnected: () => socket.connected(),
  onDone: inbox.maybeMarkRead,
});
const socket = initSocket({
  io,
  agentId,
  get,
  onAuthError,
  listeners: {
    'message:new': (m) => {
      inbox.ingest(m, { live: true });
      notify.onMessage(m);
    },
    'message:status': inbox.onStatus,
    'conversation:updated': inbox.onConversation,
    typing: typing.receive,
    'reply:changed': replies.onChanged,
    'reply:deleted': replies.onDeleted,
  },
  async onConnect({ reconnect }) {
    outbox.wake();
    replies.load();
    if (!list.loaded()) await list.load();
    else if (reconnect) list.refresh();
    sync.run();
  },
  onResync() {
    replies.load();
    if (list.loaded()) list.refresh();
    sync.run();
  },
});
const dialogs = initDialogs({
  store,
  post,
  agentNumbers,
  openId,
  onCreated: (conv) => {
    list.markLoaded();
    invalidate('list');
    thread.select(conv.id);
  },
  onAuthError,
});

render.define('list', list.render);
render.define('thread', () => {
  thread.render();
  names.cancel();
});
render.define('typing', typing.render);

window.addEventListener('online', outbox.wake);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') inbox.maybeMarkRead();
});
$('#fatal-retry').addEventListener('click', () => location.reload());

function showFatal(text) {
  $('#fatal-text').textContent = text;
  $('#fatal').hidden = false;
  $('#fatal-retry').focus();
}

async function boot() {
  composer.update();
  let me;
  try {
    me = await get('/api/auth/me');
  } catch (err) {
    if (onAuthError(err)) return;
    showFatal(describeError(err));
    return;
  }
  const who = me?.agent ?? me;
  if (!who || who.id == null) {
    session.leave();
    return;
  }
  agent = { ...who, id: String(who.id) };
  $('#agent-name').textContent = agent.name || agent.email || '';
  $('#agent-name').title = agent.email || '';
  initAdmin({ me: agent, get, api, formatPhone, onAuthError, toast });

  dialogs.checkSimulator();
  await list.load();
  outbox.restore();
  const id = thread.idFromHash();
  if (id) {
    history.replaceState({ c: id, fromList: false }, '', location.href);
    thread.applyLocation();
  }
  socket.connect();
}

boot();
