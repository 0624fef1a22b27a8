// Web links in message text: every http(s) URL becomes a link that opens in a new tab, the rest stays
// text. Nothing is ever parsed as HTML, and no other scheme (javascript:, data:, …) is ever linked.

// A URL starts at "http://" or "https://" not glued to a word before it, and runs to the next space or
// to a character that cannot be in one unescaped.
const URL_START = /(?<![\p{L}\p{N}_])https?:\/\/[^\s<>"`{}|\\^]+/giu;
// Punctuation that ends a sentence rather than the URL ("see https://x.io/a.", "(https://x.io)").
const TRAILING = /[.,;:!?'"’”*_]$/u;
const CLOSERS = { ')': '(', ']': '[', '}': '{' };

function count(text, ch) {
  return text.split(ch).length - 1;
}

/** `url` without the punctuation that follows it in the sentence; a closing bracket it opened stays. */
function trimTrailing(url) {
  let u = url;
  for (;;) {
    const last = u.at(-1);
    if (TRAILING.test(u)) u = u.slice(0, -1);
    else if (CLOSERS[last] && count(u, last) > count(u, CLOSERS[last])) u = u.slice(0, -1);
    else return u;
  }
}

/** The href for `url` if it is an http(s) URL with a host; else null. */
function hrefOf(url) {
  try {
    const parsed = new URL(url);
    if ((parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.hostname) return parsed.href;
  } catch {
    /* not a URL after all */
  }
  return null;
}

/** "see https://x.io." → [{text: 'see '}, {text: 'https://x.io', href: 'https://x.io/'}, {text: '.'}] */
export function linkParts(text) {
  const s = String(text ?? '');
  const parts = [];
  let done = 0;
  for (const m of s.matchAll(URL_START)) {
    const url = trimTrailing(m[0]);
    const href = hrefOf(url);
    if (!href) continue;
    if (m.index > done) parts.push({ text: s.slice(done, m.index) });
    parts.push({ text: url, href });
    done = m.index + url.length;
  }
  if (done < s.length) parts.push({ text: s.slice(done) });
  return parts;
}

/** `text` as DOM nodes: text nodes, and <a target="_blank" rel="noopener noreferrer"> for its links. */
export function linkNodes(text) {
  return linkParts(text).map((part) => {
    if (!part.href) return document.createTextNode(part.text);
    const a = document.createElement('a');
    a.href = part.href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.textContent = part.text;
    return a;
  });
}
