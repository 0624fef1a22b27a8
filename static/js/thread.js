// The open conversation (right column, or the whole screen on phones): which one is open (also in the
// URL, `#c=<id>`, with Back), its messages page by page (older ones as the agent scrolls up), its
// bubbles, and the scroll position: pinned to the newest message unless the agent scrolled away, and
// never moved under the agent's eyes when older messages load.

import { ApiError, describeError } from './api.js';
import { reconcileChildren, h } from './dom.js';
import { msgTime } from './store.js';
import { createBubble, updateBubble } from './bubble.js';
import * as fmt from './format.js';

const MESSAGE_PAGE = 50;
const PIN_THRESHOLD_PX = 48;
const LOAD_OLDER_THRESHOLD_PX = 200;

const $ = (sel) => document.querySelector(sel);

/**
 * init({store, get, invalidate, composer, markRead, retry, wasRetried, focusRow, authorsFor, onAuthError})
 * → {openId, select, close, applyLocation, idFromHash, followNewest, render}
 * `authorsFor(conv, messages)` → (message) → who wrote it, as its bubble says (null: nothing).
 */
export function init({ store, get, invalidate, composer, markRead, retry, wasRetried, focusRow, authorsFor, onAuthError }) {
  const els = {
    app: $('#app'),
    placeholder: $('#thread-placeholder'),
    view: $('#thread-view'),
    back: $('#back-button'),
    avatar: $('#thread-avatar'),
    title: $('#thread-title'),
    subtitle: $('#thread-subtitle'),
    optedOut: $('#opted-out-banner'),
    scroller: $('#thread-scroller'),
    topText: $('#thread-top-text'),
    loadOlder: $('#load-older-button'),
    retry: $('#thread-retry-button'),
    thread: $('#thread'),
    empty: $('#thread-empty'),
    jump: $('#jump-button'),
  };
  let openId = null;
  const threads = new Map(); // conversationId -> paging state
  let pinned = true;
  let forceBottom = false;
  let newestKey = null;
  const bubbleEls = new Map(); // message key -> .bubble element (open conversation only)
  const dayEls = new Map(); // day key -> separator element

  function paging(id) {
    let t = threads.get(id);
    if (!t) {
      t = { loaded: false, loading: false, loadingOlder: false, error: null, nextCursor: null, complete: false, oldest: Infinity };
      threads.set(id, t);
    }
    return t;
  }

  function clearBubbles() {
    bubbleEls.clear();
    dayEls.clear();
    els.thread.replaceChildren();
  }

  function idFromHash() {
    const m = /^#c=(.+)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function open(id) {
    const conv = store.conversations.get(id);
    if (!conv) return;
    if (openId !== id) {
      composer.leave(openId);
      openId = id;
      clearBubbles();
      pinned = true;
      forceBottom = true;
      newestKey = null;
      els.jump.hidden = true;
      composer.enter(id);
    }
    els.app.dataset.pane = 'thread';
    els.placeholder.hidden = true;
    els.view.hidden = false;
    if ((conv.unreadCount || 0) > 0) markRead(id);
    const t = paging(id);
    if (!t.loaded && !t.loading) load(id);
    invalidate('list', 'thread', 'typing');
    if (window.matchMedia('(min-width: 768px)').matches) composer.focus();
  }

  function close() {
    if (!openId) {
      els.app.dataset.pane = 'list';
      return;
    }
    composer.leave(openId);
    const prev = openId;
    openId = null;
    clearBubbles();
    els.app.dataset.pane = 'list';
    els.view.hidden = true;
    els.placeholder.hidden = false;
    invalidate('list', 'thread', 'typing');
    focusRow(prev);
  }

  /** The agent picked a conversation in the list (or a new one): open it, with a history entry. */
  function select(id) {
    const url = `${location.pathname}#c=${encodeURIComponent(id)}`;
    if (openId && openId !== id) {
      history.replaceState({ c: id, fromList: Boolean(history.state?.fromList) }, '', url);
    } else if (!openId) {
      history.pushState({ c: id, fromList: true }, '', url);
    }
    open(id);
  }

  /** Open what the URL names (after load, or Back/Forward). */
  function applyLocation() {
    const id = idFromHash();
    if (id && store.conversations.has(id)) open(id);
    else close();
  }

  function back() {
    if (history.state?.fromList) {
      history.back();
    } else {
      history.replaceState(null, '', location.pathname);
      close();
    }
  }

  async function load(id, { older = false } = {}) {
    const t = paging(id);
    if (older) {
      if (!t.loaded || t.loadingOlder || t.loading || !t.nextCursor || t.error) return;
      t.loadingOlder = true;
    } else {
      if (t.loading) return;
      t.loading = true;
    }
    t.error = null;
    if (id === openId) renderTop(t, null);
    try {
      const q = new URLSearchParams({ limit: String(MESSAGE_PAGE) });
      if (older) q.set('cursor', t.nextCursor);
      const res = await get(`/api/crm/sms/conversations/${encodeURIComponent(id)}/messages?${q}`);
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
      if (onAuthError(err)) return;
      t.error = err instanceof ApiError && err.status === 404 ? 'This conversation is no longer available.' : describeError(err);
    } finally {
      t.loading = false;
      t.loadingOlder = false;
    }
    if (id === openId) {
      render();
      invalidate('list');
      // Short thread: keep loading older pages until the view can scroll (or there is no more).
      const sc = els.scroller;
      if (t.nextCursor && !t.error && sc.clientHeight > 0 && sc.scrollTop < LOAD_OLDER_THRESHOLD_PX) load(id, { older: true });
    }
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

  function renderHeader(conv) {
    els.title.textContent = fmt.contactLabel(conv);
    const parts = [];
    if (conv.contact?.name) parts.push(fmt.formatPhone(conv.contact.phone));
    if (conv.ourNumber) parts.push(`via ${fmt.formatPhone(conv.ourNumber)}`);
    els.subtitle.textContent = parts.join(' · ');
    els.avatar.textContent = fmt.initials(conv);
    els.avatar.dataset.tone = String(fmt.toneFor(conv.contact?.phone || conv.id));
    els.optedOut.hidden = !conv.contact?.optedOut;
    composer.setConversation(conv);
  }

  function renderTop(t, count) {
    let text = '';
    if (t.loading && !t.loaded) text = 'Loading messages…';
    else if (t.loadingOlder) text = 'Loading earlier messages…';
    else if (t.error) text = t.error;
    else if (t.loaded && t.complete && count) text = 'Beginning of conversation';
    els.topText.textContent = text;
    els.topText.classList.toggle('error', Boolean(t.error) && !t.loading && !t.loadingOlder);
    els.retry.hidden = !t.error || t.loading || t.loadingOlder;
    els.loadOlder.hidden = !t.loaded || !t.nextCursor || t.loadingOlder || Boolean(t.error);
  }

  function render() {
    if (!openId) {
      els.view.hidden = true;
      els.placeholder.hidden = false;
      return;
    }
    const conv = store.conversations.get(openId);
    if (!conv) return;
    els.view.hidden = false;
    els.placeholder.hidden = true;
    renderHeader(conv);

    const t = paging(openId);
    let messages = store.messagesFor(openId, t);
    if (!t.loaded) messages = messages.filter((m) => m._local);

    const sc = els.scroller;
    const wasPinned = pinned || forceBottom;
    // Remember the first visible bubble so that changes above it do not move what the agent reads.
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
    const authorOf = authorsFor(conv, messages);
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
      updateBubble(el, m, key, { retried: m.id != null && wasRetried(m.id), author: authorOf(m) });
      nodes.push(el);
      seen.add(key);
    }
    for (const key of Array.from(bubbleEls.keys())) if (!seen.has(key)) bubbleEls.delete(key);
    reconcileChildren(els.thread, nodes);

    els.empty.hidden = !(t.loaded && !t.error && messages.length === 0);
    renderTop(t, messages.length);

    if (wasPinned) {
      sc.scrollTop = sc.scrollHeight;
      pinned = true;
      forceBottom = false;
    } else if (anchor && anchor.isConnected) {
      const delta = anchor.getBoundingClientRect().top - anchorTop;
      if (delta) sc.scrollTop += delta;
    }

    const newest = messages.length ? messages[messages.length - 1] : null;
    const key = newest?._key ?? null;
    if (newestKey && key && key !== newestKey && !pinned) els.jump.hidden = false;
    newestKey = key;
  }

  els.back.addEventListener('click', back);
  window.addEventListener('popstate', applyLocation);
  els.scroller.addEventListener(
    'scroll',
    () => {
      const sc = els.scroller;
      pinned = sc.scrollHeight - sc.scrollTop - sc.clientHeight < PIN_THRESHOLD_PX;
      if (pinned) els.jump.hidden = true;
      if (openId && sc.scrollTop < LOAD_OLDER_THRESHOLD_PX) load(openId, { older: true });
    },
    { passive: true },
  );
  els.loadOlder.addEventListener('click', () => openId && load(openId, { older: true }));
  els.retry.addEventListener('click', () => {
    if (!openId) return;
    const t = paging(openId);
    t.error = null;
    load(openId, { older: t.loaded });
  });
  els.jump.addEventListener('click', () => {
    els.scroller.scrollTop = els.scroller.scrollHeight;
    pinned = true;
    els.jump.hidden = true;
  });
  if ('ResizeObserver' in window) {
    const ro = new ResizeObserver(() => {
      if (pinned && openId) els.scroller.scrollTop = els.scroller.scrollHeight;
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
    retry(m);
  });

  return {
    openId: () => openId,
    select,
    /** Back to no conversation open (the list, on phones), as the Back button does. */
    close() {
      if (openId) back();
    },
    applyLocation,
    idFromHash,
    /** Our own new message: scroll to it on the next render, wherever the agent was. */
    followNewest() {
      forceBottom = true;
    },
    render,
  };
}
