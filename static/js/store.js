// In-memory state of the inbox: conversations and messages, merged by id (and by clientId for our own
// optimistic bubbles). Pure logic, no DOM, so it can be tested with node.

/** docs/api.md "Statuses"; the same table as Rust's `Status::rank` (both tested against tests/fixtures/status_precedence.json). */
export const STATUS_RANK = {
  pending: 0,
  accepted: 1,
  scheduled: 1,
  queued: 1,
  sending: 2,
  sent: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
  canceled: 4,
  read: 5,
  received: 4,
};

export function statusRank(status) {
  return STATUS_RANK[status] ?? 0;
}

/** May a status reported later replace the one we hold? Rust's `Status::may_replace`, stated the same way. */
export function mayReplace(next, current) {
  return (
    statusRank(next) > statusRank(current) ||
    (next === 'delivered' && (current === 'undelivered' || current === 'failed'))
  );
}

/** What the page shows for a status: pending (spinner), sent (✓), delivered (✓✓), failed (!), received. */
export function statusGroup(status) {
  switch (status) {
    case 'pending':
    case 'queued':
    case 'sending':
    case 'accepted':
    case 'scheduled':
      return 'pending';
    case 'sent':
      return 'sent';
    case 'delivered':
    case 'read':
      return 'delivered';
    case 'failed':
    case 'undelivered':
      return 'failed';
    case 'canceled':
      return 'canceled';
    case 'received':
    case 'receiving':
      return 'received';
    default:
      return 'pending';
  }
}

/** Ours, and Twilio will not deliver it: the thread shows it red with Retry, the list marks its conversation. */
export function notDelivered(m) {
  return m?.direction === 'outbound' && statusGroup(m.status) === 'failed';
}

/** The key a message is rendered and stored under: its clientId when it has one, else its id. */
export function messageKey(m) {
  return m.clientId ? `c:${m.clientId}` : `i:${m.id}`;
}

export function msgTime(m) {
  const t = Date.parse(m?.createdAt);
  return Number.isNaN(t) ? 0 : t;
}

