// Display formatting: times, phone numbers, initials, previews.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const longDateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const dayHeaderFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function toDate(value) {
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

/** Key for grouping messages by local day. */
export function dayKey(value) {
  const d = toDate(value);
  if (!d) return 'unknown';
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** "3:45 PM" */
export function formatTime(value) {
  const d = toDate(value);
  return d ? timeFmt.format(d) : '';
}

export function formatFull(value) {
  const d = toDate(value);
  return d ? fullFmt.format(d) : '';
}

/** Conversation list time: today → time, last 6 days → weekday, this year → "Mar 4", else with year. */
export function formatListTime(value, now = new Date()) {
  const d = toDate(value);
  if (!d) return '';
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days <= 0) return timeFmt.format(d);
  if (days === 1) return 'Yesterday';
  if (days < 7) return weekdayFmt.format(d);
  if (d.getFullYear() === now.getFullYear()) return shortDateFmt.format(d);
  return longDateFmt.format(d);
}

/** Day separator in a thread: "Today", "Yesterday", "Monday, March 4", "Mar 4, 2024". */
export function formatDayHeader(value, now = new Date()) {
  const d = toDate(value);
  if (!d) return '';
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (d.getFullYear() === now.getFullYear()) return dayHeaderFmt.format(d);
  return longDateFmt.format(d);
}

// Country calling codes of one and two digits (ITU-T E.164); every other code has three.
const SHORT_CODES = new Set(
  '1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98'.split(' '),
);

// How a few countries group their national numbers, by group sizes; others get groupSizes().
const NATIONAL_GROUPS = {
  33: (n) => n.length === 9 && [1, 2, 2, 2, 2], // France: 6 12 34 56 78
  44: (n) => (n.startsWith('20') && n.length === 10 ? [2, 4, 4] : n.length === 10 && [4, 6]), // UK: 20 7183 8750, 7700 900123
  61: (n) => n.length === 9 && (n.startsWith('4') ? [3, 3, 3] : [1, 4, 4]), // Australia: 412 345 678, 2 9876 5432
};

/** Groups of three, the last one or two of four, so that no group is a lone digit: 3-3-4, 3-4-4, 4-4. */
function groupSizes(length) {
  if (length <= 4) return [length];
  if (length === 5) return [2, 3];
  const tail = length % 3 === 1 ? [4] : length % 3 === 2 ? [4, 4] : [];
  const rest = length - tail.reduce((a, b) => a + b, 0);
  return [...Array(rest / 3).fill(3), ...tail];
}

function grouped(digits, sizes) {
  const parts = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(digits.slice(at, at + size));
    at += size;
  }
  return parts.join(' ');
}

/**
 * An E.164 number as people write it: "+15551230000" → "+1 (555) 123-0000", "+447700900123" →
 * "+44 7700 900123", others as "+<country code> " and groups of digits. Anything else as given.
 */
export function formatPhone(phone) {
  const p = String(phone ?? '');
  const nanp = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(p);
  if (nanp) return `+1 (${nanp[1]}) ${nanp[2]}-${nanp[3]}`;
  if (!/^\+[1-9]\d{5,14}$/.test(p)) return p;
  const digits = p.slice(1);
  const code = [1, 2, 3].map((n) => digits.slice(0, n)).find((c) => c.length === 3 || SHORT_CODES.has(c));
  const national = digits.slice(code.length);
  const sizes = NATIONAL_GROUPS[code]?.(national) || groupSizes(national.length);
  return `+${code} ${grouped(national, sizes)}`;
}

export function contactLabel(conv) {
  const c = conv?.contact || {};
  return (c.name && String(c.name).trim()) || formatPhone(c.phone) || 'Unknown';
}

export function initials(conv) {
  const name = conv?.contact?.name && String(conv.contact.name).trim();
  if (name) {
    // First letter (or digit) of the first and last words that have one: "<b>Jane</b> Doe" → "BD",
    // never a stray "<" or half of an emoji's surrogate pair.
    const firsts = name
      .split(/\s+/)
      .map((w) => w.match(/[\p{L}\p{N}]/u)?.[0])
      .filter(Boolean);
    const letters = (firsts[0] || '') + (firsts.length > 1 ? firsts[firsts.length - 1] : '');
    return letters.toUpperCase() || '#';
  }
  return '#';
}

/**
 * The list's line for a conversation's last message. A note says so; a reply says who wrote it, as
 * `authorOf(message)` names them (team.js's authorName: "You" for the agent's own).
 */
export function messagePreview(m, authorOf = () => 'You') {
  if (!m) return 'No messages yet';
  const body = String(m.body ?? '').replace(/\s+/g, ' ').trim();
  const mediaCount = Array.isArray(m.media) ? m.media.length : 0;
  let text = body;
  if (!text && mediaCount) {
    const img = m.media.every((x) => String(x.contentType || '').startsWith('image/'));
    text = img ? (mediaCount > 1 ? `📷 ${mediaCount} photos` : '📷 Photo') : '📎 Attachment';
  }
  if (m.direction === 'note') return `Note: ${text}`;
  if (m.direction === 'outbound') text = `${authorOf(m)}: ${text}`;
  return text;
}

/** One of six avatar colours, always the same for the same phone number. */
export function toneFor(s) {
  let x = 0;
  for (const ch of String(s)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 6;
}
