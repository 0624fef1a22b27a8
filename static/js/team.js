// The other agents, without the DOM (tested in team.test.mjs): who holds a number with us (from
// GET /api/crm/sms/agents), whose name goes with an agent id, and whether a conversation is on a shared
// number, where every message of ours says which agent wrote it.

/** `answer.agents` as [{id, name, numbers?}] with string ids; anything else is dropped. */
export function readAgents(answer) {
  const list = Array.isArray(answer?.agents) ? answer.agents : [];
  return list
    .filter((a) => a && a.id != null)
    .map((a) => ({
      id: String(a.id),
      name: String(a.name ?? '').trim(),
      ...(Array.isArray(a.numbers) ? { numbers: a.numbers.map(String) } : {}),
    }));
}

/**
 * The agents of `number`: those whose numbers hold it, or, when the server does not say which
 * numbers an agent has, every agent it listed (they all share one of ours).
 */
export function agentsOf(agents, number) {
  return agents.filter((a) => !a.numbers || a.numbers.includes(String(number)));
}

/**
 * Whom the assignee menu of a conversation on `number` offers besides "Assign to me": the other
 * agents of the number, by name. An agent who does not hold it is never offered (the server would
 * answer 422 assignee_invalid).
 */
export function assignees(agents, number, meId) {
  const me = String(meId);
  return agentsOf(agents, number)
    .filter((a) => a.id !== me)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Written by an agent: a reply or a note. */
export const byAgent = (m) => m?.direction === 'outbound' || m?.direction === 'note';

/**
 * Whether a conversation on `number` is seen by more than one agent: another agent holds the number,
 * or wrote one of `messages`.
 */
export function isShared({ agents, number, meId, messages = [] }) {
  const me = String(meId);
  if (agentsOf(agents, number).some((a) => a.id !== me)) return true;
  return messages.some((m) => byAgent(m) && m.agentId != null && String(m.agentId) !== me);
}

/** Who wrote a reply or a note, as the thread says it: "You", the agent's name, or "Another agent". */
export function authorName(agentId, meId, nameOf) {
  if (agentId == null || String(agentId) === String(meId)) return 'You';
  return nameOf(String(agentId)) || 'Another agent';
}

/**
 * What each bubble of a conversation says about who wrote it: a note always names its author; on a
 * shared number every reply does too; otherwise nothing (null).
 */
export function authorsFor({ agents, number, meId, messages, nameOf }) {
  const shared = isShared({ agents, number, meId, messages });
  return (m) => {
    if (m.direction === 'note' || (shared && m.direction === 'outbound')) return authorName(m.agentId, meId, nameOf);
    return null;
  };
}

/**
 * Whose a conversation is, as its row says it: {short: "You" or the first name, full: "you" or the
 * whole name}, or null when nobody's.
 */
export function ownerOf(conv, meId, nameOf) {
  const id = conv?.assignee?.id;
  if (id == null) return null;
  if (String(id) === String(meId)) return { short: 'You', full: 'you' };
  const full = String(conv.assignee.name || nameOf(String(id)) || 'another agent').trim();
  return { short: full.split(/\s+/)[0], full };
}

/** The names the page knows by agent id: the agents listed, the signed-in one, and any learnt since (typing). */
export function createTeam() {
  let agents = [];
  const names = new Map();
  return {
    /** The answer of GET /api/crm/sms/agents. */
    set(answer) {
      agents = readAgents(answer);
      for (const a of agents) if (a.name) names.set(a.id, a.name);
    },
    agents: () => agents,
    learn(id, name) {
      if (id != null && name) names.set(String(id), String(name));
    },
    nameOf: (id) => names.get(String(id)) || '',
  };
}
