// "Someone is typing…": other agents' typing events for a conversation (each shown until it is renewed
// or ends), and our own, sent while the agent types in the composer (renewed every 2 s, ended after 3 s
// without a keystroke, on leaving the conversation and on leaving the page).

const RENEW_MS = 2000;
const IDLE_MS = 3000;
const SHOW_MS = 6000;

/**
 * init({agentId, emit, openId, invalidate}) → {receive, clear, names, render, input, stop}
 */
export function init({ agentId, emit, openId, invalidate }) {
  const el = document.querySelector('#typing-indicator');
  const textEl = document.querySelector('#typing-text');
  const others = new Map(); // conversationId -> Map(agentKey -> {name, timer})
  const ours = { convId: null, lastSent: 0, idleTimer: null };

  function clear(convId, agentKey) {
    const m = others.get(convId);
    const entry = m?.get(agentKey);
    if (!entry) return;
    clearTimeout(entry.timer);
    m.delete(agentKey);
    if (m.size === 0) others.delete(convId);
    invalidate('typing', 'list');
  }

  /** A `typing` event from the server. */
  function receive(p) {
    if (!p || p.conversationId == null) return;
    if (p.agentId != null && String(p.agentId) === String(agentId())) return;
    const convId = String(p.conversationId);
    const agentKey = String(p.agentId ?? p.agentName ?? 'someone');
    if (!p.isTyping) {
      clear(convId, agentKey);
      return;
    }
    let m = others.get(convId);
    if (!m) {
      m = new Map();
      others.set(convId, m);
    }
    const prev = m.get(agentKey);
    if (prev) clearTimeout(prev.timer);
    m.set(agentKey, {
      name: p.agentName || 'Someone',
      timer: setTimeout(() => clear(convId, agentKey), SHOW_MS),
    });
    invalidate('typing', 'list');
  }

  const names = (convId) => {
    const m = others.get(convId);
    return m ? Array.from(m.values(), (x) => x.name) : [];
  };

  function render() {
    const id = openId();
    const who = id ? names(id) : [];
    if (who.length === 0) {
      el.hidden = true;
      textEl.textContent = '';
      return;
    }
    if (who.length === 1) textEl.textContent = `${who[0]} is typing…`;
    else if (who.length === 2) textEl.textContent = `${who[0]} and ${who[1]} are typing…`;
    else textEl.textContent = 'Several people are typing…';
    el.hidden = false;
  }

  function stop() {
    clearTimeout(ours.idleTimer);
    ours.idleTimer = null;
    if (ours.convId) emit('typing', { conversationId: ours.convId, isTyping: false });
    ours.convId = null;
    ours.lastSent = 0;
  }

  /** The agent changed the composer's text in the open conversation. */
  function input(text) {
    const id = openId();
    if (!id) return;
    if (!text.trim()) {
      stop();
      return;
    }
    if (ours.convId && ours.convId !== id) stop();
    const now = Date.now();
    if (now - ours.lastSent >= RENEW_MS) {
      emit('typing', { conversationId: id, isTyping: true });
      ours.lastSent = now;
      ours.convId = id;
    }
    clearTimeout(ours.idleTimer);
    ours.idleTimer = setTimeout(stop, IDLE_MS);
  }

  window.addEventListener('pagehide', stop);
  return { receive, clear, names, render, input, stop };
}
