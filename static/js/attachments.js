// Pictures in the composer: the attach button, pasting and dropping images, a thumbnail per picture with
// its upload's progress and a remove button, and the checks the server makes (JPEG, PNG or GIF, 5 MB, 10
// a message) made here first so the agent hears at once. Each picture is uploaded as soon as it is added
// (POST /api/crm/sms/uploads, with upload progress); the composer sends once all of them are up.

import { ApiError } from './api.js';
import { h } from './dom.js';

export const MAX_PICTURE_BYTES = 5 * 1024 * 1024;
export const MAX_PICTURES = 10;
export const PICTURE_TYPES = ['image/jpeg', 'image/png', 'image/gif'];

/** Megabytes, rounded up to a tenth: a file just over the limit never reads as "5.0 MB". */
const mb = (bytes) => `${(Math.ceil((bytes / (1024 * 1024)) * 10) / 10).toFixed(1)} MB`;

/**
 * Why `file` ({name, type, size}) cannot join `held` (the pictures already there, each {size}), or null.
 * The server decides by the bytes; this catches what the browser already knows.
 */
export function refusal(file, held = []) {
  const name = file.name || 'This file';
  if (!PICTURE_TYPES.includes(String(file.type || '').toLowerCase())) {
    return `${name} is not a JPEG, PNG or GIF picture.`;
  }
  if (file.size > MAX_PICTURE_BYTES) return `${name} is too big (${mb(file.size)}; at most 5 MB).`;
  if (file.size === 0) return `${name} is empty.`;
  if (held.length >= MAX_PICTURES) return `At most ${MAX_PICTURES} pictures a message.`;
  const total = held.reduce((sum, p) => sum + p.size, 0) + file.size;
  if (total > MAX_PICTURE_BYTES) return `The pictures together would be ${mb(total)}; a message takes at most 5 MB.`;
  return null;
}

/** The segment counter's words with `pictures` attached: an MMS, whatever the text's length. */
export function mmsLabel(pictures, chars) {
  const what = `${pictures} picture${pictures === 1 ? '' : 's'}`;
  return chars ? `MMS · ${what} · ${chars} characters` : `MMS · ${what}`;
}

/** The image files among a paste's or a drop's items. */
export function imageFiles(list) {
  return Array.from(list || []).filter((f) => f && String(f.type || '').startsWith('image/'));
}

/**
 * init({toast, onChange, onAuthError, xhr}) → {count, ready, pending, take, clear, release}
 * `onChange()` runs whenever the pictures or their uploads change (the composer updates its button and
 * counter). `xhr` makes the XMLHttpRequest (a test may pass another).
 */
