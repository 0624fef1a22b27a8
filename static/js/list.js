// The conversation list (left column): pages of conversations, newest activity first, more as the agent
// scrolls; one row per conversation with its avatar, name, last message (or "typing…", and a red mark
// when it is ours and was not delivered), time, opt-out tag and unread count; the unread total in the
// tab's title. While a search is on (search.js), only its
// results, with the matching words marked.

import { describeError } from './api.js';
import { h, reconcileChildren } from './dom.js';
import * as fmt from './format.js';
import { setMarked } from './search.js';
import { notDelivered } from './store.js';

const CONVERSATION_PAGE = 50;
const REFRESH_DEBOUNCE_MS = 300;

const $ = (sel) => document.querySelector(sel);

/**
 * init({store, get, invalidate, openId, typingNames, agentNumbers, select, search, onLoaded, onRefreshed, onAuthError})
 * → {load, refresh, requestRefresh, loaded, markLoaded, focusRow, render, updateTitle}
 * `onLoaded(syncCursor)` runs after every page that loaded (with where `sync` may start); `onRefreshed()` after a refresh of the first page.
 */
export function init({ store, get, invalidate, openId, typingNames, agentNumbers, select, search, onLoaded, onRefreshed, onAuthError }) {
  const els = {
    scroller: $('#conversation-scroller'),
    list: $('#conversation-list'),
    empty: $('#conversation-empty'),
    emptyHint: $('#conversation-empty-hint'),
    status: $('#conversation-status'),
    retry: $('#conversation-retry'),
    more: $('#load-more-conversations'),
    noMatch: $('#search-empty'),
    noMatchText: $('#search-empty-text'),
  };
  let loaded = false;
  let loading = false;
  let error = null;
  let nextCursor = null;
  let pages = 0;
  let refreshTimer = null;
  const rowEls = new Map();

  async function load({ more = false } = {}) {
    if (loading) return;
    if (more && !nextCursor) return;
    loading = true;
    error = null;
    renderFooter();
    try {
      const q = new URLSearchParams({ limit: String(CONVERSATION_PAGE) });
      if (more) q.set('cursor', nextCursor);
      const res = await get(`/api/crm/sms/conversations?${q}`);
      for (const c of res?.conversations || []) store.upsertConversation(c);
      nextCursor = res?.nextCursor ?? null;
      pages += 1;
      loaded = true;
      onLoaded(res?.syncCursor);
    } catch (err) {
      if (onAuthError(err)) return;
      error = describeError(err);
    } finally {
      loading = false;
    }
    invalidate('list', 'thread');
    queueMicrotask(() => queueMicrotask(fillViewport));
  }

  /** If the first pages do not fill the column, fetch the next one (once per completed load). */
  function fillViewport() {
    const sc = els.scroller;
    if (!nextCursor || loading || error || search.active() || sc.clientHeight === 0) return;
    if (sc.scrollHeight <= sc.clientHeight + 8) load({ more: true });
  }

  /** The first page again (after a reconnect, or for a conversation we do not have yet). */
  async function refresh() {
    try {
      const res = await get(`/api/crm/sms/conversations?limit=${CONVERSATION_PAGE}`);
      for (const c of res?.conversations || []) store.upsertConversation(c);
      if (pages <= 1) nextCursor = res?.nextCursor ?? null;
      loaded = true;
      error = null;
    } catch (err) {
      if (onAuthError(err)) return;
      console.warn('[Messages] could not refresh conversations:', describeError(err));
    }
    invalidate('list', 'thread');
    onRefreshed();
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
        h('span', { class: 'conversation-top' }, name, optedOut, time),
        h('span', { class: 'conversation-bottom' }, failed, preview, unread),
      ),
    );
    const li = h('li', { class: 'conversation', dataset: { id } }, button);
    li._parts = { avatar, name, optedOut, time, preview, failed, unread, button };
    rowEls.set(id, li);
    return li;
  }

  function updateRow(li, conv, words) {
    const p = li._parts;
    const active = conv.id === openId();
    const unread = active ? 0 : Math.max(0, conv.unreadCount || 0);
    const typing = typingNames(conv.id).length > 0;
    const name = fmt.contactLabel(conv);
    const preview = typing ? 'typing…' : fmt.messagePreview(conv.lastMessage);
    const when = conv.lastMessage?.createdAt || conv.updatedAt;
    const last = conv.lastMessage;
    const failed = !typing && notDelivered(last);
    const sig = [name, preview, when, unread, active, typing, conv.contact?.optedOut, failed, last?.errorMessage, ...words].join('\u0001');
    if (li._sig === sig) return;
    li._sig = sig;
    p.avatar.textContent = fmt.initials(conv);
    p.avatar.dataset.tone = String(fmt.toneFor(conv.contact?.phone || conv.id));
    setMarked(p.name, name, words);
    p.name.title = conv.contact?.name ? fmt.formatPhone(conv.contact.phone) : '';
    p.optedOut.hidden = !conv.contact?.optedOut;
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
    let convs = store.sortedConversations();
    if (searching) {
      const found = new Set(search.ids());
      convs = convs.filter((c) => found.has(c.id));
    }
    const words = searching ? search.words() : [];
    const nodes = convs.map((c) => {
      const li = rowEls.get(c.id) || createRow(c.id);
      updateRow(li, c, words);
      return li;
    });
    reconcileChildren(els.list, nodes);
    const empty = loaded && !searching && convs.length === 0;
    els.empty.hidden = !empty;
    const noMatch = searching && search.settled() && !search.error() && convs.length === 0;
    els.noMatch.hidden = !noMatch;
    if (noMatch) els.noMatchText.textContent = `No conversations match “${search.query()}”`;
    if (empty && agentNumbers().length === 0) {
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
  els.retry.addEventListener('click', () => load({ more: loaded }));

  return {
    load,
    refresh,
    requestRefresh,
    loaded: () => loaded,
    /** A conversation was created here: the list is no longer "not loaded yet". */
    markLoaded() {
      loaded = true;
    },
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
