// Searching the conversation list (docs/api.md, "Search"): the field above the list, results as the agent
// types (debounced; an answer to an older text is dropped), the matching words marked in the rows, and
// "No conversations in <view> match …" when nothing does. `/` focuses the field, `Esc` clears it.
//
// The results are the server's (name, phone digits, message words); they are merged into the Store like
// any page, so a result stays live while shown, and the list shows only them while a search is on.
// A search looks in the view shown (views.js), and runs again when the agent picks another.

import { describeError } from './api.js';

export const SEARCH_DEBOUNCE_MS = 200;
const PAGE = 50;

/** Lowercase without accents, as the server compares: "Émile" → "emile". */
export function fold(text) {
  return String(text).normalize('NFD').replace(/\p{M}+/gu, '').toLowerCase();
}

/** The words of a search text (runs of letters and digits), folded. */
export function searchWords(query) {
  return fold(query).match(/[\p{L}\p{N}]+/gu) || [];
}

/**
 * `text` cut into parts `{text, mark}` where `mark` says the part matches one of `words` (folded, so
 * "Jose" marks "José"). Parts are plain strings: the caller makes text nodes of them, never HTML.
 */
export function markParts(text, words) {
  const source = String(text ?? '');
  const wanted = words.filter(Boolean);
  if (!source || wanted.length === 0) return source ? [{ text: source, mark: false }] : [];
  // Fold per character, remembering where each folded character came from in the source.
  let folded = '';
  const origin = [];
  let i = 0;
  for (const ch of source) {
    const f = fold(ch);
    for (let k = 0; k < f.length; k += 1) origin.push(i);
    folded += f;
    i += ch.length;
  }
  origin.push(source.length);
  const marked = new Array(source.length).fill(false);
  for (const w of wanted) {
    let at = folded.indexOf(w);
    while (at !== -1) {
      const end = origin[at + w.length] ?? source.length;
      for (let p = origin[at]; p < end; p += 1) marked[p] = true;
      at = folded.indexOf(w, at + w.length);
    }
  }
  const parts = [];
  for (let p = 0; p < source.length; p += 1) {
    const last = parts[parts.length - 1];
    if (last && last.mark === marked[p]) last.text += source[p];
    else parts.push({ text: source[p], mark: marked[p] });
  }
  return parts;
}

/** Replace `el`'s content with `text`, the parts matching `words` in <mark>: text nodes only. */
export function setMarked(el, text, words) {
  const nodes = markParts(text, words).map((part) => {
    if (!part.mark) return document.createTextNode(part.text);
    const mark = document.createElement('mark');
    mark.textContent = part.text;
    return mark;
  });
  el.replaceChildren(...nodes);
}

/**
 * The search's state, without the page: what was asked, what came back, and which answer is current.
 * `fetchPage(query, cursor)` → {conversations, nextCursor}; `onChange()` after every change.
 * `setTimer`/`clearTimer` are the clock (tests pass their own).
 */
export function createSearch({ fetchPage, onChange, onError = () => {}, setTimer = setTimeout, clearTimer = clearTimeout }) {
  let query = '';
  let ids = [];
  let nextCursor = null;
  let loading = false;
  let error = null;
  let asked = 0; // the number of the newest request; older answers are dropped
  let timer = null;

  async function run(q, cursor) {
    const mine = ++asked;
    loading = true;
    error = null;
    onChange();
    try {
      const res = await fetchPage(q, cursor);
      if (mine !== asked) return;
      const found = (res?.conversations || []).map((c) => String(c.id));
      ids = cursor ? ids.concat(found.filter((id) => !ids.includes(id))) : found;
      nextCursor = res?.nextCursor ?? null;
    } catch (err) {
      if (mine !== asked) return;
      if (onError(err)) return;
      error = describeError(err);
    } finally {
      if (mine === asked) loading = false;
    }
    if (mine === asked) onChange();
  }

  return {
    /** The text changed: search for it after a pause in typing (a blank text ends the search). */
    setQuery(text) {
      const q = String(text ?? '').trim();
      if (q === query) return;
      query = q;
      if (timer) clearTimer(timer);
      timer = null;
      if (!q) {
        asked += 1;
        ids = [];
        nextCursor = null;
        loading = false;
        error = null;
        onChange();
        return;
      }
      timer = setTimer(() => {
        timer = null;
        run(q, null);
      }, SEARCH_DEBOUNCE_MS);
    },
    /** The same text again from its first page (what it searches in changed). */
    rerun() {
      if (!query) return;
      if (timer) clearTimer(timer);
      timer = null;
      run(query, null);
    },
    /** The next page of the same search. */
    more() {
      if (query && nextCursor && !loading) run(query, nextCursor);
    },
    active: () => query !== '',
    query: () => query,
    words: () => searchWords(query),
    ids: () => ids,
    loading: () => loading,
    error: () => error,
    hasMore: () => Boolean(nextCursor),
    /** Whether the current text has had its answer (so "no match" can be said). */
    settled: () => query !== '' && !loading && timer === null,
  };
}

/**
 * init({get, store, invalidate, params, onAuthError}) → the search (see createSearch) plus `clear()`,
 * bound to the field `#search-input`; `params()` are the view's filters, sent with every page.
 */
export function init({ get, store, invalidate, params = () => ({}), onAuthError }) {
  const input = document.querySelector('#search-input');
  const clearButton = document.querySelector('#search-clear');
  const search = createSearch({
    async fetchPage(q, cursor) {
      const query = new URLSearchParams({ q, limit: String(PAGE), ...params() });
      if (cursor) query.set('cursor', cursor);
      const res = await get(`/api/crm/sms/conversations?${query}`);
      for (const c of res?.conversations || []) store.upsertConversation(c);
      return res;
    },
    onChange: () => {
      clearButton.hidden = input.value === '';
      invalidate('list');
    },
    onError: onAuthError,
  });

  function clear() {
    input.value = '';
    search.setQuery('');
  }

  input.addEventListener('input', () => search.setQuery(input.value));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      clear();
    }
  });
  clearButton.addEventListener('click', () => {
    clear();
    input.focus();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (document.querySelector('dialog[open]')) return;
    e.preventDefault();
    input.focus();
    input.select();
  });

  return { ...search, clear };
}
