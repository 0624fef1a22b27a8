// smsdesk inbox (/agent/messages). Plain ES module, no build step.
//
// Data flow: REST loads pages (conversations, threads); the socket pushes message:new, message:status,
// conversation:updated and typing; every (re)connect calls /sync from the last cursor so nothing missed
// while offline is lost. Everything is merged by id (and clientId for our own optimistic bubbles) in
// the Store; a microtask-batched render then reconciles the DOM. Idle, the page makes no HTTP requests.

import { io } from '/vendor/socket.io.esm.min.js';
import { get, post, ApiError, isTransient, describeError, uuid } from '/js/api.js';
import { $, h, reconcileChildren, setAlert } from '/js/dom.js';
import { countSegments, counterLabel, bodyLength, MAX_BODY_CHARS, UCS2 } from '/js/segments.js';
import { Store, statusGroup, msgTime, sameMessage } from '/js/store.js';
import * as fmt from '/js/format.js';

const CONVERSATION_PAGE = 50;
const MESSAGE_PAGE = 50;
const SYNC_LIMIT = 500;
const TYPING_RENEW_MS = 2000;
const TYPING_IDLE_MS = 3000;
const TYPING_SHOW_MS = 6000;
const SEND_BACKOFF_MAX_MS = 15000;
const OUTBOX_MAX_AGE_MS = 24 * 3600 * 1000;
const PIN_THRESHOLD_PX = 48;
const LOAD_OLDER_THRESHOLD_PX = 200;

const store = new Store();

const state = {
  agent: null,
  socket: null,
  live: false,
  listenersReady: false,
  connectedOnce: false,
  hadDisconnect: false,
  manualConnectTimer: null,
  // conversation list paging
  listLoaded: false,
  listLoading: false,
  listError: null,
  listNextCursor: null,
  listPages: 0,
  refreshTimer: null,
  // sync
  cursor: 0,
  cursorReady: false,
  syncing: false,
  syncAgain: false,
  // thread
  openId: null,
  threads: new Map(), // conversationId -> thread paging state
  pinned: true,
  forceBottom: false,
  newestKey: null,
  drafts: new Map(),
  retried: new Set(), // ids of failed messages already retried
  readInflight: new Map(),
  typing: new Map(), // conversationId -> Map(agentKey -> {name, timer})
  simulator: false,
};

const els = {
  app: $('#app'),
  badge: $('#live-badge'),
  agentName: $('#agent-name'),
  logout: $('#logout-button'),
  newConversation: $('#new-conversation-button'),
  simulate: $('#simulate-button'),
  listScroller: $('#conversation-scroller'),
  list: $('#conversation-list'),
  listEmpty: $('#conversation-empty'),
  listEmptyHint: $('#conversation-empty-hint'),
  listStatus: $('#conversation-status'),
  listRetry: $('#conversation-retry'),
  listMore: $('#load-more-conversations'),
  placeholder: $('#thread-placeholder'),
  threadView: $('#thread-view'),
  back: $('#back-button'),
  threadAvatar: $('#thread-avatar'),
  threadTitle: $('#thread-title'),
  threadSubtitle: $('#thread-subtitle'),
  optedOut: $('#opted-out-banner'),
  scroller: $('#thread-scroller'),
  threadTopText: $('#thread-top-text'),
  loadOlder: $('#load-older-button'),
  threadRetry: $('#thread-retry-button'),
  thread: $('#thread'),
  threadEmpty: $('#thread-empty'),
  jump: $('#jump-button'),
  typing: $('#typing-indicator'),
  typingText: $('#typing-text'),
  composer: $('#composer'),
  textarea: $('#composer textarea'),
  send: $('#send-button'),
  counter: $('#segment-counter'),
  hint: $('#composer-hint'),
  fatal: $('#fatal'),
  fatalText: $('#fatal-text'),
  fatalRetry: $('#fatal-retry'),
  toasts: $('#toasts'),
  ncDialog: $('#new-conversation-dialog'),
  ncForm: $('#new-conversation-form'),
  ncFromField: $('#new-conversation-from-field'),
  ncFrom: $('#new-conversation-from'),
  ncError: $('#new-conversation-error'),
  ncSubmit: $('#new-conversation-submit'),
  simDialog: $('#simulate-dialog'),
  simForm: $('#simulate-form'),
  simTo: $('#simulate-to'),
  simError: $('#simulate-error'),
  simSubmit: $('#simulate-submit'),
};

// ---------------------------------------------------------------------------------------------
// Helpers

let leaving = false;
function goLogin() {
  if (leaving) return;
  leaving = true;
  try {
    state.socket?.disconnect();
  } catch {
    /* ignore */
  }
  location.assign('/login');
}

/** Handle the errors every call site treats alike. Returns true when the page is leaving. */
function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    goLogin();
    return true;
  }
  return false;
}

const enc = encodeURIComponent;

function isWide() {
  return window.matchMedia('(min-width: 768px)').matches;
}

function isViewing(conversationId) {
  return state.openId === conversationId && document.visibilityState === 'visible';
}

function toast(text, kind = 'info') {
  const el = h('div', { class: `toast toast-${kind}` }, text);
  els.toasts.append(el);
  setTimeout(() => el.classList.add('leaving'), 4000);
  setTimeout(() => el.remove(), 4400);
}

function threadState(id) {
  let t = state.threads.get(id);
  if (!t) {
    t = {
      loaded: false,
      loading: false,
      loadingOlder: false,
      error: null,
      nextCursor: null,
      complete: false,
      oldest: Infinity,
    };
    state.threads.set(id, t);
  }
  return t;
}

function agentNumbers() {
  const nums = Array.isArray(state.agent?.numbers) ? state.agent.numbers.filter(Boolean).map(String) : [];
  if (nums.length) return nums;
  // Fallback: the numbers our conversations are on.
  return Array.from(new Set(Array.from(store.conversations.values(), (c) => c.ourNumber).filter(Boolean)));
}

// Persisted small state (per agent) -------------------------------------------------------------

function storageKey(name) {
  return `smsdesk.${name}.${state.agent?.id ?? 'anon'}`;
}

