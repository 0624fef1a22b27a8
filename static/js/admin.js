// The "Agents" view, for admins only (docs/api.md, "Administration"): a header button opens a table of the agents
// (name, email, role, numbers, status) with an invite dialog that shows the one-time link with a copy
// button, an edit dialog (name, numbers, role), and disable / enable with a confirmation. An agent who
// is not an admin never gets the button nor the markup. Everything is text (h()/textContent), never HTML.
// The rules (what a row offers, what a form sends) live in admin-model.js.

import { h, setAlert } from './dom.js';
import { rowModel, sortAgents, inviteBody, editBody, describeAdminError } from './admin-model.js';

function openDialog(dialog) {
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
}

function closeDialog(dialog) {
  if (typeof dialog.close === 'function') dialog.close();
  else dialog.removeAttribute('open');
}

const field = (label, input) => h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input);

function roleSelect(name) {
  return h('select', { name }, h('option', { value: 'agent' }, 'Agent'), h('option', { value: 'admin' }, 'Admin'));
}

/** A dialog holding a form; `submit(form)` runs on submit, `Cancel` and Esc close it. */
function formDialog(id, title, fields, submitLabel, submit) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, submitLabel);
  const form = h(
    'form',
    { class: 'dialog-form', novalidate: true },
    h('h2', { id: `${id}-title` }, title),
    ...fields,
    error,
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => closeDialog(dialog) }, 'Cancel'),
      button,
    ),
  );
  const dialog = h('dialog', { id, class: 'dialog', 'aria-labelledby': `${id}-title` }, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setAlert(error, '');
    button.disabled = true;
    try {
      await submit(form, (text) => setAlert(error, text));
    } finally {
      button.disabled = false;
    }
  });
  document.body.append(dialog);
  return { dialog, form, error, button };
}

/**
 * init({me, get, api, formatPhone, onAuthError, toast}) → {open, refresh} or null when `me` is not
 * an admin. `api(method, path, body)` is api.js's.
 */
