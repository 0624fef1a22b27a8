// The views above the conversation list (views.js holds their rules): Mine, Unassigned, Open, Snoozed,
// Closed as a row of tabs, each with its count, the one chosen kept per agent in this browser. The
// counts are read on load, on every (re)connect and resync, and again shortly after the server pushes
// a change (views.js's createCounts), so the page never polls.

import { describeError } from './api.js';
import { h } from './dom.js';
import { DEFAULT_VIEW, VIEWS, belongs, countLabel, createCounts, viewById, viewParams } from './views.js';

/**
 * init({get, storage, meId, invalidate, onChange, onAuthError}) → {restore, current, show, params, belongs,
 * label, loadCounts, requestCounts, counts, render}
 * `onChange(viewId)` runs when the agent picks another view.
 */
export function init({ get, storage, meId, invalidate, onChange, onAuthError }) {
  const root = document.querySelector('#views');
  let current = DEFAULT_VIEW;
  const counts = createCounts({
    fetchCounts: () => get('/api/crm/sms/conversations/counts'),
    onChange: () => invalidate('views'),
    onError(err) {
      if (onAuthError(err)) return true;
      // The counts shown stay; the next change or connect reads them again.
      console.warn('[Messages] could not read the counts:', describeError(err));
      return false;
    },
  });

  const tabs = VIEWS.map((v) => {
    const count = h('span', { class: 'view-count' });
    const tab = h(
      'button',
      { type: 'button', role: 'tab', class: 'view-tab', id: `view-${v.id}`, 'aria-controls': 'conversation-list', dataset: { view: v.id } },
      h('span', { class: 'view-label' }, v.label),
      count,
    );
    tab._count = count;
    return tab;
  });
  root.replaceChildren(...tabs);

  function render() {
    const n = counts.counts();
    for (const tab of tabs) {
      const id = tab.dataset.view;
      const selected = id === current;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      tab._count.textContent = countLabel(n[id]);
      tab.title = n[id] == null ? viewById(id).label : `${viewById(id).label}: ${n[id]}`;
    }
  }

  function choose(id, { focus = false } = {}) {
    const next = viewById(id).id;
    const tab = tabs.find((t) => t.dataset.view === next);
    if (focus) tab.focus();
    tab.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    if (next === current) return;
    current = next;
    storage.write('view', current);
    invalidate('views');
    onChange(current);
  }

  root.addEventListener('click', (e) => {
    const tab = e.target.closest('.view-tab');
    if (tab) choose(tab.dataset.view);
  });
  root.addEventListener('keydown', (e) => {
    const at = VIEWS.findIndex((v) => v.id === current);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: VIEWS.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    choose(VIEWS[(to + VIEWS.length) % VIEWS.length].id, { focus: true });
  });
  render();

  return {
    /** The signed-in agent is known: back to the view they last chose here. */
    restore() {
      current = viewById(storage.read('view', DEFAULT_VIEW)).id;
      invalidate('views');
    },
    current: () => current,
    /** Show view `id` as if the agent had picked it. */
    show: (id) => choose(id),
    params: () => viewParams(current),
    /** Whether `conv` is in the view shown now. */
    belongs: (conv) => belongs(conv, current, meId()),
    label: () => viewById(current).label,
    /** Read the counts now (load, connect, resync). */
    loadCounts: counts.load,
    /** Something changed that may move a count: read them soon. */
    requestCounts: counts.request,
    counts: counts.counts,
    render,
  };
}