function readJson(name, fallback) {
  try {
    const raw = localStorage.getItem(storageKey(name));
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

function writeJson(name, value) {
  try {
    localStorage.setItem(storageKey(name), JSON.stringify(value));
  } catch {
    /* storage full or disabled: keep going in memory */
  }
}

const outbox = {
  all() {
    const list = readJson('outbox', []);
    return Array.isArray(list) ? list : [];
  },
  save(entry) {
    const list = this.all().filter((e) => e.clientId !== entry.clientId);
    list.push(entry);
    writeJson('outbox', list);
  },
  remove(clientId) {
    writeJson(
      'outbox',
      this.all().filter((e) => e.clientId !== clientId),
    );
  },
};

function rememberRetried(id) {
  state.retried.add(id);
  writeJson('retried', Array.from(state.retried).slice(-500));
}

// ---------------------------------------------------------------------------------------------
// Render scheduling: many events in one tick → one DOM pass.

const dirty = { list: false, thread: false, typing: false };
let flushQueued = false;

function invalidate(parts = { list: true, thread: true }) {
  if (parts.list) dirty.list = true;
  if (parts.thread) dirty.thread = true;
  if (parts.typing) dirty.typing = true;
  if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flush);
  }
}

function flush() {
  flushQueued = false;
  if (dirty.list) {
    dirty.list = false;
    renderList();
  }
  if (dirty.thread) {
    dirty.thread = false;
    renderThread();
  }
  if (dirty.typing) {
    dirty.typing = false;
    renderTyping();
  }
  updateTitle();
}

function updateTitle() {
  const n = store.totalUnread();
  document.title = n > 0 ? `(${n}) Messages · smsdesk` : 'Messages · smsdesk';
}

// ---------------------------------------------------------------------------------------------
// Live badge and socket

function setLive(live) {
  state.live = live;
  els.badge.dataset.state = live ? 'live' : 'connecting';
  els.badge.textContent = live ? 'Live' : 'Connecting...';
  els.badge.title = live ? 'Connected: messages arrive in real time' : 'Waiting for the live connection';
}

function scheduleManualConnect(delay = 1000) {
  if (state.manualConnectTimer || leaving) return;
  state.manualConnectTimer = setTimeout(() => {
    state.manualConnectTimer = null;
    const s = state.socket;
    if (s && !s.connected && !leaving) s.connect();
  }, delay);
}

let unauthorizedChecks = 0;
async function onUnauthorizedHandshake() {
  // The socket says our session is not valid. Confirm with the REST API once, so that a socket-only
  // problem (e.g. an Origin the socket refuses) does not bounce us between /login and here forever.
  if (unauthorizedChecks >= 3) {
    scheduleManualConnect(30000);
    return;
  }
  try {
    await get('/api/auth/me');
    unauthorizedChecks += 1;
    console.warn('[useSocket] handshake refused although the session is valid; retrying');
    scheduleManualConnect(Math.min(30000, 1000 * 2 ** unauthorizedChecks));
  } catch (err) {
    if (handleAuthError(err)) return;
    scheduleManualConnect(2000);
  }
}

function connectSocket() {
  const socket = io({
    transports: ['websocket'],
    reconnectionDelay: 500,
    reconnectionDelayMax: 2000,
    withCredentials: true,
  });
  state.socket = socket;

  socket.on('connect', () => {
    console.log('[useSocket] ✅ Connected to server');
    console.log('[useSocket] Joined room: user:' + state.agent.id);
    unauthorizedChecks = 0;
    setLive(true);
    if (!state.listenersReady) setupListeners(socket);
    onConnected();
    wakeRetries();
  });

  socket.on('disconnect', (reason) => {
    setLive(false);
    state.hadDisconnect = true;
    console.log('[useSocket] Disconnected:', reason);
    // The server closed us on purpose: socket.io will not retry by itself.
    if (reason === 'io server disconnect') scheduleManualConnect();
  });

  socket.on('connect_error', (err) => {
    setLive(false);
    state.hadDisconnect = true;
    const message = err?.message || String(err);
    if (message === 'unauthorized') {
      onUnauthorizedHandshake();
      return;
    }
    // A refusal from the server's middleware (e.g. "unavailable" while the database is down) is not
    // retried by socket.io-client (socket.active is false): retry ourselves. Transport errors are.
    if (!socket.active) scheduleManualConnect();
  });
}

function setupListeners(socket) {
  console.log('[Messages] Setting up WebSocket listeners');
  state.listenersReady = true;
  socket.on('message:new', (m) => ingestMessage(m, { live: true }));
  socket.on('message:status', onMessageStatus);
  socket.on('conversation:updated', onConversationUpdated);
  socket.on('typing', onTyping);
}

async function onConnected() {
  const reconnect = state.connectedOnce || state.hadDisconnect;
  state.connectedOnce = true;
  state.hadDisconnect = false;
  if (!state.listLoaded) {
    await loadConversations();
  } else if (reconnect) {
    refreshConversations();
  }
  runSync();
}

// ---------------------------------------------------------------------------------------------
// Sync: every (re)connect fetches what changed since the cursor.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runSync() {
  if (!state.cursorReady) return;
  if (state.syncing) {
    state.syncAgain = true;
    return;
  }
  state.syncing = true;
  try {
    do {
      state.syncAgain = false;
      let hasMore = true;
      let attempt = 0;
      while (hasMore) {
        let res;
        try {
          res = await get(`/api/crm/sms/sync?since=${enc(state.cursor)}&limit=${SYNC_LIMIT}`);
        } catch (err) {
          if (handleAuthError(err)) return;
          if (isTransient(err) && attempt < 4 && state.socket?.connected) {
            await sleep(1000 * 2 ** attempt);
            attempt += 1;
            continue;
          }
          console.warn('[Messages] sync failed:', describeError(err));
          return;
        }
        attempt = 0;
        const messages = Array.isArray(res?.messages) ? res.messages : [];
        for (const m of messages) ingestMessage(m, { live: false });
        advanceCursor(res?.cursor, messages);
        hasMore = Boolean(res?.hasMore) && messages.length > 0;
      }
    } while (state.syncAgain);
  } finally {
    state.syncing = false;
  }
  maybeMarkRead();
}

function advanceCursor(cursor, messages) {
  let next = typeof cursor === 'string' && cursor.trim() !== '' && !Number.isNaN(Number(cursor)) ? Number(cursor) : cursor;
  if (typeof next !== 'number' || !Number.isFinite(next)) {
    next = state.cursor;
    for (const m of messages) if (typeof m.seq === 'number' && m.seq > next) next = m.seq;
  }
  if (next > state.cursor) state.cursor = next;
}

// ---------------------------------------------------------------------------------------------
// Incoming data

