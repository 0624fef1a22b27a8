// Leaving the inbox: when the agent logs out, and when the server says the session is gone (a 401:
// it expired, was ended in another tab, or an admin disabled the agent; the sign-in page then says so).
// Before the sign-in page opens, everything the page stored is forgotten and the live parts (socket,
// send queue) are stopped, so no queued message text outlives the session in this browser.

import { ApiError, describeError } from './api.js';

/**
 * init({post, storage, stop, navigate, toast, button}) → {leave, handleAuthError, logout}
 * `stop()` ends the socket and the send queue; `button` is the "Log out" button (optional).
 */
export function init({ post, storage, stop, navigate, toast, button = null }) {
  let leaving = false;

  /** To the sign-in page; `ended`: the server ended the session, not the agent. */
  function leave({ ended = false } = {}) {
    if (leaving) return;
    leaving = true;
    stop();
    storage.forget();
    navigate(ended ? '/login?session=ended' : '/login');
  }

  /** The errors every call site treats alike. True when the page is leaving. */
  function handleAuthError(err) {
    if (err instanceof ApiError && err.status === 401) {
      leave({ ended: true });
      return true;
    }
    return false;
  }

  /** POST /api/auth/logout; only a server that ended the session (or never had it) lets us go. */
  async function logout() {
    if (button) button.disabled = true;
    try {
      await post('/api/auth/logout');
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        if (button) button.disabled = false;
        toast(`Could not log out: ${describeError(err)}`, 'error');
        return;
      }
    }
    leave();
  }

  button?.addEventListener('click', logout);
  return { leave, handleAuthError, logout };
}
