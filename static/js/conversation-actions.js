// The open conversation's header actions (the team inbox): who it is assigned to (a menu of the
// number's agents, "Assign to me", "Unassign"), Close or Reopen, and Snooze (1 hour, tomorrow 9:00,
// next Monday 9:00, or a chosen time), with a line saying when a snooze ends. Each is a PATCH of the
// conversation; the answer is merged at once and the server pushes it to every agent of the number.
// When the agent closes or snoozes the conversation they are in and it leaves the view, the next one
// of the view opens. `e` closes the open conversation when no field has the focus.

import { describeError } from './api.js';
import { h } from './dom.js';
import * as fmt from './format.js';
import { chosenTime, snoozeChoices, toLocalInput } from './snooze.js';
import { assignees } from './team.js';
import { assigneeId, nextAfter, statusOf } from './views.js';

const $ = (sel) => document.querySelector(sel);

/** Whether a key press belongs to a field (or a dialog, or comes with a modifier) rather than to the page. */
export function isTyping(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return true;
  const t = e.target;
  if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return true;
  return Boolean(document.querySelector('dialog[open]'));
}

/**
 * A button that opens a menu panel: Escape or a click elsewhere closes it, the arrow keys move
 * between its items. → {open, close, isOpen}
 */
function menu(button, panel, onOpen) {
  const items = () => Array.from(panel.querySelectorAll('[role^=menuitem]:not([disabled])'));
  function close({ focus = false } = {}) {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (focus) button.focus();
  }
  function open() {
    onOpen();
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    items()[0]?.focus();
  }
  button.addEventListener('click', () => (panel.hidden ? open() : close()));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close({ focus: true });
      return;
    }
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    if (e.target instanceof HTMLInputElement) return;
    const list = items();
    const at = list.indexOf(document.activeElement);
    e.preventDefault();
    list[(at + (e.key === 'ArrowDown' ? 1 : -1) + list.length) % list.length]?.focus();
  });
  document.addEventListener('click', (e) => {
    if (!panel.hidden && !panel.contains(e.target) && !button.contains(e.target)) close();
  });
  return { open, close, isOpen: () => !panel.hidden };
}

/**
 * init({store, patch, openId, me, team, views, shownIds, select, closeThread, invalidate, toast, onAuthError})
 * → {render, closeOpen}
 * `me()` is the signed-in agent, `team` team.js's createTeam(), `views` views-view.js's;
 * `shownIds()` the list's conversations in order, `select(id)` opens one, `closeThread()` none.
 */