function ingestMessage(raw, { live = false } = {}) {
  if (!raw || raw.conversationId == null) return;
  const convId = String(raw.conversationId);
  const conv = store.conversations.get(convId);
  const alreadyLast = conv ? sameMessage(conv.lastMessage, raw) : false;
  const r = store.upsertMessage(raw);
  if (!r || !r.changed) return;
  if (r.msg.id != null && orphanStatus.has(r.msg.id)) {
    const pending = orphanStatus.get(r.msg.id);
    orphanStatus.delete(r.msg.id);
    store.applyStatus(pending);
  }
  const m = store.getMessage(r.key);
  if (!conv) {
    requestConversationRefresh();
  } else if (live && r.isNew && !alreadyLast && m.direction === 'inbound') {
    if (isViewing(convId)) {
      markRead(convId);
    } else {
      conv.unreadCount = (conv.unreadCount || 0) + 1;
    }
  }
  if (live && m.direction === 'outbound' && m.agentId != null) clearTyping(convId, String(m.agentId));
  invalidate({ list: true, thread: convId === state.openId });
}

// A status for a message we do not hold yet (its message:new or the send response still in flight):
// keep it briefly and apply it when the message shows up.
const orphanStatus = new Map();

function onMessageStatus(update) {
  if (!update || update.id == null) return;
  if (!store.keyForId(update.id)) {
    orphanStatus.set(String(update.id), update);
    if (orphanStatus.size > 200) orphanStatus.delete(orphanStatus.keys().next().value);
    return;
  }
  const r = store.applyStatus(update);
  if (!r || !r.changed) return;
  invalidate({ list: true, thread: r.msg.conversationId === state.openId });
}

function onConversationUpdated(raw) {
  const conv = store.upsertConversation(raw);
  if (!conv) return;
  invalidate({ list: true, thread: conv.id === state.openId });
  maybeMarkRead();
}

function requestConversationRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    refreshConversations();
  }, 300);
}

// ---------------------------------------------------------------------------------------------
// Conversations (left column)

async function loadConversations({ more = false } = {}) {
  if (state.listLoading) return;
  if (more && !state.listNextCursor) return;
  state.listLoading = true;
  state.listError = null;
  renderListFooter();
  try {
    const q = new URLSearchParams({ limit: String(CONVERSATION_PAGE) });
    if (more) q.set('cursor', state.listNextCursor);
    const res = await get(`/api/crm/sms/conversations?${q}`);
    for (const c of res?.conversations || []) store.upsertConversation(c);
    state.listNextCursor = res?.nextCursor ?? null;
    state.listPages += 1;
    state.listLoaded = true;
    if (!state.cursorReady) {
      // Everything changed after this snapshot has a higher seq: sync from here.
      state.cursor = store.maxSeq;
      state.cursorReady = true;
    }
  } catch (err) {
    if (handleAuthError(err)) return;
    state.listError = describeError(err);
  } finally {
    state.listLoading = false;
  }
  invalidate({ list: true, thread: true });
  queueMicrotask(() => queueMicrotask(fillListViewport));
}

/** If the first pages do not fill the column, fetch the next one (once per completed load). */
function fillListViewport() {
  const sc = els.listScroller;
  if (!state.listNextCursor || state.listLoading || state.listError || sc.clientHeight === 0) return;
  if (sc.scrollHeight <= sc.clientHeight + 8) loadConversations({ more: true });
}

async function refreshConversations() {
  try {
    const res = await get(`/api/crm/sms/conversations?limit=${CONVERSATION_PAGE}`);
    for (const c of res?.conversations || []) store.upsertConversation(c);
    if (state.listPages <= 1) state.listNextCursor = res?.nextCursor ?? null;
    state.listLoaded = true;
    state.listError = null;
  } catch (err) {
    if (handleAuthError(err)) return;
    console.warn('[Messages] could not refresh conversations:', describeError(err));
  }
  invalidate({ list: true, thread: true });
  maybeMarkRead();
}

const rowEls = new Map();

function createRow(id) {
  const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
  const name = h('span', { class: 'conversation-name' });
  const optedOut = h('span', { class: 'tag tag-muted', hidden: true }, 'Opted out');
  const time = h('time', { class: 'conversation-time' });
  const preview = h('span', { class: 'conversation-preview' });
  const unread = h('span', { class: 'unread-badge', hidden: true });
  const button = h(
    'button',
    { type: 'button', class: 'conversation-button' },
    avatar,
    h(
      'span',
      { class: 'conversation-main' },
      h('span', { class: 'conversation-top' }, name, optedOut, time),
      h('span', { class: 'conversation-bottom' }, preview, unread),
    ),
  );
  const li = h('li', { class: 'conversation', dataset: { id } }, button);
  li._parts = { avatar, name, optedOut, time, preview, unread, button };
  rowEls.set(id, li);
  return li;
}

function typingNames(convId) {
  const m = state.typing.get(convId);
  return m ? Array.from(m.values(), (x) => x.name) : [];
}

function updateRow(li, conv) {
  const p = li._parts;
  const active = conv.id === state.openId;
  const unread = active ? 0 : Math.max(0, conv.unreadCount || 0);
  const typing = typingNames(conv.id).length > 0;
  const name = fmt.contactLabel(conv);
  const preview = typing ? 'typing…' : fmt.messagePreview(conv.lastMessage);
  const when = conv.lastMessage?.createdAt || conv.updatedAt;
  const sig = [name, preview, when, unread, active, typing, conv.contact?.optedOut, conv.lastMessage?.status].join('\u0001');
  if (li._sig === sig) return;
  li._sig = sig;
  p.avatar.textContent = fmt.initials(conv);
  p.avatar.dataset.tone = String(toneFor(conv.contact?.phone || conv.id));
  p.name.textContent = name;
  p.name.title = conv.contact?.name ? fmt.formatPhone(conv.contact.phone) : '';
  p.optedOut.hidden = !conv.contact?.optedOut;
  p.time.textContent = fmt.formatListTime(when);
  if (when) p.time.dateTime = when;
  p.time.title = fmt.formatFull(when);
  p.preview.textContent = preview;
  p.preview.classList.toggle('is-typing', typing);
  p.unread.textContent = unread > 99 ? '99+' : String(unread);
  p.unread.hidden = unread === 0;
  p.unread.setAttribute('aria-label', `${unread} unread`);
  li.classList.toggle('active', active);
  li.classList.toggle('has-unread', unread > 0);
  if (active) p.button.setAttribute('aria-current', 'true');
  else p.button.removeAttribute('aria-current');
}

