// The conversation list (left column): pages of conversations, newest activity first, more as the agent
// scrolls; one row per conversation with its avatar, name, last message (or "typing…", and a red mark
// when it is ours and was not delivered), time, opt-out tag and unread count; the unread total in the
// tab's title. Only the conversations of the view chosen above it (views-view.js), each view paged by
// its own cursor; a conversation that changes leaves or enters the list as it leaves or enters the
// view. While a search is on (search.js), only its results in that view, with the matching words
// marked.

import { describeError } from './api.js';
import { h, reconcileChildren } from './dom.js';
import * as fmt from './format.js';
import { setMarked } from './search.js';
import { notDelivered } from './store.js';
import { listed } from './views.js';

const CONVERSATION_PAGE = 50;
const REFRESH_DEBOUNCE_MS = 300;

const $ = (sel) => document.querySelector(sel);

/** What the empty list says in each view. */
const EMPTY = {
  mine: ['Nothing assigned to you', 'Conversations you reply to, or that are assigned to you, show here.'],
  unassigned: ['Nothing waiting for an owner', 'New conversations show here until someone takes them.'],
  open: ['No conversations yet', 'Start a new conversation, or wait for an incoming SMS.'],
  snoozed: ['Nothing snoozed', 'A snoozed conversation comes back to Open at its time, or when the contact writes.'],
  closed: ['Nothing closed yet', 'Close a conversation when it is done (E); a new SMS reopens it.'],
};

/**
 * init({store, get, invalidate, openId, typingNames, agentNumbers, select, search, views, authorOf, ownerOf, onLoaded, onRefreshed, onAuthError})
 * → {load, refresh, requestRefresh, showView, loaded, markLoaded, focusRow, shownIds, render, updateTitle}
 * `views` is views-view.js's; `authorOf(message)` names who wrote a reply ("You" for ours);
 * `ownerOf(conv)` whose it is: {short, full}, or null when nobody's.
 * `onLoaded(syncCursor)` runs after every page that loaded (with where `sync` may start); `onRefreshed()` after a refresh of the first page.
 */
