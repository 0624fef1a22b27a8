// The two dialogs: "Start new conversation" (POST /conversations, then open it) and, in simulator mode
// only, "Simulate incoming SMS" (POST /dev/simulate/inbound: the simulator posts a signed webhook).

import { describeError } from './api.js';
import { h, setAlert, toast } from './dom.js';
import * as fmt from './format.js';

const $ = (sel) => document.querySelector(sel);

function openDialog(dialog) {
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
}

function closeDialog(dialog) {
  if (typeof dialog.close === 'function') dialog.close();
  else dialog.removeAttribute('open');
}

/**
 * init({store, post, agentNumbers, openId, onCreated, onAuthError}) → {checkSimulator}
 * `onCreated(conv)` runs when a conversation was started (it is in the store).
 */
export function init({ store, post, agentNumbers, openId, onCreated, onAuthError }) {
  const nc = {
    button: $('#new-conversation-button'),
    dialog: $('#new-conversation-dialog'),
    form: $('#new-conversation-form'),
    fromField: $('#new-conversation-from-field'),
    from: $('#new-conversation-from'),
    error: $('#new-conversation-error'),
    submit: $('#new-conversation-submit'),
  };
  const sim = {
    button: $('#simulate-button'),
    dialog: $('#simulate-dialog'),
    form: $('#simulate-form'),
    to: $('#simulate-to'),
    error: $('#simulate-error'),
    submit: $('#simulate-submit'),
  };

  const openConversation = () => {
    const id = openId();
    return id ? store.conversations.get(id) : null;
  };

  function fillNumberSelect(select, selected) {
    const nums = agentNumbers();
    select.replaceChildren(...nums.map((n) => h('option', { value: n }, fmt.formatPhone(n))));
    if (selected && nums.includes(selected)) select.value = selected;
    return nums;
  }

  function openNewConversation() {
    nc.form.reset();
    setAlert(nc.error, '');
    const nums = fillNumberSelect(nc.from, openConversation()?.ourNumber);
    nc.fromField.hidden = nums.length < 2;
    nc.submit.disabled = false;
    openDialog(nc.dialog);
    nc.form.elements.phone.focus();
  }

  async function submitNewConversation(e) {
    e.preventDefault();
    const f = nc.form.elements;
    const phone = f.phone.value.trim();
    const name = f.name.value.trim();
    if (!phone) {
      setAlert(nc.error, 'Enter a phone number.');
      f.phone.focus();
      return;
    }
    const payload = { phone };
    if (name) payload.name = name;
    if (!nc.fromField.hidden && f.from.value) payload.from = f.from.value;
    nc.submit.disabled = true;
    setAlert(nc.error, '');
    try {
      const res = await post('/api/crm/sms/conversations', payload);
      const conv = store.upsertConversation(res?.conversation ?? res);
      if (!conv) throw new Error('The server did not return the conversation.');
      closeDialog(nc.dialog);
      onCreated(conv);
    } catch (err) {
      if (onAuthError(err)) return;
      setAlert(nc.error, describeError(err));
    } finally {
      nc.submit.disabled = false;
    }
  }

  function openSimulate() {
    sim.form.reset();
    setAlert(sim.error, '');
    const conv = openConversation();
    fillNumberSelect(sim.to, conv?.ourNumber);
    if (conv?.contact?.phone) sim.form.elements.from.value = conv.contact.phone;
    sim.submit.disabled = false;
    openDialog(sim.dialog);
    (conv ? sim.form.elements.body : sim.form.elements.from).focus();
  }

  async function submitSimulate(e) {
    e.preventDefault();
    const f = sim.form.elements;
    const from = f.from.value.trim();
    const to = f.to.value;
    const body = f.body.value;
    const mediaUrl = f.mediaUrl.value.trim();
    if (!from) return setAlert(sim.error, "Enter the contact's phone number.");
    if (!to) return setAlert(sim.error, 'You have no number to receive on.');
    if (!body.trim() && !mediaUrl) return setAlert(sim.error, 'Enter a message or a media URL.');
    const payload = { from, to, body };
    if (mediaUrl) payload.mediaUrls = [mediaUrl];
    sim.submit.disabled = true;
    setAlert(sim.error, '');
    try {
      await post('/dev/simulate/inbound', payload);
      closeDialog(sim.dialog);
      toast('Incoming SMS simulated');
    } catch (err) {
      if (onAuthError(err)) return;
      setAlert(sim.error, describeError(err));
    } finally {
      sim.submit.disabled = false;
    }
  }

  nc.button.addEventListener('click', openNewConversation);
  sim.button.addEventListener('click', openSimulate);
  nc.form.addEventListener('submit', submitNewConversation);
  sim.form.addEventListener('submit', submitSimulate);
  for (const dialog of [nc.dialog, sim.dialog]) {
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) closeDialog(dialog); // backdrop
      if (e.target.closest('[data-close-dialog]')) closeDialog(dialog);
    });
  }

  return {
    /**
     * Offer "Simulate incoming SMS" when the server runs its Twilio simulator: the server writes its
     * mode into the page (`<body data-twilio>`), so live mode never hears of `/dev/*`.
     */
    checkSimulator() {
      sim.button.hidden = document.body.dataset.twilio !== 'simulated';
    },
  };
}
