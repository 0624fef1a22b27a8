// Sign-in page: POST /api/auth/login {email, password} → /agent/messages. Arriving from an inbox whose
// session ended (`?session=ended`), it says so first.
import { post } from '/js/api.js';
import { $, setAlert } from '/js/dom.js';
import { arrivalNotice, loginError } from '/js/auth-text.js';

const form = $('#login-form');
const errorEl = $('#login-error');
const noticeEl = $('#login-notice');
const button = $('#login-button');

setAlert(noticeEl, arrivalNotice(location.search));

function showError(text) {
  if (text) setAlert(noticeEl, '');
  setAlert(errorEl, text);
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    showError(email ? 'Enter your password.' : 'Enter your email address.');
    (email ? form.elements.password : form.elements.email).focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Signing in…';
  showError('');
  try {
    await post('/api/auth/login', { email, password });
    location.assign('/agent/messages');
  } catch (err) {
    showError(loginError(err));
    button.disabled = false;
    button.textContent = 'Sign in';
    form.elements.password.select();
    form.elements.password.focus();
  }
});
