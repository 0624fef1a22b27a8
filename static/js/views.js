// The team inbox's views without the DOM (tested in views.test.mjs): Mine, Unassigned, Open, Snoozed
// and Closed, what each asks GET /api/crm/sms/conversations for, and whether a conversation the page
// holds belongs to one, so that a conversation that changes (closed, assigned, reopened by an inbound
// SMS, a snooze run out) leaves or enters the list the agent looks at without asking the server.

/** In the order the page shows them; `count` is the field of GET /api/crm/sms/conversations/counts. */
export const VIEWS = Object.freeze([
  { id: 'mine', label: 'Mine', status: 'open', assignee: 'me', count: 'mine' },
  { id: 'unassigned', label: 'Unassigned', status: 'open', assignee: 'none', count: 'unassigned' },
  { id: 'open', label: 'Open', status: 'open', assignee: null, count: 'open' },
  { id: 'snoozed', label: 'Snoozed', status: 'snoozed', assignee: null, count: 'snoozed' },
  { id: 'closed', label: 'Closed', status: 'closed', assignee: null, count: 'closed' },
]);

/** Where a page opens: every new conversation is open, so nothing that arrives is out of sight. */
export const DEFAULT_VIEW = 'open';

export function viewById(id) {
  return VIEWS.find((v) => v.id === id) || VIEWS.find((v) => v.id === DEFAULT_VIEW);
}

/** The query parameters of a view (to add to `limit`, `cursor` and `q`). */
export function viewParams(id) {
  const view = viewById(id);
  const params = { status: view.status };
  if (view.assignee) params.assignee = view.assignee;
  return params;
}

/** A conversation's status; one from a server without the team inbox is open. */
export function statusOf(conv) {
  return conv?.status === 'snoozed' || conv?.status === 'closed' ? conv.status : 'open';
}

/** The assignee's id as a string, or null. */
export function assigneeId(conv) {
  const id = conv?.assignee?.id;
  return id == null ? null : String(id);
}

/** Whether `conv` is in view `id` for the agent `meId`, as the server's filters decide it. */
export function belongs(conv, id, meId) {
  const view = viewById(id);
  if (statusOf(conv) !== view.status) return false;
  const who = assigneeId(conv);
  if (view.assignee === 'me') return who != null && who === String(meId);
  if (view.assignee === 'none') return who == null;
  return true;
}

/** The counts answer as whole numbers per view id; a missing or odd field is null (shown as nothing). */
export function countsByView(answer) {
  const out = {};
  for (const view of VIEWS) {
    const n = answer?.[view.count];
    out[view.id] = Number.isInteger(n) && n >= 0 ? n : null;
  }
  return out;
}

/** Pushed changes within this long of the first one are read with it, in one request. */
export const COUNTS_WAIT_MS = 400;

/**
 * The counts as the page keeps them: read now (`load`), or soon after something changed (`request`,
 * so a burst of events, however long it lasts, is one request per COUNTS_WAIT_MS, never none); one
 * request at a time, and one more after it when asked meanwhile. A failed read keeps what is shown.
 * `fetchCounts()` → the answer of GET …/counts; `onChange(counts)`; `onError(err)`.
 */
export function createCounts({ fetchCounts, onChange, onError, setTimer = setTimeout }) {
  let counts = countsByView(null);
  let timer = null;
  let inflight = false;
  let again = false;

  async function load() {
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      do {
        again = false;
        try {
          counts = countsByView(await fetchCounts());
          onChange(counts);
        } catch (err) {
          if (onError(err)) return;
        }
      } while (again);
    } finally {
      inflight = false;
    }
  }

  return {
    load,
    request() {
      if (timer) return;
      timer = setTimer(() => {
        timer = null;
        load();
      }, COUNTS_WAIT_MS);
    },
    counts: () => ({ ...counts }),
  };
}

/** A count as a tab shows it. */
export function countLabel(n) {
  if (n == null) return '';
  return n > 999 ? '999+' : String(n);
}

/**
 * What the list shows, from the conversations the page holds (`sorted`, newest activity first): those
 * that `belong` to the view; while a search is on only those it `found` (ids); otherwise none older
 * than the view's last page (`page`: {loaded, nextCursor, oldest}, by `activity`), which wait for the
 * page that holds them so the list has no gaps.
 */
export function listed(sorted, { belongs: inView, found = null, page, activity }) {
  const convs = sorted.filter(inView);
  if (found) {
    const ids = new Set(found);
    return convs.filter((c) => ids.has(c.id));
  }
  if (page.loaded && page.nextCursor) return convs.filter((c) => activity(c) >= page.oldest);
  return convs;
}

/**
 * The conversation to open when `id` leaves the list the agent works through (`ids`, in the order
 * shown, still holding `id`): the one below it, else the one above, else none.
 */
export function nextAfter(ids, id) {
  const at = ids.indexOf(id);
  if (at === -1) return ids[0] ?? null;
  return ids[at + 1] ?? ids[at - 1] ?? null;
}
