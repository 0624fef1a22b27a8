// Snoozing without the DOM (tested in snooze.test.mjs): the times the Snooze menu offers, in the
// agent's own time zone, and the rule a chosen time must meet (in the future, at most 90 days ahead,
// as the server checks it) put in words before the server is asked.

/** The server refuses a snooze further ahead than this. */
export const MAX_SNOOZE_DAYS = 90;

function atNine(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate(), 9, 0, 0, 0);
}

/** The menu's choices at `now`: in 1 hour, tomorrow 9:00, next Monday 9:00 (a week ahead on a Monday). */
export function snoozeChoices(now = new Date()) {
  const inHour = new Date(now.getTime() + 3600 * 1000);
  const tomorrow = atNine(new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1));
  const days = ((8 - now.getDay()) % 7) || 7;
  const monday = atNine(new Date(now.getFullYear(), now.getMonth(), now.getDate() + days));
  return [
    { id: 'hour', label: '1 hour', until: inHour },
    { id: 'tomorrow', label: 'Tomorrow 9:00', until: tomorrow },
    { id: 'monday', label: 'Next Monday 9:00', until: monday },
  ];
}

/**
 * A time typed in `<input type="datetime-local">` ("2026-01-14T09:30" or with seconds), read in the
 * agent's time zone → {until: Date} or {error}.
 */
export function chosenTime(value, now = new Date()) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(String(value ?? '').trim());
  if (!m) return { error: 'Choose a date and a time.' };
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0));
  const until = new Date(y, mo - 1, d, h, mi, s);
  if (Number.isNaN(until.getTime()) || until.getMonth() !== mo - 1) return { error: 'Choose a date and a time.' };
  if (until.getTime() <= now.getTime()) return { error: 'Choose a time in the future.' };
  if (until.getTime() - now.getTime() > MAX_SNOOZE_DAYS * 86400 * 1000) {
    return { error: `A conversation can be snoozed for at most ${MAX_SNOOZE_DAYS} days.` };
  }
  return { until };
}

/** `d` as `<input type="datetime-local">` takes it, in local time, to the minute. */
export function toLocalInput(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
