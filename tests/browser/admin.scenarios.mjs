// Browser tests of the admin view (docs/api.md, "Administration"): an admin invites an agent, who opens the link in
// another browser, chooses a password and lands in the inbox; disabling that agent drops their page
// to the sign-in screen at once; an agent who is not an admin has no Agents button and gets 403.
// The first agent added (ALICE) is the admin; the others are agents.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, assertCleanConsole, loginThroughForm, newPage, openInbox, shot, waitLive, withServer } from './lib.mjs';

const BOB = { email: 'bob@example.com', name: 'Bob Agent', number: '+15550001000' };

/** The agents table's rows: [{id, name, email, role, numbers, status}]. */
async function agentRows(page) {
  return page.$$eval('#agents-rows tr', (rows) =>
    rows.map((r) => {
      const cells = Array.from(r.querySelectorAll('td'), (td) => td.textContent.trim());
      return { id: r.dataset.id, name: cells[0], email: cells[1], role: cells[2], numbers: cells[3], status: cells[4] };
    }),
  );
}

async function openAgents(page) {
  await page.click('#agents-button');
  await page.waitForSelector('#agents-dialog[open]');
  await page.waitForFunction(() => document.querySelectorAll('#agents-rows tr').length > 0);
}

test('admin: invite → the link in a second browser → password → inbox; disable → that page signs out', { timeout: 60_000 }, async () => {
  await withServer('admin invite and disable', async ({ server, context, page, rec }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
    await openInbox(context, page, server);
    await openAgents(page);
    assert.deepEqual(
      (await agentRows(page)).map((r) => [r.email, r.role, r.status]),
      [[ALICE.email, 'Admin', 'Active']],
    );

    await page.click('#invite-agent-button');
    await page.waitForSelector('#invite-dialog[open]');
    await page.fill('#invite-dialog input[name="name"]', 'Carol <b>New</b>');
    await page.fill('#invite-dialog input[name="email"]', 'Carol@Example.com');
    await page.fill('#invite-dialog textarea[name="numbers"]', '(555) 000-1000');
    await shot(page, '40-admin-invite-form.png');
    await page.click('#invite-dialog button[type="submit"]');
    await page.waitForSelector('#invite-link-dialog[open]');
    const link = await page.inputValue('#invite-link');
    assert.match(link, /^http:\/\/localhost:\d+\/invite\?token=[\w-]{20,}$/);
    await page.click('#copy-invite-link');
    await page.waitForFunction(() => document.querySelector('#copy-invite-link').textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
    await shot(page, '41-admin-invite-link.png');
    await page.click('#invite-link-dialog .btn-primary');
    const invited = (await agentRows(page)).find((r) => r.email === 'carol@example.com');
    assert.deepEqual([invited.name, invited.role, invited.status], ['Carol <b>New</b>', 'Agent', 'Invite pending']);
    await shot(page, '42-admin-agents.png');

    // The invited agent, in a browser of their own.
    const carol = await newPage();
    await carol.page.goto(link);
    await carol.page.fill('#password', 'short');
    await carol.page.fill('#again', 'short');
    await carol.page.click('#invite-button');
    await carol.page.waitForSelector('#invite-error:not([hidden])');
    await carol.page.fill('#password', 'carols password');
    await carol.page.fill('#again', 'carols password');
    await shot(carol.page, '43-invite-page.png');
    await carol.page.click('#invite-button');
    await carol.page.waitForURL(/\/agent\/messages/);
    await waitLive(carol.page);
    assert.equal(await carol.page.$('#agents-button'), null, 'an agent has no Agents button');
    assertCleanConsole(carol.rec);
    // Used once: the link is gone.
    const again = await carol.context.request.get(link);
    assert.equal(again.status(), 404);

    // Disabled by the admin: Carol's page drops to the sign-in screen by itself.
    await page.click('#agents-dialog .admin-header .btn-ghost');
    await openAgents(page);
    // The dialog shows the rows it had until its refresh answers: wait for Carol's new state.
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll('#agents-rows tr')).some(
        (r) => r.textContent.includes('carol@example.com') && r.dataset.status === 'active',
      ),
    );
    const row = (await agentRows(page)).find((r) => r.email === 'carol@example.com');
    assert.equal(row.status, 'Active');
    await page.click(`#agents-rows tr[data-id="${row.id}"] .btn-danger`);
    await page.waitForSelector('#disable-agent-dialog[open]');
    assert.match(await page.textContent('#disable-agent-text'), /carol@example\.com/);
    await shot(page, '44-admin-disable-confirm.png');
    await page.click('#disable-agent-dialog button[type="submit"]');
    await carol.page.waitForURL(/\/login\?session=ended$/, { timeout: 10_000 });
    assert.match(await carol.page.textContent('#login-notice'), /session has ended.*disabled/);
    await shot(carol.page, '47-disabled-agent-signed-out.png');
    // Signing in again: the right password learns the account is disabled, a wrong one learns nothing.
    await loginThroughForm(carol.page, server, { email: 'carol@example.com', password: 'carols password' });
    await carol.page.waitForSelector('#login-error:not([hidden])');
    assert.match(await carol.page.textContent('#login-error'), /^This account is disabled; ask an admin/);
    assert.equal(await carol.page.isVisible('#login-notice'), false);
    await shot(carol.page, '48-disabled-agent-sign-in.png');
    await loginThroughForm(carol.page, server, { email: 'carol@example.com', password: 'not her password' });
    await carol.page.waitForFunction(() => /Wrong email or password\./.test(document.querySelector('#login-error').textContent));
    await page.waitForFunction(
      (id) => document.querySelector(`#agents-rows tr[data-id="${id}"]`)?.dataset.status === 'disabled',
      row.id,
    );
    // The last admin is offered no Disable.
    const aliceRow = (await agentRows(page)).find((r) => r.email === ALICE.email);
    assert.equal(await page.$(`#agents-rows tr[data-id="${aliceRow.id}"] .btn-danger`), null);
    await shot(page, '45-admin-agents-after-disable.png');
    assertCleanConsole(rec);
    await carol.context.close();
  });
});

test('admin: an agent sees no Agents button and the admin API answers 403', { timeout: 45_000 }, async () => {
  await withServer(
    'admin agent forbidden',
    async ({ server, page, rec }) => {
      await loginThroughForm(page, server, { email: BOB.email });
      await page.waitForURL(/\/agent\/messages/);
      await waitLive(page);
      assert.equal(await page.$('#agents-button'), null);
      assert.equal(await page.$('#agents-dialog'), null, 'not even the markup');
      const status = await page.evaluate(async () => (await fetch('/api/admin/agents')).status);
      assert.equal(status, 403);
      await shot(page, '46-agent-without-admin.png');
      rec.console.length = 0; // Chromium logs the refused fetch on purpose
      assertCleanConsole(rec);
    },
    { agents: [ALICE, BOB] },
  );
});
