// What the server tells us, into the Store: messages (pushed live or caught up by sync), status changes,
// conversation updates; and reading: unread counts go up for new inbound messages and back to zero (on the
// server too) while the agent looks at the conversation.

import { describeError } from './api.js';
import { sameMessage } from './store.js';

/**
 * init({store, post, invalidate, openId, isVisible, clearTyping, requestRefresh, onAuthError})
 * → {ingest, onStatus, onConversation, markRead, maybeMarkRead}
 */
export function init({ store, post, invalidate, openId, isVisible, clearTyping, requestRefresh, onAuthError }) {
  const readInflight = new Map(); // conversationId -> {again}

  const isViewing = (id) => openId() === id && isVisible();

  /** A message from the socket (`live`), a sync page, or our own send's answer. */
  function ingest(raw, { live = false } = {}) {
    if (!raw || raw.conversationId == null) return;
    const convId = String(raw.conversationId);
    const conv = store.conversations.get(convId);
    const alreadyLast = conv ? sameMessage(conv.lastMessage, raw) : false;
    const r = store.upsertMessage(raw);
    if (!r || !r.changed) return;
    const m = r.msg;
    if (!conv) {
      requestRefresh();
    } else if (live && r.isNew && !alreadyLast && m.direction === 'inbound') {
      if (isViewing(convId)) {
        markRead(convId);
      } else {
        conv.unreadCount = (conv.unreadCount || 0) + 1;
      }
    }
    if (live && (m.direction === 'outbound' || m.direction === 'note') && m.agentId != null) clearTyping(convId, String(m.agentId));
    invalidate('list', ...(convId === openId() ? ['thread'] : []));
  }

  function onStatus(update) {
    const r = store.applyStatus(update);
    if (!r || !r.changed) return;
    invalidate('list', ...(r.msg.conversationId === openId() ? ['thread'] : []));
  }

  function onConversation(raw) {
    const conv = store.upsertConversation(raw);
    if (!conv) return;
    invalidate('list', ...(conv.id === openId() ? ['thread'] : []));
    maybeMarkRead();
  }

  async function markRead(convId) {
    const conv = store.conversations.get(convId);
    if (!conv) return;
    const inflight = readInflight.get(convId);
    if (inflight) {
      inflight.again = true;
      return;
    }
    const rec = { again: false };
    readInflight.set(convId, rec);
    conv.unreadCount = 0;
    invalidate('list');
    try {
      await post(`/api/crm/sms/conversations/${encodeURIComponent(convId)}/read`);
    } catch (err) {
      if (onAuthError(err)) return;
      console.warn('[Messages] could not mark as read:', describeError(err));
    } finally {
      readInflight.delete(convId);
    }
    if (rec.again && isViewing(convId) && (store.conversations.get(convId)?.unreadCount || 0) > 0) markRead(convId);
  }

  /** The open conversation, if the agent can see it, has nothing unread. */
  function maybeMarkRead() {
    const id = openId();
    if (!id || !isViewing(id)) return;
    const conv = store.conversations.get(id);
    if (conv && (conv.unreadCount || 0) > 0) markRead(id);
  }

  return { ingest, onStatus, onConversation, markRead, maybeMarkRead };
}
