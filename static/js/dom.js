// Tiny DOM helpers. Text always goes through textContent / createTextNode, never innerHTML.

export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * h('div', {class: 'x', dataset: {id: '1'}, hidden: true, onclick: fn}, 'text', child)
 * Strings become text nodes; null/false children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

/** Make `parent`'s children exactly `nodes`, in order, moving only what is out of place. */
export function reconcileChildren(parent, nodes) {
  const wanted = new Set(nodes);
  for (const child of Array.from(parent.children)) {
    if (!wanted.has(child)) child.remove();
  }
  let cursor = parent.firstElementChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      parent.insertBefore(node, cursor);
    }
  }
}

/** Show an error text in an alert element (or hide it when text is empty). */
export function setAlert(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

/** A short notice in the corner (`#toasts`) that goes away by itself. */
export function toast(text, kind = 'info') {
  const el = h('div', { class: `toast toast-${kind}` }, text);
  $('#toasts').append(el);
  setTimeout(() => el.classList.add('leaving'), 4000);
  setTimeout(() => el.remove(), 4400);
}