function toneFor(s) {
  let x = 0;
  for (const ch of String(s)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 6;
}

function renderList() {
  const convs = store.sortedConversations();
  const nodes = convs.map((c) => {
    const li = rowEls.get(c.id) || createRow(c.id);
    updateRow(li, c);
    return li;
  });
  reconcileChildren(els.list, nodes);
  const empty = state.listLoaded && convs.length === 0;
  els.listEmpty.hidden = !empty;
  if (empty && agentNumbers().length === 0) {
    els.listEmptyHint.textContent = 'No phone number is assigned to you yet. Ask an admin to add one.';
  }
  renderListFooter();
}

function renderListFooter() {
  let status = '';
  if (state.listLoading) status = state.listLoaded ? 'Loading more…' : 'Loading conversations…';
  else if (state.listError) status = state.listError;
  els.listStatus.textContent = status;
  els.listStatus.classList.toggle('error', Boolean(state.listError) && !state.listLoading);
  els.listRetry.hidden = !state.listError || state.listLoading;
  els.listMore.hidden = !state.listNextCursor || state.listLoading || Boolean(state.listError);
}

// ---------------------------------------------------------------------------------------------
// Opening a conversation

function idFromHash() {
  const m = /^#c=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function selectConversation(id) {
  const url = `${location.pathname}#c=${enc(id)}`;
  if (state.openId && state.openId !== id) {
    history.replaceState({ c: id, fromList: Boolean(history.state?.fromList) }, '', url);
  } else if (!state.openId) {
    history.pushState({ c: id, fromList: true }, '', url);
  }
  openConversation(id);
}

function applyLocation() {
  const id = idFromHash();
  if (id && store.conversations.has(id)) openConversation(id);
  else closeConversation();
}

function goBackToList() {
  if (history.state?.fromList) {
    history.back();
  } else {
    history.replaceState(null, '', location.pathname);
    closeConversation();
  }
}

function saveDraft() {
  if (!state.openId) return;
  const v = els.textarea.value;
  if (v) state.drafts.set(state.openId, v);
  else state.drafts.delete(state.openId);
}

function openConversation(id) {
  const conv = store.conversations.get(id);
  if (!conv) return;
  if (state.openId !== id) {
    stopTyping();
    saveDraft();
    state.openId = id;
    bubbleEls.clear();
    dayEls.clear();
    els.thread.replaceChildren();
    state.pinned = true;
    state.forceBottom = true;
    state.newestKey = null;
    els.jump.hidden = true;
    els.textarea.value = state.drafts.get(id) || '';
    autoGrow();
  }
  els.app.dataset.pane = 'thread';
  els.placeholder.hidden = true;
  els.threadView.hidden = false;
  if ((conv.unreadCount || 0) > 0) markRead(id);
  const t = threadState(id);
  if (!t.loaded && !t.loading) loadThread(id);
  invalidate({ list: true, thread: true, typing: true });
  if (isWide() && !conv.contact?.optedOut) els.textarea.focus({ preventScroll: true });
}

function closeConversation() {
  if (!state.openId) {
    els.app.dataset.pane = 'list';
    return;
  }
  stopTyping();
  saveDraft();
  const prev = state.openId;
  state.openId = null;
  bubbleEls.clear();
  dayEls.clear();
  els.thread.replaceChildren();
  els.app.dataset.pane = 'list';
  els.threadView.hidden = true;
  els.placeholder.hidden = false;
  invalidate({ list: true, thread: true, typing: true });
  rowEls.get(prev)?._parts.button.focus({ preventScroll: false });
}

async function markRead(convId) {
  const conv = store.conversations.get(convId);
  if (!conv) return;
  const inflight = state.readInflight.get(convId);
  if (inflight) {
    inflight.again = true;
    return;
  }
  const rec = { again: false };
  state.readInflight.set(convId, rec);
  conv.unreadCount = 0;
  invalidate({ list: true });
  try {
    await post(`/api/crm/sms/conversations/${enc(convId)}/read`);
  } catch (err) {
    if (handleAuthError(err)) return;
    console.warn('[Messages] could not mark as read:', describeError(err));
  } finally {
    state.readInflight.delete(convId);
  }
  if (rec.again && isViewing(convId) && (store.conversations.get(convId)?.unreadCount || 0) > 0) markRead(convId);
}

function maybeMarkRead() {
  const id = state.openId;
  if (!id || !isViewing(id)) return;
  const conv = store.conversations.get(id);
  if (conv && (conv.unreadCount || 0) > 0) markRead(id);
}

// ---------------------------------------------------------------------------------------------
// Thread (right column)

async function loadThread(id, { older = false } = {}) {
  const t = threadState(id);
  if (older) {
    if (!t.loaded || t.loadingOlder || t.loading || !t.nextCursor || t.error) return;
    t.loadingOlder = true;
  } else {
    if (t.loading) return;
    t.loading = true;
  }
  t.error = null;
  if (id === state.openId) renderThreadTop(t, null);
  try {
    const q = new URLSearchParams({ limit: String(MESSAGE_PAGE) });
    if (older) q.set('cursor', t.nextCursor);
    const res = await get(`/api/crm/sms/conversations/${enc(id)}/messages?${q}`);
    const messages = Array.isArray(res?.messages) ? res.messages : [];
    let nextCursor = res?.nextCursor ?? null;
    if (older && messages.length === 0) nextCursor = null; // never loop on an empty page
    let oldest = t.oldest;
    for (const m of messages) {
      const r = store.upsertMessage({ ...m, conversationId: m.conversationId ?? id });
      if (r) oldest = Math.min(oldest, msgTime(r.msg));
    }
    t.oldest = oldest;
    t.nextCursor = nextCursor;
    t.complete = !t.nextCursor;
    t.loaded = true;
  } catch (err) {
    if (handleAuthError(err)) return;
    t.error = err instanceof ApiError && err.status === 404 ? 'This conversation is no longer available.' : describeError(err);
  } finally {
    t.loading = false;
    t.loadingOlder = false;
  }
  if (id === state.openId) {
    renderThread();
    invalidate({ list: true });
    // Short thread: keep loading older pages until the view can scroll (or there is no more).
    if (t.nextCursor && !t.error && els.scroller.clientHeight > 0 && els.scroller.scrollTop < LOAD_OLDER_THRESHOLD_PX) {
      loadThread(id, { older: true });
    }
  }
}

const bubbleEls = new Map(); // message key -> .bubble element (open conversation only)
const dayEls = new Map(); // day key -> separator element

function createBubble() {
  const media = h('div', { class: 'media', hidden: true });
  const body = h('div', { class: 'body' });
  const box = h('div', { class: 'bubble-box' }, media, body);
  const time = h('time', { class: 'time' });
  const status = h('span', { class: 'status' });
  const meta = h('div', { class: 'meta' }, time, status);
  const errorText = h('span', { class: 'error-text' });
  const retry = h('button', { type: 'button', class: 'retry-button', hidden: true }, 'Retry');
  const error = h('div', { class: 'error-line', hidden: true }, errorText, retry);
  const el = h('div', { class: 'bubble' }, box, meta, error);
  el._parts = { media, body, time, status, errorText, retry, error };
  return el;
}

const STATUS_LABELS = {
  pending: 'Sending',
  queued: 'Queued',
  sending: 'Sending',
  accepted: 'Accepted',
  scheduled: 'Scheduled',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Failed',
  undelivered: 'Not delivered',
  canceled: 'Canceled',
};

function errorTextFor(m) {
  if (m.errorMessage) return String(m.errorMessage);
  if (m.errorCode != null && m.errorCode !== '') return `Error ${m.errorCode}`;
  return m.status === 'canceled' ? 'Canceled' : 'Not delivered';
}

function mediaUrl(m, n) {
  return `/api/crm/sms/messages/${enc(m.id)}/media/${n}`;
}

function renderMedia(container, m) {
  const items = Array.isArray(m.media) ? m.media : [];
  const nodes = [];
  if (m.id != null) {
    items.forEach((item, n) => {
      const type = String(item?.contentType || '').toLowerCase();
      const src = mediaUrl(m, n);
      if (type.startsWith('image/')) {
        const img = h('img', { src, alt: 'Image attachment', loading: 'lazy', decoding: 'async' });
        img.addEventListener('error', () => {
          img.replaceWith(h('span', { class: 'media-missing' }, 'Image unavailable'));
        });
        nodes.push(h('a', { class: 'media-image', href: src, target: '_blank', rel: 'noopener' }, img));
      } else if (type.startsWith('video/')) {
        nodes.push(h('video', { class: 'media-video', src, controls: true, preload: 'none' }));
      } else if (type.startsWith('audio/')) {
        nodes.push(h('audio', { class: 'media-audio', src, controls: true, preload: 'none' }));
      } else {
        nodes.push(
          h(
            'a',
            { class: 'media-file', href: src, target: '_blank', rel: 'noopener' },
            h('span', { 'aria-hidden': 'true' }, '📎 '),
            `Attachment${type ? ` (${type})` : ''}`,
          ),
        );
      }
    });
  } else if (items.length) {
    nodes.push(h('span', { class: 'media-missing' }, `${items.length} attachment${items.length > 1 ? 's' : ''}`));
  }
  container.replaceChildren(...nodes);
  container.hidden = nodes.length === 0;
}

function updateBubble(el, m, key) {
  const outbound = m.direction !== 'inbound';
  const group = outbound ? statusGroup(m.status) : 'received';
  const canRetry =
    outbound && !m._local && m.id != null && (m.status === 'failed' || m.status === 'undelivered') && !state.retried.has(m.id);
  const mediaSig = JSON.stringify([m.id, m.media]);
  const sig = [
    m.id,
    m.clientId,
    m.status,
    m.errorCode,
    m.errorMessage,
    m.body,
    m.createdAt,
    mediaSig,
    canRetry,
    group,
  ].join('\u0001');
  if (el._sig === sig) return;
  el._sig = sig;
  const p = el._parts;
  el.className = `bubble ${outbound ? 'outbound' : 'inbound'} state-${group}`;
  el.dataset.key = key;
  el.dataset.id = m.id ?? '';
  el.dataset.clientId = m.clientId ?? '';
  el.dataset.status = m.status || (outbound ? 'pending' : 'received');
  el.dataset.direction = outbound ? 'outbound' : 'inbound';

  p.body.textContent = m.body ?? '';
  p.body.hidden = !m.body;
  if (el._mediaSig !== mediaSig) {
    el._mediaSig = mediaSig;
    renderMedia(p.media, m);
  }

  p.time.textContent = fmt.formatTime(m.createdAt);
  if (m.createdAt) p.time.dateTime = m.createdAt;
  p.time.title = fmt.formatFull(m.createdAt);

  const s = p.status;
  s.className = `status status-${group}`;
  s.replaceChildren();
  if (outbound) {
    const label = STATUS_LABELS[m.status] || 'Sending';
    s.setAttribute('role', 'img');
    s.setAttribute('aria-label', label);
    s.title = label;
    s.removeAttribute('aria-hidden');
    if (group === 'pending') s.append(h('span', { class: 'spinner' }));
    else if (group === 'sent') s.textContent = '✓';
    else if (group === 'delivered') s.textContent = '✓✓';
    else s.textContent = '!';
  } else {
    s.removeAttribute('role');
    s.removeAttribute('aria-label');
    s.removeAttribute('title');
    s.setAttribute('aria-hidden', 'true');
  }

  const failed = outbound && (group === 'failed' || group === 'canceled');
  p.error.hidden = !failed;
  p.errorText.textContent = failed ? errorTextFor(m) : '';
  p.retry.hidden = !canRetry;
  p.retry.disabled = false;
}

function dayEl(key, createdAt) {
  let el = dayEls.get(key);
  if (!el) {
    el = h('div', { class: 'day-separator', role: 'separator' }, h('span'));
    dayEls.set(key, el);
  }
  el.firstChild.textContent = fmt.formatDayHeader(createdAt);
  return el;
}

function renderThreadHeader(conv) {
  const label = fmt.contactLabel(conv);
  els.threadTitle.textContent = label;
  const parts = [];
  if (conv.contact?.name) parts.push(fmt.formatPhone(conv.contact.phone));
  if (conv.ourNumber) parts.push(`via ${fmt.formatPhone(conv.ourNumber)}`);
  els.threadSubtitle.textContent = parts.join(' · ');
  els.threadAvatar.textContent = fmt.initials(conv);
  els.threadAvatar.dataset.tone = String(toneFor(conv.contact?.phone || conv.id));
  const optedOut = Boolean(conv.contact?.optedOut);
  els.optedOut.hidden = !optedOut;
  els.textarea.disabled = optedOut;
  els.textarea.placeholder = optedOut ? 'Opted out: messaging is off' : 'Type a message…';
  updateComposerState();
}

function renderThreadTop(t, count) {
  let text = '';
  if (t.loading && !t.loaded) text = 'Loading messages…';
  else if (t.loadingOlder) text = 'Loading earlier messages…';
  else if (t.error) text = t.error;
  else if (t.loaded && t.complete && count) text = 'Beginning of conversation';
  els.threadTopText.textContent = text;
  els.threadTopText.classList.toggle('error', Boolean(t.error) && !t.loading && !t.loadingOlder);
  els.threadRetry.hidden = !t.error || t.loading || t.loadingOlder;
  els.loadOlder.hidden = !t.loaded || !t.nextCursor || t.loadingOlder || Boolean(t.error);
}

function renderThread() {
  const id = state.openId;
  if (!id) {
    els.threadView.hidden = true;
    els.placeholder.hidden = false;
    return;
  }
  const conv = store.conversations.get(id);
  if (!conv) return;
  els.threadView.hidden = false;
  els.placeholder.hidden = true;
  renderThreadHeader(conv);

  const t = threadState(id);
  let messages = store.messagesFor(id, t);
  if (!t.loaded) messages = messages.filter((m) => m._local);

  const sc = els.scroller;
  const wasPinned = state.pinned || state.forceBottom;
  // Remember the first visible element so that changes above it do not move what the user reads.
  let anchor = null;
  let anchorTop = 0;
  if (!wasPinned) {
    const top = sc.getBoundingClientRect().top;
    for (const child of els.thread.children) {
      if (!child.classList.contains('bubble')) continue; // day separators move when older days load
      const r = child.getBoundingClientRect();
      if (r.bottom > top) {
        anchor = child;
        anchorTop = r.top;
        break;
      }
    }
  }

  const nodes = [];
  const seen = new Set();
  let lastDay = null;
  for (const m of messages) {
    const key = m._key;
    const dk = fmt.dayKey(m.createdAt);
    if (dk !== lastDay) {
      nodes.push(dayEl(dk, m.createdAt));
      lastDay = dk;
    }
    let el = bubbleEls.get(key);
    if (!el) {
      el = createBubble();
      bubbleEls.set(key, el);
    }
    updateBubble(el, m, key);
    nodes.push(el);
    seen.add(key);
  }
  for (const key of Array.from(bubbleEls.keys())) if (!seen.has(key)) bubbleEls.delete(key);
  reconcileChildren(els.thread, nodes);

  els.threadEmpty.hidden = !(t.loaded && !t.error && messages.length === 0);
  renderThreadTop(t, messages.length);

  if (wasPinned) {
    sc.scrollTop = sc.scrollHeight;
    state.pinned = true;
    state.forceBottom = false;
  } else if (anchor && anchor.isConnected) {
    const delta = anchor.getBoundingClientRect().top - anchorTop;
    if (delta) sc.scrollTop += delta;
  }

  const newest = messages.length ? messages[messages.length - 1] : null;
  const newestKey = newest?._key ?? null;
  if (state.newestKey && newestKey && newestKey !== state.newestKey && !state.pinned) els.jump.hidden = false;
  state.newestKey = newestKey;
}

function scrollToBottom() {
  const sc = els.scroller;
  sc.scrollTop = sc.scrollHeight;
  state.pinned = true;
  els.jump.hidden = true;
}

// Typing ------------------------------------------------------------------------------------------

function onTyping(p) {
  if (!p || p.conversationId == null) return;
  if (state.agent && p.agentId != null && String(p.agentId) === String(state.agent.id)) return;
  const convId = String(p.conversationId);
  const agentKey = String(p.agentId ?? p.agentName ?? 'someone');
  if (p.isTyping) {
    let m = state.typing.get(convId);
    if (!m) {
      m = new Map();
      state.typing.set(convId, m);
    }
    const prev = m.get(agentKey);
    if (prev) clearTimeout(prev.timer);
    m.set(agentKey, {
      name: p.agentName || 'Someone',
      timer: setTimeout(() => clearTyping(convId, agentKey), TYPING_SHOW_MS),
    });
    invalidate({ typing: true, list: true });
  } else {
    clearTyping(convId, agentKey);
  }
}

function clearTyping(convId, agentKey) {
  const m = state.typing.get(convId);
  const entry = m?.get(agentKey);
  if (!entry) return;
  clearTimeout(entry.timer);
  m.delete(agentKey);
  if (m.size === 0) state.typing.delete(convId);
  invalidate({ typing: true, list: true });
}

function renderTyping() {
  const names = state.openId ? typingNames(state.openId) : [];
  if (names.length === 0) {
    els.typing.hidden = true;
    els.typingText.textContent = '';
    return;
  }
  let text;
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else text = 'Several people are typing…';
  els.typingText.textContent = text;
  els.typing.hidden = false;
}

const typingOut = { convId: null, lastSent: 0, idleTimer: null };

function emitTyping(conversationId, isTyping) {
  const s = state.socket;
  if (s && s.connected) s.emit('typing', { conversationId, isTyping });
}

function onComposerTyping() {
  const id = state.openId;
  if (!id) return;
  if (!els.textarea.value.trim()) {
    stopTyping();
    return;
  }
  if (typingOut.convId && typingOut.convId !== id) stopTyping();
  const now = Date.now();
  if (now - typingOut.lastSent >= TYPING_RENEW_MS) {
    emitTyping(id, true);
    typingOut.lastSent = now;
    typingOut.convId = id;
  }
  clearTimeout(typingOut.idleTimer);
  typingOut.idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingOut.idleTimer);
  typingOut.idleTimer = null;
  if (typingOut.convId) emitTyping(typingOut.convId, false);
  typingOut.convId = null;
  typingOut.lastSent = 0;
}

