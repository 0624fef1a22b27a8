// The live connection and the badge that shows it. socket.io reconnects by itself (0.5 s at first, 2 s
// at most); this module also reconnects when socket.io would not (the server refused or closed us, the
// browser came back online or to the foreground) and logs the Node original's console lines.

/**
 * init({io, agentId, get, onAuthError, listeners, onConnect, onResync}) → {connect, emit, disconnect}
 * `listeners`: event name → handler, registered on the first connect; `onConnect({reconnect})` runs on
 * every connect (`reconnect`: the page had been connected, or had lost the connection, before);
 * `onResync()` when the server says events may have missed us although the connection stayed up
 * (`resync`: its link to the other servers came back), so the page catches up as after a reconnect.
 */
export function init({ io, agentId, get, onAuthError, listeners, onConnect, onResync }) {
  const badge = document.querySelector('#live-badge');
  let socket = null;
  let listening = false;
  let connectedOnce = false;
  let hadDisconnect = false;
  let manualTimer = null;
  let closed = false;
  let unauthorizedChecks = 0;

  function setLive(live) {
    badge.dataset.state = live ? 'live' : 'connecting';
    badge.textContent = live ? 'Live' : 'Connecting...';
    badge.title = live ? 'Connected: messages arrive in real time' : 'Waiting for the live connection';
  }

  function scheduleManualConnect(delay = 1000) {
    if (manualTimer || closed) return;
    manualTimer = setTimeout(() => {
      manualTimer = null;
      if (socket && !socket.connected && !closed) socket.connect();
    }, delay);
  }

  async function onUnauthorizedHandshake() {
    // The socket says our session is not valid. Confirm with the REST API, so that a socket-only
    // problem (e.g. an Origin the socket refuses) does not bounce us between /login and here forever.
    if (unauthorizedChecks >= 3) {
      scheduleManualConnect(30000);
      return;
    }
    try {
      await get('/api/auth/me');
      unauthorizedChecks += 1;
      console.warn('[useSocket] handshake refused although the session is valid; retrying');
      scheduleManualConnect(Math.min(30000, 1000 * 2 ** unauthorizedChecks));
    } catch (err) {
      if (onAuthError(err)) return;
      scheduleManualConnect(2000);
    }
  }

  function connect() {
    socket = io({
      transports: ['websocket'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 2000,
      withCredentials: true,
    });

    socket.on('connect', () => {
      console.log('[useSocket] ✅ Connected to server');
      console.log('[useSocket] Joined room: user:' + agentId());
      unauthorizedChecks = 0;
      setLive(true);
      if (!listening) {
        console.log('[Messages] Setting up WebSocket listeners');
        listening = true;
        for (const [event, handler] of Object.entries(listeners)) socket.on(event, handler);
      }
      const reconnect = connectedOnce || hadDisconnect;
      connectedOnce = true;
      hadDisconnect = false;
      onConnect({ reconnect });
    });

    socket.on('resync', () => {
      console.log('[useSocket] Server asked to catch up');
      onResync();
    });

    socket.on('disconnect', (reason) => {
      setLive(false);
      hadDisconnect = true;
      console.log('[useSocket] Disconnected:', reason);
      // The server closed us on purpose: socket.io will not retry by itself.
      if (reason === 'io server disconnect') scheduleManualConnect();
    });

    socket.on('connect_error', (err) => {
      setLive(false);
      hadDisconnect = true;
      const refusal = err?.message || String(err);
      if (refusal === 'unauthorized') {
        onUnauthorizedHandshake();
        return;
      }
      if (refusal === 'too_many_connections') {
        // Another tab or device must close first: ask again now and then, not every second.
        console.warn('[useSocket] too many open tabs or devices for this agent; retrying in 15 s');
        badge.title = 'Too many open tabs or devices: close one to get live updates here';
        scheduleManualConnect(15000);
        return;
      }
      // A refusal from the server's middleware (e.g. "unavailable" while the database is down) is not
      // retried by socket.io-client (socket.active is false): retry ourselves. Transport errors are.
      if (!socket.active) scheduleManualConnect();
    });
  }

  window.addEventListener('online', () => {
    // connect() alone waits out socket.io's pending retry delay; restarting is immediate.
    if (socket && !socket.connected && !closed) {
      socket.disconnect();
      socket.connect();
    }
  });
  window.addEventListener('offline', () => {
    // Show it at once instead of waiting for the heartbeat timeout; socket.io then reconnects by itself.
    if (socket && socket.connected) socket.io.engine?.close();
    setLive(false);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    if (socket && !socket.connected && !socket.active && !closed) socket.connect();
  });

  return {
    connect,
    connected: () => Boolean(socket?.connected),
    emit(event, payload) {
      if (socket && socket.connected) socket.emit(event, payload);
    },
    /** For good: the page is leaving. */
    disconnect() {
      closed = true;
      clearTimeout(manualTimer);
      try {
        socket?.disconnect();
      } catch {
        /* already closed */
      }
    },
  };
}
