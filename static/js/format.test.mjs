// Run: node --test static/js/format.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fmt from './format.js';

// Local times, so the tests hold in any time zone; expected texts from the same Intl options.
const NOW = new Date(2026, 0, 14, 15, 45); // Wednesday
const at = (y, m, d, h = 9, min = 30) => new Date(y, m, d, h, min);
const intl = (opts, d) => new Intl.DateTimeFormat(undefined, opts).format(d);

test('phone numbers: North American ones as (555) 123-4567, others by country code and groups', () => {
  assert.equal(fmt.formatPhone('+15551230000'), '+1 (555) 123-0000');
  assert.equal(fmt.formatPhone('+447700900123'), '+44 7700 900123');
  assert.equal(fmt.formatPhone('+442071838750'), '+44 20 7183 8750');
  assert.equal(fmt.formatPhone('+33612345678'), '+33 6 12 34 56 78');
  assert.equal(fmt.formatPhone('+61412345678'), '+61 412 345 678');
  assert.equal(fmt.formatPhone('+61298765432'), '+61 2 9876 5432');
  assert.equal(fmt.formatPhone('+4915123456789'), '+49 151 2345 6789');
  assert.equal(fmt.formatPhone('+8613812345678'), '+86 138 1234 5678');
  assert.equal(fmt.formatPhone('+79123456789'), '+7 912 345 6789');
  assert.equal(fmt.formatPhone('+35312345678'), '+353 1234 5678', 'a three-digit country code');
  assert.equal(fmt.formatPhone('+2348012345678'), '+234 801 234 5678');
  assert.equal(fmt.formatPhone('+3545512345'), '+354 551 2345');
  assert.equal(fmt.formatPhone('+37612345'), '+376 12 345');
  assert.equal(fmt.formatPhone('+1555123000'), '+1 555 123 000', 'a +1 number one digit short is grouped, not misread');
});

test('phone numbers: what is not E.164 is shown as given', () => {
  for (const raw of ['', '5551230000', '+44 7700 900123', '+0123456789', '+12345', '+1234567890123456', 'hello']) {
    assert.equal(fmt.formatPhone(raw), raw);
  }
  assert.equal(fmt.formatPhone(null), '');
  assert.equal(fmt.formatPhone(undefined), '');
});

test('phone numbers: every E.164 length gets groups of at least two digits, none lost', () => {
  for (let n = 6; n <= 15; n += 1) {
    const raw = `+9${'87654321098765'.slice(0, n - 1)}`;
    const shown = fmt.formatPhone(raw);
    assert.equal(shown.replace(/\D/g, ''), raw.slice(1), shown);
    assert.ok(shown.split(' ').slice(1).every((g) => g.length >= 2), shown);
  }
});

test('contact label: the name, else the phone, else Unknown', () => {
  assert.equal(fmt.contactLabel({ contact: { name: '  Jane Doe ', phone: '+15551230000' } }), 'Jane Doe');
  assert.equal(fmt.contactLabel({ contact: { name: '   ', phone: '+15551230000' } }), '+1 (555) 123-0000');
  assert.equal(fmt.contactLabel({ contact: {} }), 'Unknown');
  assert.equal(fmt.contactLabel(null), 'Unknown');
});

test('initials: first letters of the first and last words, never markup or half an emoji', () => {
  const of = (name) => fmt.initials({ contact: { name } });
  assert.equal(of('Jane Doe'), 'JD');
  assert.equal(of('jane'), 'J');
  assert.equal(of('Mary Ann van Dyke'), 'MD');
  assert.equal(of('<b>Jane</b> Doe'), 'BD');
  assert.equal(of('😀 Émile'), 'É');
  assert.equal(of('😀'), '#');
  assert.equal(of('42 Wallaby Way'), '4W');
  assert.equal(fmt.initials({ contact: { phone: '+1555' } }), '#');
});

