// SMS length and segment counting (pure, no DOM), as carriers count them. The same rule as
// src/sms.rs (`split`); both are tested against tests/fixtures/segments.json.
//
// GSM-7 (GSM 03.38) when every character is in the basic set or the extension table; an extension
// character (form feed, ^ { } \ [ ~ ] | €) is the escape plus one septet: 2. The escape (0x1B)
// itself is not text anyone types: a body holding it goes as UCS-2, in UTF-16 code units.
// One SMS holds 160 septets or 70 units; a longer body goes in parts of 153 or 67 (the rest of
// each part is the header that joins them). A character is never cut in two: an escape pair or a
// surrogate pair (an emoji) that would straddle two parts starts the next one.

export const GSM7 = 'GSM-7';
export const UCS2 = 'UCS-2';
export const MAX_BODY_CHARS = 1600;

const GSM_BASIC = new Set(Array.from(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ' +
  ' !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§' +
  '¿abcdefghijklmnopqrstuvwxyzäöñüà'
));
const GSM_EXTENDED = new Set(Array.from('\f^{}\\[~]|€'));

const LIMITS = {
  [GSM7]: { single: 160, multi: 153 },
  [UCS2]: { single: 70, multi: 67 },
};

/** Septets of one character in GSM-7, or 0 when it is not GSM-7. */
function septets(ch) {
  if (GSM_BASIC.has(ch)) return 1;
  if (GSM_EXTENDED.has(ch)) return 2;
  return 0;
}

/**
 * countSegments(text) -> {encoding: 'GSM-7'|'UCS-2', length, segments, perSegment, parts}
 * length: septets (GSM-7) or UTF-16 code units (UCS-2); parts: the units in each part;
 * perSegment: 160/70 for a single SMS, 153/67 once the message needs several parts.
 */
export function countSegments(text) {
  const chars = Array.from(String(text ?? ''));
  const gsm = chars.every((ch) => septets(ch) > 0);
  const encoding = gsm ? GSM7 : UCS2;
  const units = chars.map((ch) => (gsm ? septets(ch) : ch.length));
  const { single, multi } = LIMITS[encoding];
  const length = units.reduce((a, b) => a + b, 0);
  const parts = [];
  if (length > single) {
    for (const u of units) {
      if (parts.length > 0 && parts[parts.length - 1] + u <= multi) parts[parts.length - 1] += u;
      else parts.push(u);
    }
  } else if (length > 0) {
    parts.push(length);
  }
  return { encoding, length, segments: parts.length, perSegment: parts.length > 1 ? multi : single, parts };
}

/** Characters as the server counts them for the 1–1600 rule (Unicode code points). */
export function bodyLength(text) {
  let n = 0;
  for (const _ of String(text ?? '')) n += 1;
  return n;
}

/** "42 / 160 · 1 segment", "161 / 306 · 2 segments", "0 / 160 · 0 segments". */
export function counterLabel(info) {
  const capacity = info.segments > 1 ? info.segments * info.perSegment : info.perSegment;
  const noun = info.segments === 1 ? 'segment' : 'segments';
  return `${info.length} / ${capacity} · ${info.segments} ${noun}`;
}
