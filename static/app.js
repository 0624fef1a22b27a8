// smsdesk inbox (/agent/messages): the composition root. Plain ES modules, no build step.
//
// Data flow: REST loads pages (conversations of the view shown, threads); the socket pushes message:new,
// message:status, conversation:updated, typing and the canned replies' changes; every (re)connect, and
// every `resync` the server sends after its link to the other servers came back, calls /sync from the
// last cursor so nothing missed is lost, and reads the canned replies, the views' counts and the other
// agents again; pushed changes read the counts again shortly after. Everything is merged into the Store (by id, and by clientId for our own
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
import { init as initViews } from '/js/views-view.js';
import { init as initActions } from '/js/conversation-actions.js';
import { authorName, authorsFor, createTeam, ownerOf } from '/js/team.js';
import { statusOf } from '/js/views.js';
import { init as initAttachments } from '/js/attachments.js';

const store = new Store();
const team = createTeam();
let agent = null;
const agentId = () => agent?.id ?? null;
/** Who wrote a reply, as the list says it: "You" for ours, else the agent's name. */
const authorOf = (m) => authorName(m.agentId, agentId(), team.nameOf);

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

const render = initRender({ order: ['views', 'list', 'thread', 'typing'], after: () => list.updateTitle() });
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
  note: outbox.note,
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
const views = initViews({
  get,
  storage,
  meId: agentId,
  invalidate,
  onChange: () => {
    list.showView();
    search.rerun();
  },
  onAuthError,
});
const search = initSearch({ get, store, invalidate, params: views.params, onAuthError });
const list = initList({
  store,
  get,
  invalidate,
  openId,
  typingNames: typing.names,
  agentNumbers,
  select: (id) => thread.select(id),
  search,
  views,
  authorOf,
  ownerOf: (conv) => ownerOf(conv, agentId(), team.nameOf),
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
  authorsFor: (conv, messages) =>
    authorsFor({ agents: team.agents(), number: conv.ourNumber, meId: agentId(), messages, nameOf: team.nameOf }),
  onAuthError,
});
const actions = initActions({
  store,
  patch,
  openId,
  me: () => agent,
  team,
  views,
  shownIds: () => list.shownIds(),
  select: (id) => thread.select(id),
  closeThread: () => thread.close(),
  invalidate,
  toast,
  onAuthError,
});
const names = initNames({ store, patch, openId, invalidate, toast, onAuthError });
const notify = initNotify({ store, openId, select: (id) => thread.select(id), storage: browserStorage(), toast });
const sync = initSync({
  get,
  ingest: (m) => inbox.ingest(m, { live: false }),
  ingestConversation: inbox.onConversation,
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
      // A message is announced again when Twilio retries its webhook late (src/webhooks.rs):
      // one beep per message.
      const known = m?.id != null && store.idToKey.has(String(m.id));
      inbox.ingest(m, { live: true });
      if (!known) notify.onMessage(m);
      views.requestCounts();
    },
    'message:status': inbox.onStatus,
    'conversation:updated': (c) => {
      inbox.onConversation(c);
      views.requestCounts();
    },
    typing: (p) => {
      team.learn(p?.agentId, p?.agentName);
      typing.receive(p);
    },
    'reply:changed': replies.onChanged,
    'reply:deleted': replies.onDeleted,
  },
  async onConnect({ reconnect }) {
    outbox.wake();
    replies.load();
    loadAgents();
    views.loadCounts();
    if (!list.loaded()) await list.load();
    else if (reconnect) list.refresh();
    sync.run();
  },
  onResync() {
    replies.load();
    loadAgents();
    views.loadCounts();
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
    // A conversation started again may be closed or snoozed: show it where it is.
    if (!views.belongs(conv)) views.show(statusOf(conv));
    list.markLoaded();
    invalidate('list');
    thread.select(conv.id);
  },
  onAuthError,
});

render.define('views', views.render);
render.define('list', list.render);
render.define('thread', () => {
  thread.render();
  actions.render();
  names.cancel();
});
render.define('typing', typing.render);

window.addEventListener('online', outbox.wake);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') inbox.maybeMarkRead();
});
$('#fatal-retry').addEventListener('click', () => location.reload());

/** The agents who share a number with us: the assignee menu, and who wrote what on a shared number. */
async function loadAgents() {
  try {
    team.set(await get('/api/crm/sms/agents'));
    invalidate('list', 'thread');
  } catch (err) {
    // The names known stay; the next connect reads them again.
    if (!onAuthError(err)) console.warn('[Messages] could not read the agents:', describeError(err));
  }
}

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
  team.learn(agent.id, agent.name);
  views.restore();
  $('#agent-name').textContent = agent.name || agent.email || '';
  $('#agent-name').title = agent.email || '';
  initAdmin({ me: agent, get, api, formatPhone, onAuthError, toast });

  dialogs.checkSimulator();
  // Read again on every connect; read here too, so a page that cannot connect still shows them.
  loadAgents();
  views.loadCounts();
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