test('previews: one line of text, media described, ours prefixed', () => {
  assert.equal(fmt.messagePreview(null), 'No messages yet');
  assert.equal(fmt.messagePreview({ body: '  Hello\n\n  there ', direction: 'inbound' }), 'Hello there');
  assert.equal(fmt.messagePreview({ body: 'Yes', direction: 'outbound' }), 'You: Yes');
  assert.equal(fmt.messagePreview({ body: '', media: [{ contentType: 'image/jpeg' }] }), '📷 Photo');
  assert.equal(fmt.messagePreview({ body: '', media: [{ contentType: 'image/png' }, { contentType: 'image/gif' }] }), '📷 2 photos');
  assert.equal(fmt.messagePreview({ body: '', media: [{ contentType: 'image/png' }, { contentType: 'video/mp4' }] }), '📎 Attachment');
  assert.equal(fmt.messagePreview({ body: 'Look', media: [{ contentType: 'image/png' }] }), 'Look');
});

test('list times: today the time, then Yesterday, the weekday, the date, the date with its year', () => {
  assert.equal(fmt.formatListTime(at(2026, 0, 14, 8, 5), NOW), intl({ hour: 'numeric', minute: '2-digit' }, at(2026, 0, 14, 8, 5)));
  assert.equal(fmt.formatListTime(at(2026, 0, 13, 23, 59), NOW), 'Yesterday');
  assert.equal(fmt.formatListTime(at(2026, 0, 9), NOW), intl({ weekday: 'short' }, at(2026, 0, 9)));
  assert.equal(fmt.formatListTime(at(2026, 0, 7), NOW), intl({ month: 'short', day: 'numeric' }, at(2026, 0, 7)));
  assert.equal(fmt.formatListTime(at(2025, 11, 31), NOW), intl({ year: 'numeric', month: 'short', day: 'numeric' }, at(2025, 11, 31)));
  assert.equal(fmt.formatListTime(at(2026, 0, 15), NOW), intl({ hour: 'numeric', minute: '2-digit' }, at(2026, 0, 15)), 'a clock ahead of ours');
  assert.equal(fmt.formatListTime('not a date', NOW), '');
  assert.equal(fmt.formatListTime(at(2026, 0, 14).toISOString(), NOW), intl({ hour: 'numeric', minute: '2-digit' }, at(2026, 0, 14)));
});

test('day separators and day keys follow the local calendar day', () => {
  assert.equal(fmt.formatDayHeader(at(2026, 0, 14, 0, 1), NOW), 'Today');
  assert.equal(fmt.formatDayHeader(at(2026, 0, 13, 23, 59), NOW), 'Yesterday');
  assert.equal(fmt.formatDayHeader(at(2026, 0, 2), NOW), intl({ weekday: 'long', month: 'long', day: 'numeric' }, at(2026, 0, 2)));
  assert.equal(fmt.formatDayHeader(at(2024, 2, 4), NOW), intl({ year: 'numeric', month: 'short', day: 'numeric' }, at(2024, 2, 4)));
  assert.equal(fmt.formatDayHeader('', NOW), '');
  assert.equal(fmt.dayKey(at(2026, 0, 14, 0, 0)), fmt.dayKey(at(2026, 0, 14, 23, 59)));
  assert.notEqual(fmt.dayKey(at(2026, 0, 14)), fmt.dayKey(at(2026, 0, 15)));
  assert.equal(fmt.dayKey('garbage'), 'unknown');
  assert.equal(fmt.formatTime(undefined), '');
});

test('avatar tones: one of six, the same for the same number', () => {
  const tones = new Set();
  for (let i = 0; i < 200; i += 1) {
    const t = fmt.toneFor(`+1555000${i}`);
    assert.ok(Number.isInteger(t) && t >= 0 && t < 6);
    tones.add(t);
  }
  assert.equal(tones.size, 6, 'all six are used');
  assert.equal(fmt.toneFor('+14155550123'), fmt.toneFor('+14155550123'));
});