export function init({ me, get, api, formatPhone, onAuthError, toast }) {
  if (me?.role !== 'admin') return null;
  let agents = [];

  const failed = (err, say) => {
    if (onAuthError(err)) return;
    say(describeAdminError(err));
  };

  // The table.
  const tbody = h('tbody', { id: 'agents-rows' });
  const listError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const view = h(
    'dialog',
    { id: 'agents-dialog', class: 'dialog admin-dialog', 'aria-labelledby': 'agents-title' },
    h(
      'div',
      { class: 'admin-header' },
      h('h2', { id: 'agents-title' }, 'Agents'),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'invite-agent-button', onclick: () => openInvite() }, '+ Invite agent'),
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => closeDialog(view) }, 'Close'),
    ),
    listError,
    h(
      'div',
      { class: 'admin-table-scroller' },
      h(
        'table',
        { class: 'agents-table' },
        h('thead', null, h('tr', null, ...['Name', 'Email', 'Role', 'Numbers', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))),
        tbody,
      ),
    ),
  );
  document.body.append(view);

  function renderRows() {
    const rows = sortAgents(agents).map((agent) => {
      const row = rowModel(agent, agents, formatPhone);
      const actions = [
        h('button', { type: 'button', class: 'btn btn-link', onclick: () => openEdit(agent) }, 'Edit'),
        row.canReinvite && h('button', { type: 'button', class: 'btn btn-link', onclick: () => reinvite(agent) }, 'New invite link'),
        row.canDisable && h('button', { type: 'button', class: 'btn btn-link btn-danger', onclick: () => confirmDisable(agent) }, 'Disable'),
        row.canEnable && h('button', { type: 'button', class: 'btn btn-link', onclick: () => setDisabled(agent, false) }, 'Enable'),
      ];
      return h(
        'tr',
        { dataset: { id: row.id, status: row.status } },
        h('td', { class: 'agent-cell-name', dataset: { label: 'Name' } }, row.name),
        h('td', { dataset: { label: 'Email' } }, row.email),
        h('td', { dataset: { label: 'Role' } }, row.role),
        h('td', { class: 'agent-cell-numbers', dataset: { label: 'Numbers' } }, row.numbers),
        h('td', { dataset: { label: 'Status' } }, h('span', { class: `status-pill status-${row.status}` }, row.statusLabel)),
        h('td', { class: 'agent-cell-actions' }, ...actions),
      );
    });
    tbody.replaceChildren(...rows);
  }

  async function refresh() {
    try {
      agents = (await get('/api/admin/agents')).agents || [];
      setAlert(listError, '');
      renderRows();
    } catch (err) {
      failed(err, (text) => setAlert(listError, text));
    }
  }

  /** Puts the agent the server answered into the list. */
  function replace(agent) {
    const i = agents.findIndex((a) => String(a.id) === String(agent.id));
    if (i >= 0) agents[i] = agent;
    else agents.push(agent);
    renderRows();
  }

  // Invite: the form, then the link with a copy button.
  const linkInput = h('input', { type: 'text', readonly: true, id: 'invite-link', 'aria-label': 'Invite link' });
  const copyButton = h('button', { type: 'button', class: 'btn btn-secondary', id: 'copy-invite-link', onclick: () => copyLink() }, 'Copy link');
  const linkDialog = h(
    'dialog',
    { id: 'invite-link-dialog', class: 'dialog', 'aria-labelledby': 'invite-link-title' },
    h(
      'div',
      { class: 'dialog-form' },
      h('h2', { id: 'invite-link-title' }, 'Invite link'),
      h('p', { class: 'dialog-note' }, 'Send this link to the new agent. It works once, for 7 days; they choose their password there.'),
      h('div', { class: 'invite-link-row' }, linkInput, copyButton),
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn btn-primary', onclick: () => closeDialog(linkDialog) }, 'Done')),
    ),
  );
  document.body.append(linkDialog);

  async function copyLink() {
    try {
      await navigator.clipboard.writeText(linkInput.value);
    } catch {
      // No clipboard API (plain http off localhost): leave the text selected for Ctrl+C.
      linkInput.select();
      toast('Press Ctrl+C (⌘C) to copy the selected link.');
      return;
    }
    copyButton.textContent = 'Copied';
    setTimeout(() => {
      copyButton.textContent = 'Copy link';
    }, 1500);
  }

  function showLink(url) {
    linkInput.value = url;
    copyButton.textContent = 'Copy link';
    openDialog(linkDialog);
    linkInput.select();
  }

  const invite = formDialog(
    'invite-dialog',
    'Invite an agent',
    [
      field('Name', h('input', { name: 'name', type: 'text', autocomplete: 'off', required: true })),
      field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'off', required: true })),
      field('Twilio numbers', h('textarea', { name: 'numbers', rows: '2', placeholder: '+1 555 123 0000' })),
      field('Role', roleSelect('role')),
    ],
    'Create invite',
    async (form, say) => {
      const f = form.elements;
      const { body, error } = inviteBody({ email: f.email.value, name: f.name.value, numbers: f.numbers.value, role: f.role.value });
      if (error) return say(error);
      try {
        const invited = await api('POST', '/api/admin/agents', body);
        replace(invited.agent);
        closeDialog(invite.dialog);
        showLink(invited.inviteUrl);
      } catch (err) {
        failed(err, say);
      }
    },
  );

  function openInvite() {
    invite.form.reset();
    setAlert(invite.error, '');
    openDialog(invite.dialog);
  }

  async function reinvite(agent) {
    try {
      const invited = await api('POST', `/api/admin/agents/${encodeURIComponent(agent.id)}/invite`, {});
      replace(invited.agent);
      showLink(invited.inviteUrl);
    } catch (err) {
      failed(err, (text) => setAlert(listError, text));
    }
  }

  // Edit.
  let editing = null;
  const edit = formDialog(
    'edit-agent-dialog',
    'Edit agent',
    [
      field('Name', h('input', { name: 'name', type: 'text', autocomplete: 'off', required: true })),
      field('Twilio numbers', h('textarea', { name: 'numbers', rows: '3' })),
      field('Role', roleSelect('role')),
    ],
    'Save',
    async (form, say) => {
      const f = form.elements;
      const { body, error } = editBody(editing, { name: f.name.value, numbers: f.numbers.value, role: f.role.value });
      if (error) return say(error);
      if (!Object.keys(body).length) return closeDialog(edit.dialog);
      try {
        replace(await api('PATCH', `/api/admin/agents/${encodeURIComponent(editing.id)}`, body));
        closeDialog(edit.dialog);
        toast('Agent saved.');
      } catch (err) {
        failed(err, say);
      }
    },
  );

  function openEdit(agent) {
    editing = agent;
    const f = edit.form.elements;
    f.name.value = agent.name || '';
    f.numbers.value = (agent.numbers || []).join('\n');
    f.role.value = agent.role;
    setAlert(edit.error, '');
    openDialog(edit.dialog);
  }

  // Disable (confirmed) and enable.
  let disabling = null;
  const confirmText = h('p', { class: 'dialog-note', id: 'disable-agent-text' });
  const confirm = formDialog('disable-agent-dialog', 'Disable agent?', [confirmText], 'Disable', async (_form, say) => {
    try {
      await setDisabled(disabling, true);
      closeDialog(confirm.dialog);
    } catch (err) {
      failed(err, say);
    }
  });
  confirm.button.classList.add('btn-danger');

  function confirmDisable(agent) {
    disabling = agent;
    confirmText.textContent = `${agent.name} (${agent.email}) will be signed out everywhere at once and can't sign in until enabled again.`;
    setAlert(confirm.error, '');
    openDialog(confirm.dialog);
  }

  async function setDisabled(agent, disabled) {
    const call = api('PATCH', `/api/admin/agents/${encodeURIComponent(agent.id)}`, { disabled });
    if (disabled) {
      replace(await call);
      return;
    }
    try {
      replace(await call);
    } catch (err) {
      failed(err, (text) => setAlert(listError, text));
    }
  }

  const button = h('button', { type: 'button', class: 'btn btn-ghost', id: 'agents-button' }, 'Agents');
  button.addEventListener('click', () => {
    setAlert(listError, '');
    openDialog(view);
    refresh();
  });
  const logout = document.querySelector('#logout-button');
  logout.parentElement.insertBefore(button, logout);

  return { open: () => button.click(), refresh };
}
