// The admin view's rules, without the DOM (tested in admin-model.test.mjs): what a row of the agents
// table shows, what an invite or edit form sends, what an error from /api/admin/* means to a person,
// and which actions the page offers on which agent. The server decides; this only avoids offering
// what it would refuse.

/** "+1 555 123 0000, +15551230001\n+1 (555) 123-0002" → ["+1 555 123 0000", "+15551230001", "+1 (555) 123-0002"] */
export function parseNumbers(text) {
  return String(text || '')
    .split(/[,;\n\r]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** 'invited' (no password chosen yet), 'disabled', or 'active'. */
export function statusOf(agent) {
  if (agent.disabled) return 'disabled';
  if (agent.invitePending) return 'invited';
  return 'active';
}

export const STATUS_LABELS = { active: 'Active', invited: 'Invite pending', disabled: 'Disabled' };
export const ROLE_LABELS = { admin: 'Admin', agent: 'Agent' };

/** Active admins other than `agent`. */
function otherActiveAdmins(agents, agent) {
  return agents.filter((a) => a.id !== agent.id && a.role === 'admin' && !a.disabled).length;
}

/** Whether `agent` is the last active admin: they can be neither demoted nor disabled. */
export function isLastAdmin(agents, agent) {
  return agent.role === 'admin' && !agent.disabled && otherActiveAdmins(agents, agent) === 0;
}

/** What the table shows for `agent`: text only, with `formatPhone` for the numbers. */
export function rowModel(agent, agents, formatPhone = (n) => n) {
  const status = statusOf(agent);
  const lastAdmin = isLastAdmin(agents, agent);
  return {
    id: String(agent.id),
    name: agent.name || '',
    email: agent.email || '',
    role: ROLE_LABELS[agent.role] || agent.role,
    numbers: (agent.numbers || []).map(formatPhone).join(', '),
    status,
    statusLabel: STATUS_LABELS[status],
    canDisable: !agent.disabled && !lastAdmin,
    canEnable: !!agent.disabled,
    canReinvite: !!agent.invitePending && !agent.disabled,
    lastAdmin,
  };
}

/** Agents sorted for the table: active first, then invited, then disabled; by name within each. */
export function sortAgents(agents) {
  const rank = { active: 0, invited: 1, disabled: 2 };
  return [...agents].sort(
    (a, b) =>
      rank[statusOf(a)] - rank[statusOf(b)] ||
      String(a.name).localeCompare(String(b.name), undefined, { sensitivity: 'base' }) ||
      String(a.id).localeCompare(String(b.id)),
  );
}

/** The invite form → the body of POST /api/admin/agents, or {error} naming what is missing. */
export function inviteBody({ email, name, numbers, role }) {
  const body = {
    email: String(email || '').trim(),
    name: String(name || '').trim(),
    numbers: parseNumbers(numbers),
    role: role === 'admin' ? 'admin' : 'agent',
  };
  const missing = [!body.name && 'a name', !body.email && 'an email', !body.numbers.length && 'at least one number'].filter(Boolean);
  return missing.length ? { error: `Enter ${missing.join(', ')}.` } : { body };
}

/** The edit form → the body of PATCH /api/admin/agents/:id with only what changed, or {error}. */
export function editBody(agent, { name, numbers, role }) {
  const body = {};
  const newName = String(name || '').trim();
  if (!newName) return { error: 'Enter a name.' };
  if (newName !== agent.name) body.name = newName;
  const newNumbers = parseNumbers(numbers);
  if (!newNumbers.length) return { error: 'Enter at least one number.' };
  const same = newNumbers.length === (agent.numbers || []).length && newNumbers.every((n, i) => n === agent.numbers[i]);
  if (!same) body.numbers = newNumbers;
  if (role && role !== agent.role) body.role = role;
  return { body };
}

/** A person's sentence for an error from the admin API (an ApiError-like {status, code, message}). */
export function describeAdminError(err) {
  if (err && err.code === 'email_taken') return 'An agent with this email exists already.';
  if (err && err.code === 'last_admin') return 'This is the last active admin. Make another agent admin first.';
  if (err && err.status === 403) return 'Only admins can manage agents.';
  if (err && err.status === 404) return 'This agent no longer exists. Reload the list.';
  if (err instanceof TypeError) return "Can't reach the server. Check your connection and try again.";
  return (err && err.message) || 'Something went wrong.';
}
