// Browser tests of canned replies (docs/api.md, "Canned replies"), run by run.mjs after the Success
// Checklist: added in the Replies panel, picked in the composer with `/`, the arrow keys and Enter,
// placeholders filled in for the open conversation, sent to ✓✓; another agent (another number, another
// browser) sees every change live and may not change what is not theirs. ALICE is the admin.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, assertCleanConsole, bubbles, newPage, openInbox, shot, startConversation, waitLive, withServer } from './lib.mjs';

const BOB = { email: 'bob@example.com', name: 'Bob Agent', number: '+15550002000' };

async function openAs(server, who) {
  const ctx = await newPage();
  const res = await ctx.context.request.post(`${server.base}/api/auth/login`, { data: { email: who.email, password: 'password123' } });
  assert.equal(res.status(), 200);
  await ctx.page.goto(`${server.base}/agent/messages`);
  await waitLive(ctx.page);
  return ctx;
}

/** The panel's rows: [{shortcut, body, mine, editable}]. */
async function panelRows(page) {
  return page.$$eval('#replies-list .reply-row', (rows) =>
    rows.map((r) => ({
      shortcut: r.dataset.shortcut,
      body: r.querySelector('.reply-body').textContent,
      mine: Boolean(r.querySelector('.reply-mine')),
      editable: Boolean(r.querySelector('.reply-edit')) && Boolean(r.querySelector('.reply-delete')),
    })),
  );
}

/** The picker's options: [{shortcut, selected}], or null while it is closed. */
async function picker(page) {
  return page.evaluate(() => {
    const popup = document.querySelector('#reply-popup');
    if (!popup || popup.hidden) return null;
    return Array.from(popup.querySelectorAll('[role=option]'), (o) => ({ shortcut: o.dataset.shortcut, selected: o.getAttribute('aria-selected') === 'true' }));
  });
}

async function waitPicker(page, shortcuts) {
  await page.waitForFunction(
    (want) => {
      const popup = document.querySelector('#reply-popup');
      if (!popup || popup.hidden) return false;
      const got = Array.from(popup.querySelectorAll('[role=option]'), (o) => o.dataset.shortcut);
      return JSON.stringify(got) === JSON.stringify(want);
    },
    shortcuts,
  );
}

async function addReply(page, shortcut, fill) {
  await page.click('#new-reply-button');
  await page.waitForSelector('#reply-form-dialog[open]');
  await page.fill('#reply-form-dialog input[name=shortcut]', shortcut);
  await fill();
  await page.click('#reply-form-dialog button[type=submit]');
  await page.waitForSelector('#reply-form-dialog', { state: 'hidden' });
}