function seqOf(m) {
  const n = typeof m?.seq === 'string' ? Number(m.seq) : m?.seq;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

export function sameMessage(a, b) {
  if (!a || !b) return false;
  if (a.id != null && b.id != null && String(a.id) === String(b.id)) return true;
  return Boolean(a.clientId && b.clientId && a.clientId === b.clientId);
}

/** Oldest first; our not-yet-stored bubbles after stored messages of the same instant. */
export function compareMessages(a, b) {
  const dt = msgTime(a) - msgTime(b);
  if (dt) return dt;
  const sa = seqOf(a) ?? Infinity;
  const sb = seqOf(b) ?? Infinity;
  if (sa !== sb) return sa < sb ? -1 : 1;
  const ka = messageKey(a);
  const kb = messageKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Should `incoming` replace what we hold? Statuses never go backwards. */
export function shouldApply(existing, incoming) {
  if (!existing) return true;
  if (incoming._local) return Boolean(existing._local);
  if (existing._local) return true;
  const a = seqOf(existing);
  const b = seqOf(incoming);
  if (a != null && b != null) return b >= a;
  // The same status again is no status change: its other fields (error text, sid) still merge.
  if (incoming.status == null || existing.status == null || incoming.status === existing.status) return true;
  return mayReplace(incoming.status, existing.status);
}

function normalizeMessage(m) {
  const out = { ...m };
  if (out.id != null) out.id = String(out.id);
  if (out.conversationId != null) out.conversationId = String(out.conversationId);
  const s = seqOf(out);
  if (s != null) out.seq = s;
  if (!Array.isArray(out.media)) out.media = [];
  return out;
}

const EARLY_STATUS_LIMIT = 200;

export class Store {
  constructor() {
    this.conversations = new Map(); // id -> Conversation
    this.messages = new Map(); // key -> Message
    this.byConversation = new Map(); // conversationId -> Set<key>
    this.idToKey = new Map(); // message id -> key
    this.earlyStatus = new Map(); // message id -> a message:status that came before its message
    this.maxSeq = 0;
  }

  getMessage(key) {
    return this.messages.get(key);
  }

  /**
   * Insert or merge a message. Returns {key, msg, isNew, changed} (changed false when the update was
   * stale and ignored), or null for garbage.
   */
  upsertMessage(raw) {
    if (!raw || (raw.id == null && !raw.clientId) || raw.conversationId == null) return null;
    const m = normalizeMessage(raw);
    let key = messageKey(m);
    if (m.id != null && this.idToKey.has(m.id)) key = this.idToKey.get(m.id);
    const existing = this.messages.get(key);
    if (existing && !shouldApply(existing, m)) {
      return { key, msg: existing, isNew: false, changed: false };
    }
    const msg = existing ? { ...existing, ...m } : m;
    msg._key = key;
    if (!m._local) {
      delete msg._local;
      delete msg._localError;
    }
    this.messages.set(key, msg);
    if (msg.id != null) this.idToKey.set(msg.id, key);
    let set = this.byConversation.get(msg.conversationId);
    if (!set) {
      set = new Set();
      this.byConversation.set(msg.conversationId, set);
    }
    set.add(key);
    const s = seqOf(msg);
    if (s != null && s > this.maxSeq) this.maxSeq = s;
    this.touchConversation(msg);
    const early = msg.id != null && this.earlyStatus.get(msg.id);
    if (early) {
      this.earlyStatus.delete(msg.id);
      this.applyStatus(early);
    }
    return { key, msg: this.messages.get(key), isNew: !existing, changed: true };
  }

  /**
   * Apply a `message:status` payload to the message with that id. Returns the result, or null when
   * the message is not here yet: its `message:new` or the send's answer is still on the way, so the
   * status is kept (a bounded number of them) and applied when the message arrives.
   */
  applyStatus(update) {
    if (!update || update.id == null) return null;
    const id = String(update.id);
    const key = this.idToKey.get(id);
    if (!key) {
      this.earlyStatus.set(id, update);
      if (this.earlyStatus.size > EARLY_STATUS_LIMIT) this.earlyStatus.delete(this.earlyStatus.keys().next().value);
      return null;
    }
    const existing = this.messages.get(key);
    const patch = { ...update, id };
    patch.conversationId = existing.conversationId;
    return this.upsertMessage({ ...existing, ...patch, _local: undefined });
  }

  removeMessage(key) {
    const msg = this.messages.get(key);
    if (!msg) return;
    this.messages.delete(key);
    if (msg.id != null) this.idToKey.delete(msg.id);
    this.byConversation.get(msg.conversationId)?.delete(key);
    const conv = this.conversations.get(msg.conversationId);
    if (conv && sameMessage(conv.lastMessage, msg)) {
      let latest = null;
      for (const k of this.byConversation.get(msg.conversationId) || []) {
        const other = this.messages.get(k);
        if (other && (!latest || compareMessages(other, latest) > 0)) latest = other;
      }
      conv.lastMessage = latest;
    }
  }

  /** Keep the conversation's lastMessage pointing at the newest message we know. */
  touchConversation(msg) {
    const conv = this.conversations.get(msg.conversationId);
    if (!conv) return false;
    const last = conv.lastMessage;
    if (!last || sameMessage(last, msg) || compareMessages(msg, last) >= 0) conv.lastMessage = msg;
    return true;
  }

  upsertConversation(raw) {
    if (!raw || raw.id == null) return null;
    const id = String(raw.id);
    const existing = this.conversations.get(id);
    const conv = { ...(existing || {}), ...raw, id };
    conv.contact = { ...(existing?.contact || {}), ...(raw.contact || {}) };
    const prevLast = existing?.lastMessage || null;
    conv.lastMessage = prevLast;
    this.conversations.set(id, conv);
    if (raw.lastMessage) {
      const incoming = { ...raw.lastMessage, conversationId: raw.lastMessage.conversationId ?? id };
      const r = this.upsertMessage(incoming);
      if (!r && (!prevLast || compareMessages(incoming, prevLast) >= 0)) conv.lastMessage = incoming;
    }
    if (typeof conv.unreadCount !== 'number') conv.unreadCount = Number(conv.unreadCount) || 0;
    return conv;
  }

  /** Newest activity: the last message's time, else the conversation's updatedAt. */
  activity(conv) {
    const t = conv.lastMessage ? msgTime(conv.lastMessage) : 0;
    if (t) return t;
    const u = Date.parse(conv.updatedAt);
    return Number.isNaN(u) ? 0 : u;
  }

  sortedConversations() {
    return Array.from(this.conversations.values()).sort((a, b) => {
      const d = this.activity(b) - this.activity(a);
      if (d) return d;
      return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
    });
  }

  /**
   * Messages of a conversation in display order (oldest first), limited to the contiguous range the
   * thread has loaded (`thread.oldest` ms; everything when `thread.complete`), plus local bubbles.
   */
  messagesFor(conversationId, thread) {
    const out = [];
    for (const key of this.byConversation.get(String(conversationId)) || []) {
      const m = this.messages.get(key);
      if (!m) continue;
      if (m._local || !thread || thread.complete || msgTime(m) >= thread.oldest) out.push(m);
    }
    return out.sort(compareMessages);
  }

  /** Time of the newest message of a conversation (ms), 0 when none. */
  latestTime(conversationId) {
    let t = 0;
    for (const key of this.byConversation.get(String(conversationId)) || []) {
      const m = this.messages.get(key);
      if (m) t = Math.max(t, msgTime(m));
    }
    return t;
  }

  totalUnread() {
    let n = 0;
    for (const c of this.conversations.values()) n += c.unreadCount > 0 ? c.unreadCount : 0;
    return n;
  }
}
