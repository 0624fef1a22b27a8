// One message as a bubble: its text (always as text, its web links clickable), media, time and status
// mark (spinner, ✓, ✓✓, or a red error line with Retry), and on a shared number who sent it. A note is
// set apart: its own colour, its author, "Only agents see this", no status mark. Elements are made
// once per message and updated in place.

import { h } from './dom.js';
import { linkNodes } from './linkify.js';
import { statusGroup } from './store.js';
import * as fmt from './format.js';

const STATUS_LABELS = {
  pending: 'Sending',
  queued: 'Queued',
  sending: 'Sending',
  accepted: 'Accepted',
  scheduled: 'Scheduled',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Failed',
  undelivered: 'Not delivered',
  canceled: 'Canceled',
};

function errorTextFor(m) {
  if (m.errorMessage) return String(m.errorMessage);
  if (m.errorCode != null && m.errorCode !== '') return `Error ${m.errorCode}`;
  return m.status === 'canceled' ? 'Canceled' : 'Not delivered';
}

function renderMedia(container, m) {
  const items = Array.isArray(m.media) ? m.media : [];
  const nodes = [];
  if (m.id != null) {
    items.forEach((item, n) => {
      const type = String(item?.contentType || '').toLowerCase();
      const src = `/api/crm/sms/messages/${encodeURIComponent(m.id)}/media/${n}`;
      if (type.startsWith('image/')) {
        const img = h('img', { src, alt: 'Image attachment', loading: 'lazy', decoding: 'async' });
        img.addEventListener('error', () => {
          img.replaceWith(h('span', { class: 'media-missing' }, 'Image unavailable'));
        });
        nodes.push(h('a', { class: 'media-image', href: src, target: '_blank', rel: 'noopener' }, img));
      } else if (type.startsWith('video/')) {
        nodes.push(h('video', { class: 'media-video', src, controls: true, preload: 'none' }));
      } else if (type.startsWith('audio/')) {
        nodes.push(h('audio', { class: 'media-audio', src, controls: true, preload: 'none' }));
      } else {
        nodes.push(
          h(
            'a',
            { class: 'media-file', href: src, target: '_blank', rel: 'noopener' },
            h('span', { 'aria-hidden': 'true' }, '📎 '),
            `Attachment${type ? ` (${type})` : ''}`,
          ),
        );
      }
    });
  } else if (items.length && items.every((item) => item?.localUrl)) {
    // Our own pictures before the server has the message: shown from the files the agent picked.
    for (const item of items) {
      const img = h('img', { src: item.localUrl, alt: 'Picture being sent', decoding: 'async' });
      img.addEventListener('error', () => {
        img.replaceWith(h('span', { class: 'media-missing' }, 'Picture'));
      });
      nodes.push(h('span', { class: 'media-image' }, img));
    }
  } else if (items.length) {
    nodes.push(h('span', { class: 'media-missing' }, `${items.length} attachment${items.length > 1 ? 's' : ''}`));
  }
  container.replaceChildren(...nodes);
  container.hidden = nodes.length === 0;
}

export function createBubble() {
  const authorName = h('span', { class: 'author-name' });
  const noteTag = h('span', { class: 'note-tag', hidden: true }, 'Only agents see this');
  const author = h('div', { class: 'author', hidden: true }, authorName, noteTag);
  const media = h('div', { class: 'media', hidden: true });
  const body = h('div', { class: 'body' });
  const box = h('div', { class: 'bubble-box' }, media, body);
  const time = h('time', { class: 'time' });
  const status = h('span', { class: 'status' });
  const meta = h('div', { class: 'meta' }, time, status);
  const errorText = h('span', { class: 'error-text' });
  const retry = h('button', { type: 'button', class: 'retry-button', hidden: true }, 'Retry');
  const error = h('div', { class: 'error-line', hidden: true }, errorText, retry);
  const el = h('div', { class: 'bubble' }, author, box, meta, error);
  el._parts = { author, authorName, noteTag, media, body, time, status, errorText, retry, error };
  return el;
}

/**
 * Show message `m` (stored under `key`) in `el`; `retried`: it was sent again already (no Retry);
 * `author`: who wrote it, shown above it (null: not shown).
 */
export function updateBubble(el, m, key, { retried, author = null }) {
  const note = m.direction === 'note';
  const direction = note ? 'note' : m.direction === 'inbound' ? 'inbound' : 'outbound';
  const outbound = direction === 'outbound';
  const group = note ? (m._localError ? 'failed' : 'note') : outbound ? statusGroup(m.status) : 'received';
  const canRetry = outbound && !m._local && m.id != null && (m.status === 'failed' || m.status === 'undelivered') && !retried;
  const mediaSig = JSON.stringify([m.id, m.media]);
  const sig = [m.id, m.clientId, m.status, m.errorCode, m.errorMessage, m.body, m.createdAt, mediaSig, canRetry, group, author, Boolean(m._local)].join('\u0001');
  if (el._sig === sig) return;
  el._sig = sig;
  const p = el._parts;
  el.className = `bubble ${direction} state-${group}`;
  el.dataset.key = key;
  el.dataset.id = m.id ?? '';
  el.dataset.clientId = m.clientId ?? '';
  el.dataset.status = m.status || (outbound ? 'pending' : 'received');
  el.dataset.direction = direction;

  const by = note ? author || 'You' : author;
  p.author.hidden = by == null;
  p.authorName.textContent = by ?? '';
  p.noteTag.hidden = !note;

  p.body.replaceChildren(...linkNodes(m.body ?? ''));
  p.body.hidden = !m.body;
  if (el._mediaSig !== mediaSig) {
    el._mediaSig = mediaSig;
    renderMedia(p.media, m);
  }

  p.time.textContent = fmt.formatTime(m.createdAt);
  if (m.createdAt) p.time.dateTime = m.createdAt;
  p.time.title = fmt.formatFull(m.createdAt);

  const s = p.status;
  s.className = `status status-${group}`;
  s.replaceChildren();
  if (outbound) {
    const label = STATUS_LABELS[m.status] || 'Sending';
    s.setAttribute('role', 'img');
    s.setAttribute('aria-label', label);
    s.title = label;
    s.removeAttribute('aria-hidden');
    if (group === 'pending') s.append(h('span', { class: 'spinner' }));
    else if (group === 'sent') s.textContent = '✓';
    else if (group === 'delivered') s.textContent = '✓✓';
    else s.textContent = '!';
  } else if (note && m._local && !m._localError) {
    // Not saved yet (no connection): the same spinner as a send, never a delivery mark.
    s.setAttribute('role', 'img');
    s.setAttribute('aria-label', 'Saving');
    s.title = 'Saving';
    s.removeAttribute('aria-hidden');
    s.append(h('span', { class: 'spinner' }));
  } else {
    s.removeAttribute('role');
    s.removeAttribute('aria-label');
    s.removeAttribute('title');
    s.setAttribute('aria-hidden', 'true');
  }

  const failed = (outbound || note) && (group === 'failed' || group === 'canceled');
  p.error.hidden = !failed;
  p.errorText.textContent = failed ? errorTextFor(m) : '';
  p.retry.hidden = !canRetry;
  p.retry.disabled = false;
}
