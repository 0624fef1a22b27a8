// Catching up: on every (re)connect the page asks GET /sync for every change after its cursor (the highest
// `seq` it has seen), page by page, so nothing that happened while it was offline is missed. The cursor
// starts at the newest `seq` of the first conversation page: everything changed after that snapshot has a
// higher `seq`. Each page also has the conversations whose own state (name, opt-out, unread count,
// status, snooze, assignee) changed since, so a page that missed `conversation:updated` catches up too.

import { describeError, isTransient } from './api.js';

const SYNC_LIMIT = 500;
const MAX_ATTEMPTS = 4;

function asSeq(v) {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/**
 * The cursor after a sync page: the server's `cursor`, or (when it sent none we can read) the highest
 * `seq` among the page's messages; never lower than `current`.
 */
export function nextCursor(current, cursor, messages) {
  let next = asSeq(cursor);
  if (next == null) {
    next = current;
    for (const m of messages) {
      const s = asSeq(m?.seq);
      if (s != null && s > next) next = s;
    }
  }
  return Math.max(current, next);
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * init({get, ingest, ingestConversation, onAuthError, isConnected, onDone, sleep, limit}) → {start, run, cursor}
 * `ingest(message)` takes each message, `ingestConversation(conversation)` each conversation; `onDone()`
 * runs after a sync that reached the end.
 */
export function init({
  get,
  ingest,
  ingestConversation = () => {},
  onAuthError,
  isConnected,
  onDone = () => {},
  sleep = wait,
  limit = SYNC_LIMIT,
}) {
  let cursor = 0;
  let ready = false;
  let running = false;
  let again = false;

  /** Fetch pages from `cursor` until there is no more. False when it had to stop early. */
  async function catchUp() {
    let attempt = 0;
    for (;;) {
      let res;
      try {
        res = await get(`/api/crm/sms/sync?since=${encodeURIComponent(cursor)}&limit=${limit}`);
      } catch (err) {
        if (onAuthError(err)) return false;
        if (isTransient(err) && attempt < MAX_ATTEMPTS && isConnected()) {
          await sleep(1000 * 2 ** attempt);
          attempt += 1;
          continue;
        }
        console.warn('[Messages] sync failed:', describeError(err));
        return false;
      }
      attempt = 0;
      const messages = Array.isArray(res?.messages) ? res.messages : [];
      for (const c of Array.isArray(res?.conversations) ? res.conversations : []) ingestConversation(c);
      for (const m of messages) ingest(m);
      const before = cursor;
      cursor = nextCursor(cursor, res?.cursor, messages);
      // A page that moves nothing forward would be asked for again and again.
      if (!res?.hasMore || messages.length === 0 || cursor === before) return true;
    }
  }

  return {
    /** Begin from `seq` (the first conversation page's `syncCursor`); later calls change nothing. */
    start(seq) {
      if (ready) return;
      cursor = Math.max(0, asSeq(seq) ?? 0);
      ready = true;
    },

    /** Catch up now; a call while a sync runs makes it go round once more when it is done. */
    async run() {
      if (!ready) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      let done;
      try {
        do {
          again = false;
          done = await catchUp();
        } while (done && again);
      } finally {
        running = false;
      }
      if (done) onDone();
    },

    cursor: () => cursor,
  };
}
