// First-run setup: POST /api/setup {token, email, name, password, numbers} → 201 → /agent/messages.
import { post } from '/js/api.js';
import { $, setAlert } from '/js/dom.js';
import { passwordProblem, setupError } from '/js/auth-text.js';

const form = $('#setup-form');
const errorEl = $('#setup-error');
const button = $('#setup-button');
const token = new URLSearchParams(location.search).get('token') || '';

/** "+1 555 123 0000, +15551230001\n+1 (555) 123-0002" → ["+1 555 123 0000", "+15551230001", "+1 (555) 123-0002"] */
export function parseNumbers(text) {
  return String(text || '')
    .split(/[,;\n\r]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

if (!token) {
  setAlert(errorEl, 'This setup link has no token. Use the link printed by the server at start.');
  button.disabled = true;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = form.elements;
  const name = f.name.value.trim();
  const email = f.email.value.trim();
  const password = f.password.value;
  const numbers = parseNumbers(f.numbers.value);
  const missing = [!name && 'your name', !email && 'an email', !password && 'a password', !numbers.length && 'at least one phone number'].filter(Boolean);
  if (missing.length) {
    setAlert(errorEl, `Enter ${missing.join(', ')}.`);
    return;
  }
  const weak = passwordProblem(password);
  if (weak) {
    setAlert(errorEl, weak);
    f.password.focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Creating…';
  setAlert(errorEl, '');
  try {
    await post('/api/setup', { token, email, name, password, numbers });
    location.assign('/agent/messages');
  } catch (err) {
    setAlert(errorEl, setupError(err));
    button.disabled = !token;
    button.textContent = 'Create account';
  }
});
