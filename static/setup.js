// First-run setup: POST /api/setup {token, email, name, password, numbers} → 201 → /agent/messages.
import { post, ApiError } from '/js/api.js';
import { $, setAlert } from '/js/dom.js';

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

function messageFor(err) {
  if (err instanceof ApiError) {
    if (err.status === 404 || err.status === 403) {
      return err.status === 404
        ? 'This setup link is invalid or was already used. Restart the server for a new one, or sign in.'
        : err.message;
    }
    return err.message || `Setup failed (${err.status})`;
  }
  return "Can't reach the server. Check your connection and try again.";
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
  button.disabled = true;
  button.textContent = 'Creating…';
  setAlert(errorEl, '');
  try {
    await post('/api/setup', { token, email, name, password, numbers });
    location.assign('/agent/messages');
  } catch (err) {
    setAlert(errorEl, messageFor(err));
    button.disabled = !token;
    button.textContent = 'Create account';
  }
});
