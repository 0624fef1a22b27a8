// An invited agent's page (/invite?token=…): POST /api/invite {token, password} → 200, signed in by
// cookie → /agent/messages.
import { post } from '/js/api.js';
import { $, setAlert } from '/js/dom.js';
import { inviteError, passwordProblem } from '/js/auth-text.js';

const form = $('#invite-form');
const errorEl = $('#invite-error');
const button = $('#invite-button');
const token = new URLSearchParams(location.search).get('token') || '';

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const password = form.elements.password.value;
  const problem = passwordProblem(password, form.elements.again.value);
  if (problem) {
    setAlert(errorEl, problem);
    form.elements.password.focus();
    return;
  }
  button.disabled = true;
  setAlert(errorEl, '');
  try {
    await post('/api/invite', { token, password });
    location.assign('/agent/messages');
  } catch (err) {
    setAlert(errorEl, inviteError(err));
    button.disabled = false;
  }
});
