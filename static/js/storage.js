// What the page keeps in localStorage, per agent (`smsdesk.<name>.<agentId>`): the send queue, whose
// entries hold the text of messages the server has not accepted yet, and the ids of failed messages
// already retried. Signing out forgets all of it, for every agent, so the next person at this browser
// finds nothing.

export const PREFIX = 'smsdesk.';

/** The browser's localStorage, or null where it is refused (then the queue lives in memory only). */
export function browserStorage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/** init({backend, agentId}) → {read, write, forget}; `agentId()` is the signed-in agent's id. */
export function init({ backend, agentId }) {
  let forgotten = false;
  const keyOf = (name) => `${PREFIX}${name}.${agentId() ?? 'anon'}`;

  return {
    read(name, fallback) {
      try {
        const raw = backend.getItem(keyOf(name));
        return raw ? JSON.parse(raw) : fallback;
      } catch {
        return fallback;
      }
    },

    write(name, value) {
      if (forgotten) return; // a send still in flight while the page leaves must not write its entry back
      try {
        backend.setItem(keyOf(name), JSON.stringify(value));
      } catch {
        /* storage full or disabled: keep going in memory */
      }
    },

    /** Remove every key of ours, whichever agent wrote it, and write nothing from now on. */
    forget() {
      forgotten = true;
      try {
        const keys = [];
        for (let i = 0; i < backend.length; i += 1) {
          const key = backend.key(i);
          if (key?.startsWith(PREFIX)) keys.push(key);
        }
        for (const key of keys) backend.removeItem(key);
      } catch {
        /* storage disabled: nothing was kept */
      }
    },
  };
}