export function init({
  store,
  get,
  invalidate,
  openId,
  typingNames,
  agentNumbers,
  select,
  search,
  views,
  authorOf,
  ownerOf,
  onLoaded,
  onRefreshed,
  onAuthError,
}) {
  const els = {
    scroller: $('#conversation-scroller'),
    list: $('#conversation-list'),
    empty: $('#conversation-empty'),
    emptyTitle: $('#conversation-empty .empty-title'),
    emptyHint: $('#conversation-empty-hint'),
    status: $('#conversation-status'),
    retry: $('#conversation-retry'),
    more: $('#load-more-conversations'),
    noMatch: $('#search-empty'),
    noMatchText: $('#search-empty-text'),
  };
  let everLoaded = false;
  let refreshTimer = null;
  const rowEls = new Map();

  /**
   * The paging of the view shown: its pages so far, the cursor of the next, and the activity of the
   * oldest conversation they held. Conversations the page knows from elsewhere (another view, a
   * search, an event) that are older than that wait for the page that holds them, so the list has no
   * gaps.
   */
  const paging = (view) => ({ view, loaded: false, loading: false, error: null, nextCursor: null, pages: 0, oldest: Infinity });
  let page = paging(views.current());

  function pageUrl(cursor) {
    const q = new URLSearchParams({ limit: String(CONVERSATION_PAGE), ...views.params() });
    if (cursor) q.set('cursor', cursor);
    return `/api/crm/sms/conversations?${q}`;
  }

  /** Conversations of an answer into the Store; the activity of the oldest. */
  function take(res) {
    let oldest = Infinity;
    for (const c of res?.conversations || []) {
      const conv = store.upsertConversation(c);
      if (conv) oldest = Math.min(oldest, store.activity(conv));
    }
    return oldest;
  }

  async function load({ more = false } = {}) {
    if (!more && page.view !== views.current()) page = paging(views.current());
    const p = page;
    if (p.loading) return;
    if (more && !p.nextCursor) return;
    p.loading = true;
    p.error = null;
    renderFooter();
    try {
      const res = await get(pageUrl(more ? p.nextCursor : null));
      const oldest = take(res);
      p.oldest = more ? Math.min(p.oldest, oldest) : oldest;
      p.nextCursor = res?.nextCursor ?? null;
      p.pages += 1;
      p.loaded = true;
      everLoaded = true;
      onLoaded(res?.syncCursor);
    } catch (err) {
      if (onAuthError(err)) return;
      p.error = describeError(err);
    } finally {
      p.loading = false;
    }
    invalidate('list', 'thread');
    queueMicrotask(() => queueMicrotask(fillViewport));
  }

  /** If the first pages do not fill the column, fetch the next one (once per completed load). */
  function fillViewport() {
    const sc = els.scroller;
    if (!page.nextCursor || page.loading || page.error || search.active() || sc.clientHeight === 0) return;
    if (sc.scrollHeight <= sc.clientHeight + 8) load({ more: true });
  }

  /** The first page again (after a reconnect, or for a conversation we do not have yet). */
  async function refresh() {
    const p = page;
    try {
      const res = await get(pageUrl(null));
      const oldest = take(res);
      if (p.pages <= 1) {
        p.nextCursor = res?.nextCursor ?? null;
        p.oldest = oldest;
      }
      p.loaded = true;
      p.error = null;
      everLoaded = true;
    } catch (err) {
      if (onAuthError(err)) return;
      console.warn('[Messages] could not refresh conversations:', describeError(err));
    }
    invalidate('list', 'thread');
    onRefreshed();
  }

  /** The agent chose another view: its first page (what the page already knows of it shows meanwhile). */
  function showView() {
    page = paging(views.current());
    els.scroller.scrollTop = 0;
    invalidate('list');
    load();
  }

  /** The conversations the list shows, in order. */
  function shown() {
    return listed(store.sortedConversations(), {
      belongs: views.belongs,
      found: search.active() ? search.ids() : null,
      page,
      activity: (c) => store.activity(c),
    });
  }

  function requestRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, REFRESH_DEBOUNCE_MS);
  }

  function createRow(id) {
    const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
    const name = h('span', { class: 'conversation-name' });
    const optedOut = h('span', { class: 'tag tag-muted', hidden: true }, 'Opted out');
    const owner = h('span', { class: 'tag tag-owner', hidden: true });
    const time = h('time', { class: 'conversation-time' });
    const preview = h('span', { class: 'conversation-preview' });
    const failed = h('span', { class: 'failed-mark', role: 'img', 'aria-label': 'Not delivered', hidden: true }, '!');
    const unread = h('span', { class: 'unread-badge', hidden: true });
    const button = h(
      'button',
      { type: 'button', class: 'conversation-button' },
      avatar,
      h(
        'span',
        { class: 'conversation-main' },
        h('span', { class: 'conversation-top' }, name, optedOut, owner, time),
        h('span', { class: 'conversation-bottom' }, failed, preview, unread),
      ),
    );
    const li = h('li', { class: 'conversation', dataset: { id } }, button);
    li._parts = { avatar, name, optedOut, owner, time, preview, failed, unread, button };
    rowEls.set(id, li);
    return li;
  }

  function updateRow(li, conv, words) {
    const p = li._parts;
    const active = conv.id === openId();
    const unread = active ? 0 : Math.max(0, conv.unreadCount || 0);
    const typing = typingNames(conv.id).length > 0;
    const name = fmt.contactLabel(conv);
    const preview = typing ? 'typing…' : fmt.messagePreview(conv.lastMessage, authorOf);
    const when = conv.lastMessage?.createdAt || conv.updatedAt;
    const last = conv.lastMessage;
    const failed = !typing && notDelivered(last);
    // Whose it is, outside Mine (where every one is ours).
    const who = page.view === 'mine' ? null : ownerOf(conv);
    const sig = [name, preview, when, unread, active, typing, conv.contact?.optedOut, failed, last?.errorMessage, who?.full, ...words].join('\u0001');
    if (li._sig === sig) return;
    li._sig = sig;
    p.avatar.textContent = fmt.initials(conv);
    p.avatar.dataset.tone = String(fmt.toneFor(conv.contact?.phone || conv.id));
    setMarked(p.name, name, words);
    p.name.title = conv.contact?.name ? fmt.formatPhone(conv.contact.phone) : '';
    p.optedOut.hidden = !conv.contact?.optedOut;
    p.owner.hidden = !who;
    p.owner.textContent = who?.short ?? '';
    p.owner.title = who ? `Assigned to ${who.full}` : '';
    p.time.textContent = fmt.formatListTime(when);
    if (when) p.time.dateTime = when;
    p.time.title = fmt.formatFull(when);
    setMarked(p.preview, preview, typing ? [] : words);
    p.preview.classList.toggle('is-typing', typing);
    p.failed.hidden = !failed;
    p.failed.title = failed ? `Not delivered${last.errorMessage ? `: ${last.errorMessage}` : ''}` : '';
    li.classList.toggle('has-failed', failed);
    p.unread.textContent = unread > 99 ? '99+' : String(unread);
    p.unread.hidden = unread === 0;
    p.unread.setAttribute('aria-label', `${unread} unread`);
    li.classList.toggle('active', active);
    li.classList.toggle('has-unread', unread > 0);
    if (active) p.button.setAttribute('aria-current', 'true');
    else p.button.removeAttribute('aria-current');
  }

  function render() {
    const searching = search.active();
    const convs = shown();
    const words = searching ? search.words() : [];
    const nodes = convs.map((c) => {
      const li = rowEls.get(c.id) || createRow(c.id);
      updateRow(li, c, words);
      return li;
    });
    reconcileChildren(els.list, nodes);
    const empty = page.loaded && !searching && convs.length === 0;
    els.empty.hidden = !empty;
    const [title, hint] = EMPTY[page.view] || EMPTY.open;
    els.emptyTitle.textContent = title;
    els.emptyHint.textContent = hint;
    const noMatch = searching && search.settled() && !search.error() && convs.length === 0;
    els.noMatch.hidden = !noMatch;
    if (noMatch) els.noMatchText.textContent = `No conversations in ${views.label()} match “${search.query()}”`;
    if (empty && page.view === 'open' && agentNumbers().length === 0) {
      els.emptyHint.textContent = 'No phone number is assigned to you yet. Ask an admin to add one.';
    }
    renderFooter();
  }

  function renderFooter() {
    if (search.active()) {
      const failed = search.error();
      els.status.textContent = search.loading() ? 'Searching…' : failed || '';
      els.status.classList.toggle('error', Boolean(failed));
      els.retry.hidden = true;
      els.more.hidden = !search.hasMore() || search.loading();
      return;
    }
    const { loading, loaded, error, nextCursor } = page;
    let status = '';
    if (loading) status = loaded ? 'Loading more…' : 'Loading conversations…';
    else if (error) status = error;
    els.status.textContent = status;
    els.status.classList.toggle('error', Boolean(error) && !loading);
    els.retry.hidden = !error || loading;
    els.more.hidden = !nextCursor || loading || Boolean(error);
  }

  /** The next page of whatever the list shows: the search's results, or the conversations. */
  function loadMore() {
    if (search.active()) search.more();
    else load({ more: true });
  }

  els.list.addEventListener('click', (e) => {
    const li = e.target.closest('.conversation');
    if (li && els.list.contains(li)) select(li.dataset.id);
  });
  els.scroller.addEventListener(
    'scroll',
    () => {
      const sc = els.scroller;
      if (sc.scrollTop + sc.clientHeight > sc.scrollHeight - 200) loadMore();
    },
    { passive: true },
  );
  els.more.addEventListener('click', loadMore);
  els.retry.addEventListener('click', () => load({ more: page.loaded }));

  return {
    load,
    refresh,
    requestRefresh,
    showView,
    loaded: () => everLoaded,
    /** A conversation was created here: the list is no longer "not loaded yet". */
    markLoaded() {
      everLoaded = true;
      page.loaded = true;
    },
    /** The ids of the conversations listed now, in order. */
    shownIds: () => shown().map((c) => c.id),
    focusRow(id) {
      rowEls.get(id)?._parts.button.focus({ preventScroll: false });
    },
    render,
    updateTitle() {
      const n = store.totalUnread();
      document.title = n > 0 ? `(${n}) Messages · smsdesk` : 'Messages · smsdesk';
    },
  };
}
