// Hearing about new messages while looking elsewhere: a system notification for an inbound message in a
// conversation that is not open, or while the tab is hidden (one per conversation: the tag replaces the
// previous one); clicking it brings the tab forward and opens the conversation. A short quiet beep as a
// second choice, off by default. The browser's permission is asked only when the agent turns the bell
// on, never on load. Both choices are kept per browser (they hold no message text, so signing out
// keeps them).

import * as fmt from './format.js';

/** localStorage key of the choices; outside `smsdesk.` so that signing out does not forget them. */
export const PREFS_KEY = 'smsdesk-prefs.notifications';

const DEFAULTS = Object.freeze({ notify: false, sound: false });

/** The saved choices, or the defaults (both off). */
export function readPrefs(backend) {
  try {
    const raw = backend?.getItem(PREFS_KEY);
    const saved = raw ? JSON.parse(raw) : {};
    return { notify: saved.notify === true, sound: saved.sound === true };
  } catch {
    return { ...DEFAULTS };
  }
}

export function writePrefs(backend, prefs) {
  try {
    backend?.setItem(PREFS_KEY, JSON.stringify({ notify: Boolean(prefs.notify), sound: Boolean(prefs.sound) }));
  } catch {
    /* storage disabled: the choice lasts as long as the page */
  }
}

/** Whether `message` (pushed live) deserves a notification now. */
export function shouldNotify({ message, openId, hidden }) {
  if (!message || message.direction !== 'inbound') return false;
  return hidden || String(message.conversationId) !== String(openId ?? '');
}

/** The notification for `message` in `conv`: the contact's name or number, the first line of the text. */
export function notificationFor(message, conv) {
  const title = conv ? fmt.contactLabel(conv) : fmt.formatPhone(message.from) || 'New message';
  const firstLine = String(message.body ?? '').split(/\r?\n/).find((l) => l.trim()) ?? '';
  const body = firstLine.trim() || (message.media?.length ? 'Sent an attachment' : '');
  return { title, options: { body, tag: `conv-${message.conversationId}` } };
}

/** A short, quiet two-tone beep through WebAudio. */
function beep(AudioContextClass) {
  if (!AudioContextClass) return;
  try {
    const ctx = new AudioContextClass();
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.05, ctx.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.25);
    gain.connect(ctx.destination);
    const osc = ctx.createOscillator();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, ctx.currentTime);
    osc.frequency.setValueAtTime(660, ctx.currentTime + 0.12);
    osc.connect(gain);
    osc.start();
    osc.stop(ctx.currentTime + 0.26);
    osc.onended = () => ctx.close();
  } catch {
    /* no audio output: nothing to play */
  }
}

/**
 * init({store, openId, select, storage, toast}) → {onMessage, prefs}
 * `storage` is the browser's localStorage (or null); `select(id)` opens a conversation.
 */
export function init({ store, openId, select, storage, toast }) {
  const bell = document.querySelector('#notify-toggle');
  const sound = document.querySelector('#sound-toggle');
  let prefs = readPrefs(storage);
  const Notify = () => window.Notification;

  function permission() {
    return Notify()?.permission ?? 'unsupported';
  }

  function show() {
    const on = prefs.notify && permission() === 'granted';
    bell.setAttribute('aria-pressed', String(on));
    bell.title = on
      ? 'Notifications on (click to turn off)'
      : permission() === 'denied'
        ? 'Notifications are blocked in this browser’s site settings'
        : 'Notify me of new messages';
    bell.dataset.state = on ? 'on' : 'off';
    sound.setAttribute('aria-pressed', String(prefs.sound));
    sound.title = prefs.sound ? 'Sound on (click to mute)' : 'Play a sound for new messages';
    sound.dataset.state = prefs.sound ? 'on' : 'off';
  }

  function save(next) {
    prefs = { ...prefs, ...next };
    writePrefs(storage, prefs);
    show();
  }

  bell.addEventListener('click', async () => {
    if (prefs.notify && permission() === 'granted') {
      save({ notify: false });
      return;
    }
    const N = Notify();
    if (!N) {
      toast('This browser cannot show notifications.', 'error');
      return;
    }
    const answer = N.permission === 'granted' ? 'granted' : await N.requestPermission();
    if (answer !== 'granted') {
      save({ notify: false });
      toast('Notifications are blocked; allow them in the browser’s site settings.', 'error');
      return;
    }
    save({ notify: true });
  });
  sound.addEventListener('click', () => save({ sound: !prefs.sound }));
  show();

  return {
    prefs: () => ({ ...prefs }),
    /** A message pushed live: notify (and beep) if it is news the agent is not looking at. */
    onMessage(message) {
      const hidden = document.visibilityState === 'hidden';
      if (!shouldNotify({ message, openId: openId(), hidden })) return;
      if (prefs.sound) beep(window.AudioContext || window.webkitAudioContext);
      const N = Notify();
      if (!prefs.notify || !N || N.permission !== 'granted') return;
      const id = String(message.conversationId);
      const { title, options } = notificationFor(message, store.conversations.get(id));
      try {
        const n = new N(title, options);
        n.onclick = () => {
          window.focus();
          select(id);
          n.close?.();
        };
      } catch (err) {
        console.warn('[Messages] could not show a notification:', err);
      }
    },
  };
}