// Composer ----------------------------------------------------------------------------------------

function autoGrow() {
  const ta = els.textarea;
  ta.style.height = 'auto';
  ta.style.height = `${Math.min(ta.scrollHeight + 2, 160)}px`;
}

function updateComposerState() {
  const text = els.textarea.value;
  const info = countSegments(text);
  els.counter.textContent = counterLabel(info);
  els.counter.dataset.encoding = info.encoding;
  const chars = bodyLength(text);
  const tooLong = chars > MAX_BODY_CHARS;
  let hint = '';
  if (tooLong) hint = `Too long: ${chars} of ${MAX_BODY_CHARS} characters`;
  else if (info.encoding === UCS2) hint = 'Unicode (UCS-2): 70 characters per SMS';
  els.hint.textContent = hint;
  els.hint.classList.toggle('error', tooLong);
  els.counter.classList.toggle('error', tooLong);
  const conv = state.openId ? store.conversations.get(state.openId) : null;
  const optedOut = Boolean(conv?.contact?.optedOut);
  els.send.disabled = !conv || optedOut || text.trim() === '' || tooLong;
}

function submitComposer() {
  const conv = state.openId ? store.conversations.get(state.openId) : null;
  if (!conv || conv.contact?.optedOut) return;
  const body = els.textarea.value.trim();
  if (!body || bodyLength(body) > MAX_BODY_CHARS) return;
  stopTyping();
  els.textarea.value = '';
  state.drafts.delete(conv.id);
  autoGrow();
  updateComposerState();
  sendNew(conv, body);
  els.textarea.focus({ preventScroll: true });
}

