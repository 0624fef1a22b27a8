// Sign-in page: POST /api/auth/login {email, password} → /agent/messages.
import { post, ApiError } from '/js/api.js';
import { $, setAlert } from '/js/dom.js';

const form = $('#login-form');
const errorEl = $('#login-error');
const button = $('#login-button');

function messageFor(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Wrong email or password';
    if (err.status === 429) return 'Too many attempts, wait a minute';
    return err.message || `Sign-in failed (${err.status})`;
  }
  return "Can't reach the server. Check your connection and try again.";
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    setAlert(errorEl, 'Enter your email and password.');
    (email ? form.elements.password : form.elements.email).focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Signing in…';
  setAlert(errorEl, '');
  try {
    await post('/api/auth/login', { email, password });
    location.assign('/agent/messages');
  } catch (err) {
    setAlert(errorEl, messageFor(err));
    button.disabled = false;
    button.textContent = 'Sign in';
    form.elements.password.select();
    form.elements.password.focus();
  }
});
