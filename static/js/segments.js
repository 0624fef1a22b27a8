// SMS length and segment counting (pure, no DOM): GSM-7 vs UCS-2, as carriers and Twilio count them.
//
// GSM-7 (3GPP TS 23.038 default alphabet): a basic-set character takes 1 septet, an extension-table
// character (form feed, ^ { } \ [ ~ ] | €) takes 2 (escape + char). One SMS holds 160 septets; a
// multipart message carries a User Data Header, leaving 153 septets per part, and an escape pair is
// never split across parts.
// UCS-2: as soon as ONE character is outside GSM-7 the whole message is UCS-2: 70 UTF-16 code units
// alone, 67 per part; a surrogate pair (emoji) is never split across parts.

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

/** True when every character of `text` is in the GSM-7 basic or extension table. */
export function isGsm7(text) {
  for (const ch of String(text ?? '')) {
    if (!GSM_BASIC.has(ch) && !GSM_EXTENDED.has(ch)) return false;
  }
  return true;
}

/**
 * countSegments(text) -> {encoding: 'GSM-7'|'UCS-2', length, segments, perSegment}
 * length: septets (GSM-7) or UTF-16 code units (UCS-2); perSegment: 160/70 for a single SMS,
 * 153/67 once the message needs several parts.
 */
export function countSegments(text) {
  const s = String(text ?? '');
  const gsm = isGsm7(s);
  const encoding = gsm ? GSM7 : UCS2;
  const units = [];
  for (const ch of s) {
    units.push(gsm ? (GSM_EXTENDED.has(ch) ? 2 : 1) : ch.length);
  }
  const { single, multi } = LIMITS[encoding];
  const length = units.reduce((a, b) => a + b, 0);
  if (length === 0) return { encoding, length: 0, segments: 0, perSegment: single };
  if (length <= single) return { encoding, length, segments: 1, perSegment: single };
  let segments = 1;
  let used = 0;
  for (const u of units) {
    if (used + u > multi) {
      segments += 1;
      used = 0;
    }
    used += u;
  }
  return { encoding, length, segments, perSegment: multi };
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