// Sending: optimistic bubble, then POST with the same clientId until the server has it. -------------

function makeLocal(conv, body, clientId) {
  const at = new Date(Math.max(Date.now(), store.latestTime(conv.id) + 1)).toISOString();
  return {
    id: null,
    clientId,
    conversationId: conv.id,
    direction: 'outbound',
    from: conv.ourNumber ?? null,
    to: conv.contact?.phone ?? null,
    body,
    media: [],
    status: 'pending',
    errorCode: null,
    errorMessage: null,
    twilioSid: null,
    agentId: state.agent?.id ?? null,
    segments: countSegments(body).segments,
    createdAt: at,
    updatedAt: at,
    seq: null,
    _local: true,
  };
}

function sendNew(conv, body) {
  const clientId = uuid();
  const local = makeLocal(conv, body, clientId);
  store.upsertMessage(local);
  state.forceBottom = true;
  invalidate({ list: true, thread: true });
  deliver({
    kind: 'send',
    clientId,
    conversationId: conv.id,
    path: '/api/crm/sms/send',
    payload: { conversationId: conv.id, body, clientId },
    local,
    createdAt: Date.now(),
  });
}

function retryMessage(m) {
  if (m.id == null || state.retried.has(m.id)) return;
  rememberRetried(m.id);
  const conv = store.conversations.get(m.conversationId) || {
    id: m.conversationId,
    ourNumber: m.from,
    contact: { phone: m.to },
  };
  const clientId = uuid();
  const local = makeLocal(conv, m.body ?? '', clientId);
  store.upsertMessage(local);
  state.forceBottom = true;
  invalidate({ list: true, thread: true });
  deliver({
    kind: 'retry',
    clientId,
    conversationId: m.conversationId,
    path: `/api/crm/sms/messages/${enc(m.id)}/retry`,
    payload: { clientId },
    local,
    createdAt: Date.now(),
  });
}

