// An invited agent's page (/invite?token=…): POST /api/invite {token, password} → 200, signed in by
// cookie → /agent/messages.
import { post, ApiError } from '/js/api.js';
import { $, setAlert } from '/js/dom.js';

const form = $('#invite-form');
const errorEl = $('#invite-error');
const button = $('#invite-button');
const token = new URLSearchParams(location.search).get('token') || '';

function messageFor(err) {
  if (err instanceof ApiError) {
    if (err.status === 404) return 'This invite link is invalid, used or expired. Ask your admin for a new one.';
    return err.message || `Could not set the password (${err.status})`;
  }
  return "Can't reach the server. Check your connection and try again.";
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const password = form.elements.password.value;
  if (password.length < 8) {
    setAlert(errorEl, 'Choose a password of at least 8 characters.');
    return;
  }
  if (password !== form.elements.again.value) {
    setAlert(errorEl, 'The two passwords differ.');
    return;
  }
  button.disabled = true;
  setAlert(errorEl, '');
  try {
    await post('/api/invite', { token, password });
    location.assign('/agent/messages');
  } catch (err) {
    setAlert(errorEl, messageFor(err));
    button.disabled = false;
  }
});