test('replies: added in the panel, / + arrows + Enter inserts one with the contact filled in, sent to ✓✓; another agent sees it live', { timeout: 90_000 }, async () => {
  await withServer(
    'replies picker',
    async ({ server, context, page, rec }) => {
      await openInbox(context, page, server);
      const bob = await openAs(server, BOB);
      try {
        await startConversation(page, '(415) 555-0123', 'Jane Doe');
        await startConversation(bob.page, '(212) 555-0100', 'Bo Contact');
        // Bob keeps his panel open while Alice adds.
        await bob.page.click('#replies-button');
        await bob.page.waitForSelector('#replies-dialog[open]');
        await bob.page.waitForSelector('#replies-dialog .replies-empty:not([hidden])');

        // Alice adds two replies in the panel; a shortcut typed as "/Thanks" is sent as "thanks".
        await page.click('#replies-button');
        await page.waitForSelector('#replies-dialog[open]');
        await addReply(page, '/Thanks', () => page.fill('#reply-form-dialog textarea[name=body]', 'Thanks for writing, {{contact.name}}!'));
        await addReply(page, 'thanks-late', async () => {
          await page.fill('#reply-form-dialog textarea[name=body]', 'Sorry for the wait, ');
          await page.click('#reply-form-dialog .placeholder-buttons button:has-text("{{contact.name}}")');
          await page.keyboard.type('! {{agent.name}} here; we reach you at {{contact.phone}}.');
          await shot(page, 'replies-1-new-reply-form.png');
        });
        // A shortcut that is taken, or breaks the rule, is refused with a sentence.
        await page.click('#new-reply-button');
        await page.fill('#reply-form-dialog input[name=shortcut]', 'thanks');
        await page.fill('#reply-form-dialog textarea[name=body]', 'Again');
        await page.click('#reply-form-dialog button[type=submit]');
        await page.waitForSelector('#reply-form-dialog .form-error:not([hidden])');
        assert.match(await page.textContent('#reply-form-dialog .form-error'), /Another reply already uses \/thanks/);
        rec.console.length = 0; // Chromium logs the refused request (409) on purpose
        await page.fill('#reply-form-dialog input[name=shortcut]', 'thanks late');
        await page.click('#reply-form-dialog button[type=submit]');
        await page.waitForFunction(() => /lowercase letters/.test(document.querySelector('#reply-form-dialog .form-error').textContent));
        await page.click('#reply-form-dialog .btn-ghost');

        const expected = [
          { shortcut: 'thanks', body: 'Thanks for writing, {{contact.name}}!' },
          { shortcut: 'thanks-late', body: 'Sorry for the wait, {{contact.name}}! {{agent.name}} here; we reach you at {{contact.phone}}.' },
        ];
        assert.deepEqual(await panelRows(page), expected.map((r) => ({ ...r, mine: true, editable: true })));
        await shot(page, 'replies-2-panel.png');
        await page.click('#replies-dialog .replies-header .btn-ghost');

        // Bob's open panel has them without a reload, and offers him no Edit or Delete on them.
        await bob.page.waitForFunction(() => document.querySelectorAll('#replies-list .reply-row').length === 2);
        assert.deepEqual(await panelRows(bob.page), expected.map((r) => ({ ...r, mine: false, editable: false })));
        await shot(bob.page, 'replies-3-another-agents-panel.png');
        await bob.page.click('#replies-dialog .replies-header .btn-ghost');

        // In the composer: `/` and part of the shortcut opens the picker, shortcut matches first.
        await page.click('#composer-input');
        await page.keyboard.type('/than');
        await waitPicker(page, ['thanks', 'thanks-late']);
        assert.deepEqual(await picker(page), [
          { shortcut: 'thanks', selected: true },
          { shortcut: 'thanks-late', selected: false },
        ]);
        await page.keyboard.press('ArrowDown');
        assert.deepEqual((await picker(page)).map((o) => o.selected), [false, true]);
        const active = await page.getAttribute('#composer-input', 'aria-activedescendant');
        assert.equal(await page.getAttribute(`#${active}`, 'data-shortcut'), 'thanks-late', 'the text box names the option it is on');
        await shot(page, 'replies-4-picker.png');
        await page.keyboard.press('Enter');
        const filled = 'Sorry for the wait, Jane Doe! Alice Agent here; we reach you at +1 (415) 555-0123.';
        assert.equal(await page.inputValue('#composer-input'), filled, 'placeholders filled in, the "/than" replaced');
        assert.equal(await picker(page), null, 'the picker closed');
        assert.match(await page.textContent('#segment-counter'), new RegExp(`^${filled.length} / 160`));
        await shot(page, 'replies-5-inserted.png');

        // Enter now sends it, and it goes all the way.
        await page.keyboard.press('Enter');
        await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 10_000 });
        assert.deepEqual(
          (await bubbles(page)).map((b) => [b.body, b.status]),
          [[filled, 'delivered']],
        );
        await shot(page, 'replies-6-sent-delivered.png');

        // A text found in a reply's body; nothing found says so; Esc closes the picker and leaves the
        // text, and it stays closed as the agent types on.
        await page.keyboard.type('/wait');
        await waitPicker(page, ['thanks-late']);
        await page.fill('#composer-input', '');
        await page.keyboard.type('/zzz');
        await page.waitForSelector('#reply-popup .reply-nothing:not([hidden])');
        assert.equal(await page.textContent('#reply-popup .reply-nothing'), 'No replies match “zzz”.');
        await page.keyboard.press('Escape');
        assert.equal(await picker(page), null);
        assert.equal(await page.inputValue('#composer-input'), '/zzz');
        await page.keyboard.type('z');
        assert.equal(await picker(page), null, 'closed until the text starts with / anew');
        await page.fill('#composer-input', '');

        // Bob picks one by click in his own conversation: his contact, his name.
        await bob.page.click('#composer-input');
        await bob.page.keyboard.type('/');
        await waitPicker(bob.page, ['thanks', 'thanks-late']);
        await bob.page.click('#reply-popup [data-shortcut="thanks"]');
        assert.equal(await bob.page.inputValue('#composer-input'), 'Thanks for writing, Bo Contact!');
        await bob.page.fill('#composer-input', '');

        // Alice, who may, edits and deletes; Bob's page follows live.
        await bob.page.click('#replies-button');
        await page.click('#replies-button');
        await page.click('#replies-list .reply-row[data-shortcut="thanks"] .reply-edit');
        await page.waitForSelector('#reply-form-dialog[open]');
        await page.fill('#reply-form-dialog textarea[name=body]', 'Thank you, {{contact.name}}!');
        await page.click('#reply-form-dialog button[type=submit]');
        await bob.page.waitForFunction(
          () => document.querySelector('#replies-list .reply-row[data-shortcut="thanks"] .reply-body')?.textContent === 'Thank you, {{contact.name}}!',
        );
        await page.click('#replies-list .reply-row[data-shortcut="thanks-late"] .reply-delete');
        await page.waitForSelector('#reply-delete-dialog[open]');
        assert.match(await page.textContent('#reply-delete-text'), /\/thanks-late will be gone for every agent/);
        await page.click('#reply-delete-dialog button[type=submit]');
        await bob.page.waitForFunction(() => !document.querySelector('#replies-list .reply-row[data-shortcut="thanks-late"]'));
        assert.deepEqual((await panelRows(bob.page)).map((r) => r.shortcut), ['thanks']);
        assert.deepEqual((await panelRows(page)).map((r) => r.shortcut), ['thanks']);
        await shot(bob.page, 'replies-7-another-agent-after-changes.png');

        // On a phone the picker and the Replies button fit the width.
        await page.click('#replies-dialog .replies-header .btn-ghost');
        await page.setViewportSize({ width: 390, height: 844 });
        await page.click('#composer-input');
        await page.keyboard.type('/');
        await waitPicker(page, ['thanks']);
        const inside = await page.evaluate(() =>
          ['#reply-popup', '#replies-button'].map((s) => {
            const r = document.querySelector(s).getBoundingClientRect();
            return r.left >= 0 && r.right <= window.innerWidth && r.width > 0;
          }),
        );
        assert.deepEqual(inside, [true, true]);
        await shot(page, 'replies-8-picker-on-a-phone.png');

        assertCleanConsole(rec);
        assertCleanConsole(bob.rec);
      } finally {
        await bob.context.close();
      }
    },
    { agents: [ALICE, BOB] },
  );
});
