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

/** "+15551230000" → "+1 (555) 123-0000"; other numbers are shown as given. */
export function formatPhone(phone) {
  const p = String(phone ?? '');
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(p);
  if (m) return `+1 (${m[1]}) ${m[2]}-${m[3]}`;
  return p;
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

export function messagePreview(m) {
  if (!m) return 'No messages yet';
  const body = String(m.body ?? '').replace(/\s+/g, ' ').trim();
  const mediaCount = Array.isArray(m.media) ? m.media.length : 0;
  let text = body;
  if (!text && mediaCount) {
    const img = m.media.every((x) => String(x.contentType || '').startsWith('image/'));
    text = img ? (mediaCount > 1 ? `📷 ${mediaCount} photos` : '📷 Photo') : '📎 Attachment';
  }
  if (m.direction === 'outbound') text = `You: ${text}`;
  return text;
}

/** One of six avatar colours, always the same for the same phone number. */
export function toneFor(s) {
  let x = 0;
  for (const ch of String(s)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 6;
}