const wakers = new Set();

/** Wait `ms`, or less when the connection comes back (online event, socket connect). */
function backoff(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wakers.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wakers.add(done);
  });
}

function wakeRetries() {
  for (const w of Array.from(wakers)) w();
}

async function deliver(entry) {
  outbox.save(entry);
  let delay = 1000;
  for (;;) {
    try {
      const res = await post(entry.path, entry.payload);
      outbox.remove(entry.clientId);
      if (res?.message) ingestMessage({ ...res.message, clientId: res.message.clientId || entry.clientId });
      return;
    } catch (err) {
      if (isTransient(err)) {
        await backoff(delay);
        delay = Math.min(delay * 2, SEND_BACKOFF_MAX_MS);
        continue;
      }
      if (handleAuthError(err)) return; // kept in the outbox: resumes after logging in again
      outbox.remove(entry.clientId);
      failLocal(entry, err);
      return;
    }
  }
}

function failLocal(entry, err) {
  const key = `c:${entry.clientId}`;
  const local = store.getMessage(key);
  if (entry.kind === 'retry' && err instanceof ApiError && err.code === 'not_retryable') {
    store.removeMessage(key);
    invalidate({ list: true, thread: true });
    toast(`This message can't be retried: ${err.message}`, 'error');
    return;
  }
  if (err instanceof ApiError && err.code === 'opted_out') {
    const conv = store.conversations.get(entry.conversationId);
    if (conv) conv.contact = { ...(conv.contact || {}), optedOut: true };
  }
  if (local && local._local) {
    store.upsertMessage({
      ...local,
      status: 'failed',
      errorCode: err instanceof ApiError ? err.code : null,
      errorMessage: describeError(err),
      _local: true,
      _localError: true,
    });
  }
  invalidate({ list: true, thread: true });
}

function restoreOutbox() {
  const now = Date.now();
  for (const entry of outbox.all()) {
    if (!entry || !entry.clientId || !entry.path || now - (entry.createdAt || 0) > OUTBOX_MAX_AGE_MS) {
      if (entry?.clientId) outbox.remove(entry.clientId);
      continue;
    }
    if (entry.local) store.upsertMessage({ ...entry.local, _local: true });
    deliver(entry);
  }
  invalidate({ list: true, thread: true });
}

// ---------------------------------------------------------------------------------------------
// Dialogs: new conversation, simulate incoming SMS

function fillNumberSelect(select, selected) {
  const nums = agentNumbers();
  select.replaceChildren(...nums.map((n) => h('option', { value: n }, fmt.formatPhone(n))));
  if (selected && nums.includes(selected)) select.value = selected;
  return nums;
}

function openDialog(dialog) {
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
}

function closeDialog(dialog) {
  if (typeof dialog.close === 'function') dialog.close();
  else dialog.removeAttribute('open');
}

function openNewConversation() {
  els.ncForm.reset();
  setAlert(els.ncError, '');
  const current = state.openId ? store.conversations.get(state.openId)?.ourNumber : null;
  const nums = fillNumberSelect(els.ncFrom, current);
  els.ncFromField.hidden = nums.length < 2;
  els.ncSubmit.disabled = false;
  openDialog(els.ncDialog);
  els.ncForm.elements.phone.focus();
}

async function submitNewConversation(e) {
  e.preventDefault();
  const f = els.ncForm.elements;
  const phone = f.phone.value.trim();
  const name = f.name.value.trim();
  if (!phone) {
    setAlert(els.ncError, 'Enter a phone number.');
    f.phone.focus();
    return;
  }
  const payload = { phone };
  if (name) payload.name = name;
  if (!els.ncFromField.hidden && f.from.value) payload.from = f.from.value;
  els.ncSubmit.disabled = true;
  setAlert(els.ncError, '');
  try {
    const res = await post('/api/crm/sms/conversations', payload);
    const conv = store.upsertConversation(res?.conversation ?? res);
    if (!conv) throw new Error('The server did not return the conversation.');
    state.listLoaded = true;
    closeDialog(els.ncDialog);
    invalidate({ list: true });
    selectConversation(conv.id);
  } catch (err) {
    if (handleAuthError(err)) return;
    setAlert(els.ncError, describeError(err));
  } finally {
    els.ncSubmit.disabled = false;
  }
}