export function init({ toast, onChange = () => {}, onAuthError = () => false, xhr = () => new XMLHttpRequest() }) {
  const form = document.querySelector('#composer');
  const textarea = document.querySelector('#composer textarea');
  const button = document.querySelector('#attach-button');
  const input = document.querySelector('#attach-input');
  const tray = document.querySelector('#attachments');
  let pictures = []; // {key, file, url, size, state: 'uploading'|'done'|'failed', progress, id, contentType, error, el, req}
  let nextKey = 1;

  function show(p) {
    const label =
      p.state === 'uploading' ? `Uploading ${p.progress}%` : p.state === 'failed' ? p.error : 'Ready to send';
    p.el.dataset.state = p.state;
    p.el.querySelector('.attachment-progress').style.width = `${p.state === 'uploading' ? p.progress : 100}%`;
    const state = p.el.querySelector('.attachment-state');
    state.textContent = label;
    p.el.title = `${p.file.name || 'Picture'}: ${label}`;
  }

  function render() {
    tray.replaceChildren(...pictures.map((p) => p.el));
    tray.hidden = pictures.length === 0;
    form.classList.toggle('has-attachments', pictures.length > 0);
    onChange();
  }

  function remove(p) {
    p.req?.abort();
    URL.revokeObjectURL(p.url);
    pictures = pictures.filter((x) => x !== p);
    render();
    textarea.focus({ preventScroll: true });
  }

  function upload(p) {
    const req = xhr();
    p.req = req;
    req.open('POST', '/api/crm/sms/uploads');
    req.responseType = 'json';
    req.setRequestHeader('Accept', 'application/json');
    req.upload.addEventListener('progress', (e) => {
      if (!e.lengthComputable) return;
      p.progress = Math.min(99, Math.round((e.loaded / e.total) * 100));
      show(p);
    });
    req.addEventListener('load', () => {
      p.req = null;
      const body = req.response && typeof req.response === 'object' ? req.response : null;
      if (req.status === 201 && body?.id != null) {
        Object.assign(p, { state: 'done', progress: 100, id: String(body.id), contentType: body.contentType });
      } else {
        const err = body?.error || {};
        if (onAuthError(new ApiError(req.status, err.code || `http_${req.status}`, err.message || '', body))) return;
        p.state = 'failed';
        p.error = err.message ? `Not sent: ${err.message}` : `Upload failed (${req.status})`;
        toast(`${p.file.name || 'The picture'}: ${p.error}`, 'error');
      }
      show(p);
      onChange();
    });
    req.addEventListener('error', () => {
      p.req = null;
      p.state = 'failed';
      p.error = "Upload failed: can't reach the server";
      show(p);
      onChange();
    });
    const data = new FormData();
    data.append('file', p.file, p.file.name || 'picture');
    req.send(data);
  }

  function add(files) {
    for (const file of files) {
      const why = refusal(file, pictures);
      if (why) {
        toast(why, 'error');
        continue;
      }
      const url = URL.createObjectURL(file);
      const p = { key: nextKey++, file, url, size: file.size, state: 'uploading', progress: 0, id: null };
      const remover = h('button', { type: 'button', class: 'attachment-remove', 'aria-label': 'Remove picture' }, '×');
      remover.addEventListener('click', () => remove(p));
      p.el = h(
        'div',
        { class: 'attachment' },
        h('img', { src: url, alt: '' }),
        h('div', { class: 'attachment-bar' }, h('div', { class: 'attachment-progress' })),
        h('span', { class: 'attachment-state visually-hidden', 'aria-live': 'polite' }),
        remover,
      );
      pictures.push(p);
      show(p);
      upload(p);
    }
    render();
  }

  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    add(Array.from(input.files || []));
    input.value = '';
  });
  textarea.addEventListener('paste', (e) => {
    const files = imageFiles(e.clipboardData?.files);
    // Not while pictures are off (a note, an opted-out contact): the paste stays text.
    if (!files.length || button.disabled) return;
    e.preventDefault();
    add(files);
  });
  const carriesFiles = (e) => Array.from(e.dataTransfer?.types || []).includes('Files');
  form.addEventListener('dragover', (e) => {
    if (!carriesFiles(e) || button.disabled) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    form.classList.add('dropping');
  });
  form.addEventListener('dragleave', (e) => {
    if (!form.contains(e.relatedTarget)) form.classList.remove('dropping');
  });
  form.addEventListener('drop', (e) => {
    form.classList.remove('dropping');
    if (!carriesFiles(e) || button.disabled) return;
    e.preventDefault();
    const files = Array.from(e.dataTransfer.files || []);
    const images = imageFiles(files);
    if (images.length < files.length) toast('Only pictures (JPEG, PNG or GIF) can be attached.', 'error');
    add(images);
  });

  return {
    /** How many pictures are attached. */
    count: () => pictures.length,
    /** Whether every picture is uploaded (none still going, none failed). */
    ready: () => pictures.every((p) => p.state === 'done'),
    /** What keeps Send off, in words, or ''. */
    pending() {
      if (pictures.some((p) => p.state === 'failed')) return 'Remove the pictures that could not be uploaded';
      if (pictures.some((p) => p.state === 'uploading')) return 'Uploading pictures…';
      return '';
    },
    /** The uploaded pictures for a send ({id, contentType, localUrl}); the tray empties. */
    take() {
      const taken = pictures.map((p) => ({ id: p.id, contentType: p.contentType, localUrl: p.url }));
      pictures = [];
      render();
      return taken;
    },
    /** Empties the tray (the conversation closed): uploads in flight stop. */
    clear() {
      for (const p of pictures) {
        p.req?.abort();
        URL.revokeObjectURL(p.url);
      }
      pictures = [];
      render();
    },
    /** Frees what take() handed out, once the server's pictures replace them. */
    release(taken) {
      for (const p of taken) URL.revokeObjectURL(p.localUrl);
    },
    /** Messaging on or off (an opted-out contact): so is attaching. */
    setEnabled(on) {
      button.disabled = !on;
    },
  };
}
