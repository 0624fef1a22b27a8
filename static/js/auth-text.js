// What the sign-in, setup and invite pages say: the password rule, before it is broken, and every
// error as a sentence a person would write, never an API message's field name. Pure, so node tests it.

import { ApiError } from './api.js';

export const MIN_PASSWORD = 8;
export const PASSWORD_RULE = `Choose a password of at least ${MIN_PASSWORD} characters.`;
const OFFLINE = "Can't reach the server. Check your connection and try again.";

/** "too many failed attempts: try again in 3 minutes" → "Too many failed attempts: try again in 3 minutes." */
export function sentence(text) {
  const t = String(text ?? '')
    .trim()
    .replace(/`([^`]*)`/g, '“$1”');
  if (!t) return '';
  const capital = t[0].toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/** Why a new password (typed twice when `again` is given) cannot be used, or '' when it can. */
export function passwordProblem(password, again) {
  if (Array.from(String(password ?? '')).length < MIN_PASSWORD) return PASSWORD_RULE;
  if (again !== undefined && password !== again) return 'The two passwords differ: type the same one twice.';
  return '';
}

/** A 422 naming one of the agent's fields (email, name, password, numbers), said for a person. */
function fieldError(message) {
  const m = String(message ?? '');
  if (m.startsWith('password')) return PASSWORD_RULE;
  if (m.startsWith('email')) return 'Enter a valid email address, such as ana@example.com.';
  if (m.startsWith('name')) return 'Enter your name, up to 100 characters.';
  if (m.startsWith('numbers')) {
    const bad = /`([^`]*)`/.exec(m);
    const example = 'Write each with its country code, such as +1 555 123 0000, one per line.';
    return bad ? `“${bad[1]}” is not a phone number. ${example}` : `Enter 1 to 50 phone numbers. ${example}`;
  }
  return sentence(m);
}

/** The sign-in form's error. */
export function loginError(err) {
  if (!(err instanceof ApiError)) return OFFLINE;
  if (err.code === 'account_disabled') return sentence(err.message);
  if (err.status === 401) return 'Wrong email or password.';
  return sentence(err.message) || `Sign-in failed (error ${err.status}).`;
}

/** The first-run setup form's error. */
export function setupError(err) {
  if (!(err instanceof ApiError)) return OFFLINE;
  if (err.status === 404) return 'This setup link was used already or is from an earlier run of the server. Sign in, or restart the server for a new link.';
  if (err.status === 422) return fieldError(err.message);
  return sentence(err.message) || `Setup failed (error ${err.status}).`;
}

/** The invite form's error. */
export function inviteError(err) {
  if (!(err instanceof ApiError)) return OFFLINE;
  if (err.status === 404) return 'This invite link was used already or has expired. Ask your admin for a new one.';
  if (err.status === 422) return fieldError(err.message);
  return sentence(err.message) || `Could not set the password (error ${err.status}).`;
}

/** What the sign-in page says on arrival, from its query string (`?session=ended`: the inbox lost its session). */
export function arrivalNotice(search) {
  if (new URLSearchParams(search).get('session') === 'ended') {
    return 'Your session has ended: it expired, you signed out in another tab, or an admin disabled your account. Sign in to continue.';
  }
  return '';
}
