// Run: node --test static/js/team.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentsOf, assignees, authorName, authorsFor, createTeam, isShared, ownerOf, readAgents } from './team.js';
import { messagePreview } from './format.js';

const AGENTS = readAgents({
  agents: [
    { id: 7, name: 'Alice Agent', numbers: ['+15550001000'] },
    { id: 8, name: ' Bob Agent ', numbers: ['+15550001000', '+15550002000'] },
    { id: 9, name: 'Cleo', numbers: ['+15550002000'] },
    null,
    { name: 'no id' },
  ],
});

test('the agents answer: string ids, trimmed names, nothing without an id', () => {
  assert.deepEqual(
    AGENTS.map((a) => [a.id, a.name]),
    [
      ['7', 'Alice Agent'],
      ['8', 'Bob Agent'],
      ['9', 'Cleo'],
    ],
  );
  assert.deepEqual(readAgents(null), []);
});

test("a number's agents: those who hold it; every agent listed when the answer does not say", () => {
  assert.deepEqual(agentsOf(AGENTS, '+15550001000').map((a) => a.id), ['7', '8']);
  assert.deepEqual(agentsOf(AGENTS, '+15550002000').map((a) => a.id), ['8', '9']);
  const plain = readAgents({ agents: [{ id: 7, name: 'A' }, { id: 8, name: 'B' }] });
  assert.deepEqual(agentsOf(plain, '+15550001000').map((a) => a.id), ['7', '8']);
});

test("the assignee menu: the number's other agents by name, never one who lacks the number", () => {
  // As GET /api/crm/sms/agents answers Bob (8), who holds both numbers.
  const answer = readAgents({
    agents: [
      { id: 9, name: 'Cleo', numbers: ['+15550002000'] },
      { id: 7, name: 'Alice Agent', numbers: ['+15550001000'] },
      { id: 10, name: 'Ada', numbers: ['+15550001000', '+15550002000'] },
      { id: 8, name: 'Bob Agent', numbers: ['+15550001000', '+15550002000'] },
    ],
  });
  assert.deepEqual(assignees(answer, '+15550001000', 8).map((a) => a.name), ['Ada', 'Alice Agent']);
  assert.deepEqual(assignees(answer, '+15550002000', '8').map((a) => a.name), ['Ada', 'Cleo']);
  assert.deepEqual(assignees(answer, '+15550003000', '8'), [], 'a number nobody else holds');
});

test('shared: another agent holds the number, or wrote a reply or a note in it', () => {
  assert.equal(isShared({ agents: AGENTS, number: '+15550001000', meId: '7' }), true);
  assert.equal(isShared({ agents: AGENTS, number: '+15550003000', meId: '7' }), false);
  assert.equal(isShared({ agents: [], number: '+15550001000', meId: '7' }), false, 'the agents not read yet');
  const mine = { direction: 'outbound', agentId: 7 };
  const theirs = { direction: 'outbound', agentId: 8 };
  const inbound = { direction: 'inbound', agentId: null };
  const theirNote = { direction: 'note', agentId: '8' };
  assert.equal(isShared({ agents: [], number: 'x', meId: '7', messages: [mine, inbound] }), false);
  assert.equal(isShared({ agents: [], number: 'x', meId: '7', messages: [mine, theirs] }), true);
  assert.equal(isShared({ agents: [], number: 'x', meId: '7', messages: [theirNote] }), true);
});

test('who wrote it: You, the name, or "Another agent"', () => {
  const team = createTeam();
  team.set({ agents: [{ id: 8, name: 'Bob Agent' }] });
  team.learn(9, 'Cleo');
  assert.equal(authorName(7, '7', team.nameOf), 'You');
  assert.equal(authorName(null, '7', team.nameOf), 'You', 'a reply of ours not stored yet');
  assert.equal(authorName('8', '7', team.nameOf), 'Bob Agent');
  assert.equal(authorName(9, '7', team.nameOf), 'Cleo', 'a name learnt from a typing event');
  assert.equal(authorName(10, '7', team.nameOf), 'Another agent');
});

test("the list's preview: You: for our replies only, the colleague's name for theirs, Note: for a note", () => {
  const team = createTeam();
  team.set({ agents: [{ id: 8, name: 'Bob Agent' }] });
  const authorOf = (m) => authorName(m.agentId, '7', team.nameOf);
  assert.equal(messagePreview({ body: 'Hi', direction: 'outbound', agentId: 7 }, authorOf), 'You: Hi');
  assert.equal(messagePreview({ body: 'Hi', direction: 'outbound', agentId: 8 }, authorOf), 'Bob Agent: Hi');
  assert.equal(messagePreview({ body: 'Hi', direction: 'outbound', agentId: 11 }, authorOf), 'Another agent: Hi');
  assert.equal(messagePreview({ body: 'Call back  later', direction: 'note', agentId: 8 }, authorOf), 'Note: Call back later');
  assert.equal(messagePreview({ body: 'Hi', direction: 'inbound', agentId: null }, authorOf), 'Hi');
});

test("the thread's bubbles: a note names its author; replies only on a shared number", () => {
  const team = createTeam();
  team.set({ agents: [{ id: 8, name: 'Bob Agent', numbers: ['+15550001000'] }] });
  const messages = [
    { direction: 'inbound', agentId: null },
    { direction: 'outbound', agentId: '7' },
    { direction: 'note', agentId: '7' },
  ];
  const alone = authorsFor({ agents: team.agents(), number: '+15550009000', meId: '7', messages, nameOf: team.nameOf });
  assert.deepEqual(messages.map(alone), [null, null, 'You']);
  const shared = authorsFor({ agents: team.agents(), number: '+15550001000', meId: '7', messages, nameOf: team.nameOf });
  assert.deepEqual(messages.map(shared), [null, 'You', 'You']);
  const theirs = [...messages, { direction: 'outbound', agentId: 8 }];
  const seen = authorsFor({ agents: [], number: '+15550009000', meId: '7', messages: theirs, nameOf: team.nameOf });
  assert.deepEqual(theirs.map(seen), [null, 'You', 'You', 'Bob Agent'], "a colleague's reply makes it shared");
});

test("a row says whose the conversation is: You, a colleague's first name, or nothing", () => {
  const nameOf = (id) => (id === '9' ? 'Cleo Smith' : '');
  assert.equal(ownerOf({ assignee: null }, '7', nameOf), null);
  assert.deepEqual(ownerOf({ assignee: { id: 7, name: 'Alice Agent' } }, '7', nameOf), { short: 'You', full: 'you' });
  assert.deepEqual(ownerOf({ assignee: { id: '8', name: 'Bob Agent' } }, '7', nameOf), { short: 'Bob', full: 'Bob Agent' });
  assert.deepEqual(ownerOf({ assignee: { id: '9', name: '' } }, '7', nameOf), { short: 'Cleo', full: 'Cleo Smith' });
});