async function checkSimulator() {
  try {
    const res = await get('/dev/status');
    state.simulator = Boolean(res?.simulator);
  } catch {
    state.simulator = false; // 404 in live mode
  }
  els.simulate.hidden = !state.simulator;
}

function openSimulate() {
  els.simForm.reset();
  setAlert(els.simError, '');
  const conv = state.openId ? store.conversations.get(state.openId) : null;
  fillNumberSelect(els.simTo, conv?.ourNumber);
  if (conv?.contact?.phone) els.simForm.elements.from.value = conv.contact.phone;
  els.simSubmit.disabled = false;
  openDialog(els.simDialog);
  (conv ? els.simForm.elements.body : els.simForm.elements.from).focus();
}

async function submitSimulate(e) {
  e.preventDefault();
  const f = els.simForm.elements;
  const from = f.from.value.trim();
  const to = f.to.value;
  const body = f.body.value;
  const mediaUrl = f.mediaUrl.value.trim();
  if (!from) return setAlert(els.simError, "Enter the contact's phone number.");
  if (!to) return setAlert(els.simError, 'You have no number to receive on.');
  if (!body.trim() && !mediaUrl) return setAlert(els.simError, 'Enter a message or a media URL.');
  const payload = { from, to, body };
  if (mediaUrl) payload.mediaUrls = [mediaUrl];
  els.simSubmit.disabled = true;
  setAlert(els.simError, '');
  try {
    await post('/dev/simulate/inbound', payload);
    closeDialog(els.simDialog);
    toast('Incoming SMS simulated');
  } catch (err) {
    if (handleAuthError(err)) return;
    setAlert(els.simError, describeError(err));
  } finally {
    els.simSubmit.disabled = false;
  }
}

async function logout() {
  els.logout.disabled = true;
  try {
    await post('/api/auth/logout');
  } catch (err) {
    if (!(err instanceof ApiError)) {
      els.logout.disabled = false;
      toast(describeError(err), 'error');
      return;
    }
  }
  goLogin();
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wireUi() {
  els.logout.addEventListener('click', logout);
  els.newConversation.addEventListener('click', openNewConversation);
  els.simulate.addEventListener('click', openSimulate);
  els.ncForm.addEventListener('submit', submitNewConversation);
  els.simForm.addEventListener('submit', submitSimulate);
  for (const dialog of [els.ncDialog, els.simDialog]) {
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) closeDialog(dialog); // backdrop
      if (e.target.closest('[data-close-dialog]')) closeDialog(dialog);
    });
  }

  els.list.addEventListener('click', (e) => {
    const li = e.target.closest('.conversation');
    if (li && els.list.contains(li)) selectConversation(li.dataset.id);
  });
  els.listScroller.addEventListener(
    'scroll',
    () => {
      const sc = els.listScroller;
      if (sc.scrollTop + sc.clientHeight > sc.scrollHeight - 200) loadConversations({ more: true });
    },
    { passive: true },
  );
  els.listMore.addEventListener('click', () => loadConversations({ more: true }));
  els.listRetry.addEventListener('click', () => loadConversations({ more: state.listLoaded }));

  els.back.addEventListener('click', goBackToList);
  window.addEventListener('popstate', applyLocation);

  els.scroller.addEventListener(
    'scroll',
    () => {
      const sc = els.scroller;
      state.pinned = sc.scrollHeight - sc.scrollTop - sc.clientHeight < PIN_THRESHOLD_PX;
      if (state.pinned) els.jump.hidden = true;
      if (state.openId && sc.scrollTop < LOAD_OLDER_THRESHOLD_PX) loadThread(state.openId, { older: true });
    },
    { passive: true },
  );
  els.loadOlder.addEventListener('click', () => state.openId && loadThread(state.openId, { older: true }));
  els.threadRetry.addEventListener('click', () => {
    const id = state.openId;
    if (!id) return;
    const t = threadState(id);
    const older = t.loaded;
    t.error = null;
    loadThread(id, { older });
  });
  els.jump.addEventListener('click', scrollToBottom);
  if ('ResizeObserver' in window) {
    const ro = new ResizeObserver(() => {
      if (state.pinned && state.openId) els.scroller.scrollTop = els.scroller.scrollHeight;
    });
    ro.observe(els.thread);
    ro.observe(els.scroller);
  }

  els.thread.addEventListener('click', (e) => {
    const btn = e.target.closest('.retry-button');
    if (!btn) return;
    const bubble = btn.closest('.bubble');
    const m = bubble ? store.getMessage(bubble.dataset.key) : null;
    if (!m) return;
    btn.disabled = true;
    retryMessage(m);
  });

  els.textarea.addEventListener('input', () => {
    autoGrow();
    updateComposerState();
    onComposerTyping();
  });
  els.textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitComposer();
    }
  });
  els.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    submitComposer();
  });

  window.addEventListener('online', () => {
    const s = state.socket;
    // connect() alone waits out socket.io's pending retry delay; restarting is immediate.
    if (s && !s.connected) {
      s.disconnect();
      s.connect();
    }
    wakeRetries();
  });
  window.addEventListener('offline', () => {
    // Show it at once instead of waiting for the heartbeat timeout; socket.io then reconnects by itself.
    const s = state.socket;
    if (s && s.connected) s.io.engine?.close();
    setLive(false);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    const s = state.socket;
    if (s && !s.connected && !s.active) s.connect();
    maybeMarkRead();
  });
  window.addEventListener('pagehide', stopTyping);

  els.fatalRetry.addEventListener('click', () => location.reload());
}

function showFatal(text) {
  els.fatalText.textContent = text;
  els.fatal.hidden = false;
  els.fatalRetry.focus();
}

async function boot() {
  wireUi();
  updateComposerState();
  let me;
  try {
    me = await get('/api/auth/me');
  } catch (err) {
    if (handleAuthError(err)) return;
    showFatal(describeError(err));
    return;
  }
  const agent = me?.agent ?? me;
  if (!agent || agent.id == null) {
    goLogin();
    return;
  }
  state.agent = { ...agent, id: String(agent.id) };
  els.agentName.textContent = state.agent.name || state.agent.email || '';
  els.agentName.title = state.agent.email || '';
  const retried = readJson('retried', []);
  if (Array.isArray(retried)) for (const id of retried) state.retried.add(String(id));

  checkSimulator();
  await loadConversations();
  restoreOutbox();
  if (idFromHash()) {
    history.replaceState({ c: idFromHash(), fromList: false }, '', location.href);
    applyLocation();
  }
  connectSocket();
}

boot();