export function init({ store, patch, openId, me, team, views, shownIds, select, closeThread, invalidate, toast, onAuthError }) {
  const els = {
    actions: $('#thread-actions'),
    assignee: $('#assignee-button'),
    assigneeLabel: $('#assignee-label'),
    assigneeMenu: $('#assignee-menu'),
    close: $('#close-button'),
    snooze: $('#snooze-button'),
    snoozeMenu: $('#snooze-menu'),
    snoozeChoices: $('#snooze-choices'),
    snoozeForm: $('#snooze-form'),
    snoozeAt: $('#snooze-at'),
    snoozeError: $('#snooze-error'),
    state: $('#thread-state'),
  };
  let busy = false;

  const meId = () => String(me()?.id ?? '');
  const current = () => store.conversations.get(openId()) ?? null;

  function whoLabel(conv) {
    const id = assigneeId(conv);
    if (id == null) return 'Unassigned';
    if (id === meId()) return 'You';
    return conv.assignee?.name || team.nameOf(id) || 'Another agent';
  }

  /** PATCH the open conversation with `body`; `leaving`: move on when it leaves the view. */
  async function change(body, { leaving = false, done = '' } = {}) {
    const conv = current();
    if (!conv || busy) return false;
    const before = shownIds();
    busy = true;
    render();
    try {
      const answer = await patch(`/api/crm/sms/conversations/${encodeURIComponent(conv.id)}`, body);
      const updated = store.upsertConversation(answer);
      views.requestCounts();
      invalidate('list', 'thread');
      if (done) toast(done);
      if (leaving && updated && openId() === updated.id && !views.belongs(updated)) {
        const next = nextAfter(before, updated.id);
        if (next && next !== updated.id) select(next);
        else closeThread();
      }
      return true;
    } catch (err) {
      if (!onAuthError(err)) toast(`Could not change the conversation: ${describeError(err)}`, 'error');
      return false;
    } finally {
      busy = false;
      render();
    }
  }

  // ---------------------------------------------------------------- Assignee

  function item(label, { checked = null, onclick, cls = '' }) {
    return h(
      'button',
      {
        type: 'button',
        class: `menu-item ${cls}`.trim(),
        role: checked == null ? 'menuitem' : 'menuitemradio',
        'aria-checked': checked == null ? null : String(checked),
        onclick,
      },
      label,
    );
  }

  function fillAssigneeMenu() {
    const conv = current();
    if (!conv) return;
    const who = assigneeId(conv);
    const pick = (id) => () => {
      assigneeMenu.close({ focus: true });
      if (id !== who) change({ assigneeId: id });
    };
    const others = assignees(team.agents(), conv.ourNumber, meId());
    if (who != null && who !== meId() && !others.some((a) => a.id === who)) {
      others.unshift({ id: who, name: whoLabel(conv) });
    }
    els.assigneeMenu.replaceChildren(
      item('Assign to me', { checked: who === meId(), onclick: pick(meId()) }),
      ...others.map((a) => item(a.name || 'Another agent', { checked: who === a.id, onclick: pick(a.id) })),
      item('Unassign', { checked: who == null, onclick: pick(null), cls: 'menu-item-quiet' }),
    );
  }

  const assigneeMenu = menu(els.assignee, els.assigneeMenu, fillAssigneeMenu);

  // ---------------------------------------------------------------- Close, Reopen, Snooze

  async function closeOpen() {
    const conv = current();
    if (!conv || statusOf(conv) === 'closed') return;
    await change({ status: 'closed' }, { leaving: true });
  }

  els.close.addEventListener('click', () => {
    const conv = current();
    if (!conv) return;
    if (statusOf(conv) === 'open') closeOpen();
    else change({ status: 'open' });
  });

  function snoozeUntil(until) {
    snoozeMenu.close({ focus: true });
    change({ status: 'snoozed', snoozedUntil: until.toISOString() }, { leaving: true, done: `Snoozed until ${fmt.formatFull(until)}.` });
  }

  function fillSnoozeMenu() {
    const now = new Date();
    els.snoozeChoices.replaceChildren(
      ...snoozeChoices(now).map((c) =>
        item(h('span', null, c.label, h('span', { class: 'menu-item-detail' }, fmt.formatFull(c.until))), { onclick: () => snoozeUntil(c.until) }),
      ),
    );
    const inHour = new Date(now.getTime() + 3600 * 1000);
    els.snoozeAt.min = toLocalInput(now);
    els.snoozeAt.max = toLocalInput(new Date(now.getTime() + 89 * 86400 * 1000));
    if (!els.snoozeAt.value) els.snoozeAt.value = toLocalInput(inHour);
    els.snoozeError.hidden = true;
  }

  const snoozeMenu = menu(els.snooze, els.snoozeMenu, fillSnoozeMenu);

  els.snoozeForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const { until, error } = chosenTime(els.snoozeAt.value);
    if (error) {
      els.snoozeError.textContent = error;
      els.snoozeError.hidden = false;
      return;
    }
    els.snoozeAt.value = '';
    snoozeUntil(until);
  });

  document.addEventListener('keydown', (e) => {
    if (e.key !== 'e' || e.repeat || isTyping(e) || !openId()) return;
    e.preventDefault();
    closeOpen();
  });

  // ---------------------------------------------------------------- Drawing

  function render() {
    const conv = current();
    if (!conv) {
      assigneeMenu.close();
      snoozeMenu.close();
      return;
    }
    const status = statusOf(conv);
    els.assigneeLabel.textContent = whoLabel(conv);
    els.assignee.classList.toggle('is-unassigned', assigneeId(conv) == null);
    els.assignee.title = assigneeId(conv) == null ? 'Assign this conversation' : `Assigned to ${whoLabel(conv)}`;
    els.close.textContent = status === 'open' ? 'Close' : 'Reopen';
    els.close.title = status === 'open' ? 'Close (E)' : 'Reopen';
    for (const b of [els.assignee, els.close, els.snooze]) b.disabled = busy;
    let state = '';
    if (status === 'snoozed') state = conv.snoozedUntil ? `Snoozed until ${fmt.formatFull(conv.snoozedUntil)}` : 'Snoozed';
    else if (status === 'closed') state = 'Closed: a new message from the contact reopens it';
    els.state.textContent = state;
    els.state.hidden = !state;
    els.state.dataset.status = status;
    els.actions.dataset.status = status;
  }

  return { render, closeOpen };
}
