// Run: node --test static/js/snooze.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SNOOZE_DAYS, chosenTime, snoozeChoices, toLocalInput } from './snooze.js';

// Local times, so the tests hold in any time zone.
const WED = new Date(2026, 0, 14, 15, 45); // Wednesday
const MON = new Date(2026, 0, 12, 8, 0); // Monday, before 9:00

const byId = (now) => Object.fromEntries(snoozeChoices(now).map((c) => [c.id, c.until]));

test('the menu: in one hour, tomorrow 9:00, next Monday 9:00, in local time', () => {
  assert.deepEqual(
    snoozeChoices(WED).map((c) => c.label),
    ['1 hour', 'Tomorrow 9:00', 'Next Monday 9:00'],
  );
  const w = byId(WED);
  assert.equal(w.hour.getTime(), WED.getTime() + 3600_000);
  assert.deepEqual(w.tomorrow, new Date(2026, 0, 15, 9, 0));
  assert.deepEqual(w.monday, new Date(2026, 0, 19, 9, 0));
  // On a Monday, "next Monday" is a week ahead, even before 9:00.
  assert.deepEqual(byId(MON).monday, new Date(2026, 0, 19, 9, 0));
  // On a Sunday, it is the day after; the end of a month and of a year roll over.
  assert.deepEqual(byId(new Date(2026, 0, 18, 22, 0)).monday, new Date(2026, 0, 19, 9, 0));
  assert.deepEqual(byId(new Date(2026, 11, 31, 23, 30)).tomorrow, new Date(2027, 0, 1, 9, 0));
});

test('a chosen time: in the future, at most 90 days ahead, read in local time', () => {
  assert.deepEqual(chosenTime('2026-01-14T16:00', WED), { until: new Date(2026, 0, 14, 16, 0) });
  assert.deepEqual(chosenTime('2026-01-14T15:45:30', WED), { until: new Date(2026, 0, 14, 15, 45, 30) }, 'seconds, as a step=1 input gives them');
  assert.match(chosenTime('2026-01-14T15:45', WED).error, /future/);
  assert.match(chosenTime('2025-12-01T10:00', WED).error, /future/);
  assert.match(chosenTime('2026-06-01T10:00', WED).error, new RegExp(`${MAX_SNOOZE_DAYS} days`));
  assert.match(chosenTime('', WED).error, /date and a time/);
  assert.match(chosenTime('2026-02-30T10:00', WED).error, /date and a time/, 'a day the month does not have');
  assert.match(chosenTime('tomorrow', WED).error, /date and a time/);
});

test('a time as the datetime-local input takes it', () => {
  assert.equal(toLocalInput(new Date(2026, 0, 5, 7, 3)), '2026-01-05T07:03');
  assert.deepEqual(chosenTime(toLocalInput(new Date(2026, 0, 20, 7, 3)), WED), { until: new Date(2026, 0, 20, 7, 3) });
});
