// Browser tests of the team inbox (docs/api.md, "The team inbox"), run by run.mjs after the Success
// Checklist: two agents on one number, each in their own browser. The views and their counts follow
// what the other agent does, live; closing moves on to the next conversation and an inbound SMS
// reopens it; a note reaches the other agent but never Twilio (a fake Twilio in live mode records
// every message created); a colleague's reply says who wrote it; a snooze runs out and the
// conversation comes back. Screenshots at desktop and phone width.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  ALICE,
  assertCleanConsole,
  newPage,
  openInbox,
  shot,
  startFakeTwilio,
  twilioSignature,
  waitLive,
  waitUntil,
  withServer,
} from './lib.mjs';

// Bob holds Alice's number: every conversation of it is both of theirs.
const BOB = { email: 'bob@example.com', name: 'Bob Agent', number: ALICE.number };
const JANE = '+14155550123';
const CARL = '+12125550100';
const ACCOUNT = 'ACfeedfacefeedfacefeedfacefeedface';
const TOKEN = 'fake-auth-token';

async function openAs(server, who) {
  const ctx = await newPage();
  const res = await ctx.context.request.post(`${server.base}/api/auth/login`, { data: { email: who.email, password: 'password123' } });
  assert.equal(res.status(), 200);
  await ctx.page.goto(`${server.base}/agent/messages`);
  await waitLive(ctx.page);
  return ctx;
}

/** An inbound SMS as Twilio posts it, signed with the account's token. */
async function inbound(server, from, body) {
  const params = { MessageSid: `SM${crypto.randomBytes(16).toString('hex')}`, AccountSid: ACCOUNT, From: from, To: ALICE.number, Body: body, NumMedia: '0' };
  const res = await fetch(`${server.base}/api/crm/sms/webhook`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Twilio-Signature': twilioSignature(TOKEN, `http://localhost:${server.port}/api/crm/sms/webhook`, params),
    },
    body: new URLSearchParams(params),
  });
  assert.equal(res.status, 200, 'the signed webhook is stored');
}

/** The views' counts as the tabs show them: {mine: '1', …}. */
const counts = (page) =>
  page.$$eval('#views .view-tab', (tabs) => Object.fromEntries(tabs.map((t) => [t.dataset.view, t.querySelector('.view-count').textContent])));

async function waitCounts(page, want) {
  await page.waitForFunction(
    (w) => {
      const got = Object.fromEntries(Array.from(document.querySelectorAll('#views .view-tab'), (t) => [t.dataset.view, t.querySelector('.view-count').textContent]));
      return Object.entries(w).every(([k, v]) => got[k] === String(v));
    },
    want,
  );
}

/** The list's rows: [{name, preview}], in order. */
const rows = (page) =>
  page.$$eval('#conversation-list .conversation', (els) =>
    els.map((li) => ({ name: li.querySelector('.conversation-name').textContent, preview: li.querySelector('.conversation-preview').textContent })),
  );

async function waitRows(page, names) {
  await page.waitForFunction(
    (want) => JSON.stringify(Array.from(document.querySelectorAll('#conversation-list .conversation-name'), (n) => n.textContent)) === JSON.stringify(want),
    names,
  );
}

/** The thread's bubbles: [{direction, body, author}]. */
const thread = (page) =>
  page.$$eval('#thread .bubble', (els) =>
    els.map((b) => ({
      direction: b.dataset.direction,
      body: b.querySelector('.body').textContent,
      author: b.querySelector('.author').hidden ? null : b.querySelector('.author-name').textContent,
      tag: b.querySelector('.note-tag').hidden ? null : b.querySelector('.note-tag').textContent,
      ticks: b.querySelector('.status').textContent,
    })),
  );

const showView = (page, id) => page.click(`#views [data-view="${id}"]`);
const openRow = (page, name) => page.locator('#conversation-list .conversation', { hasText: name }).first().click();

test('inbox: views and counts live across agents, assign, a colleague named, notes kept from Twilio, close → next, an SMS reopens', { timeout: 120_000 }, async () => {
  const fake = await startFakeTwilio();
  try {
    await withServer(
      'inbox two agents',
      async ({ server, context, page, rec }) => {
        await openInbox(context, page, server);
        const bob = await openAs(server, BOB);
        try {
          await inbound(server, JANE, 'Hi, is the flat still free?');
          await inbound(server, CARL, 'Can I visit on Saturday?');
          const jane = '+1 (415) 555-0123';
          const carl = '+1 (212) 555-0100';

          // Both see them in Open (the default view), unassigned; nobody has any yet.
          for (const p of [page, bob.page]) {
            await waitRows(p, [carl, jane]);
            await waitCounts(p, { mine: 0, unassigned: 2, open: 2, snoozed: 0, closed: 0 });
          }
          assert.deepEqual(
            await page.$$eval('#views .view-tab .view-label', (ls) => ls.map((l) => l.textContent)),
            ['Mine', 'Unassigned', 'Open', 'Snoozed', 'Closed'],
          );
          assert.equal(await page.getAttribute('#views [data-view="open"]', 'aria-selected'), 'true');
          await shot(page, 'inbox-1-views-desktop.png');

          // Alice assigns Jane to Bob from the menu of the number's agents: Bob's Mine counts it at once.
          await openRow(page, jane);
          assert.equal(await page.textContent('#assignee-label'), 'Unassigned');
          await page.click('#assignee-button');
          await page.waitForSelector('#assignee-menu:not([hidden])');
          assert.deepEqual(
            await page.$$eval('#assignee-menu [role^=menuitem]', (items) => items.map((i) => i.textContent)),
            ['Assign to me', 'Bob Agent', 'Unassign'],
          );
          await shot(page, 'inbox-2-assignee-menu.png');
          await page.click('#assignee-menu [role^=menuitem]:has-text("Bob Agent")');
          await page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Bob Agent');
          await waitCounts(bob.page, { mine: 1, unassigned: 1, open: 2 });
          await waitCounts(page, { mine: 0, unassigned: 1, open: 2 });
          await page.waitForFunction(() => document.querySelector('#conversation-list .conversation.active .tag-owner:not([hidden])')?.textContent === 'Bob');

          // In Bob's Mine: Jane only. He answers; Alice's list names him, not "You".
          await showView(bob.page, 'mine');
          await waitRows(bob.page, [jane]);
          await openRow(bob.page, jane);
          await bob.page.fill('#composer-input', 'Yes! Bob here, when would you like to come?');
          await bob.page.press('#composer-input', 'Enter');
          await page.waitForFunction(() => document.querySelector('#conversation-list .conversation-preview')?.textContent === 'Bob Agent: Yes! Bob here, when would you like to come?');
          assert.equal((await rows(page)).some((r) => r.preview.startsWith('You:')), false, "a colleague's reply is not ours");
          await page.waitForFunction(() => document.querySelectorAll('#thread .bubble.outbound').length === 1);
          assert.deepEqual((await thread(page)).map((b) => [b.direction, b.author]), [
            ['inbound', null],
            ['outbound', 'Bob Agent'],
          ]);

          // Alice takes it back ("Assign to me"), answers (her bubble says You), then writes a note with Ctrl+Enter.
          await page.click('#assignee-button');
          await page.click('#assignee-menu [role^=menuitem]:has-text("Assign to me")');
          await waitCounts(page, { mine: 1, unassigned: 1 });
          await waitCounts(bob.page, { mine: 0 });
          await bob.page.waitForSelector('#conversation-empty:not([hidden])'); // Bob's Mine is empty now
          await page.fill('#composer-input', 'Saturday at 10 works for us.');
          await page.press('#composer-input', 'Enter');
          await page.click('.composer-mode[data-mode="note"]');
          assert.equal(await page.getAttribute('#composer', 'data-mode'), 'note');
          assert.equal(await page.getAttribute('#composer-input', 'placeholder'), 'Only agents see this');
          assert.equal(await page.isVisible('#segment-counter'), false, 'no segment counter for a note');
          const note = 'Called her: she prefers mornings. Keys are at the desk.';
          await page.fill('#composer-input', note);
          await shot(page, 'inbox-3-note-composer.png');
          await page.press('#composer-input', 'Control+Enter');
          await page.waitForFunction((n) => [...document.querySelectorAll('#thread .bubble.note[data-id]:not([data-id=""]) .body')].some((b) => b.textContent === n), note);
          const mine = await thread(page);
          assert.deepEqual(mine.slice(-2).map((b) => [b.direction, b.author, b.tag]), [
            ['outbound', 'You', null],
            ['note', 'You', 'Only agents see this'],
          ]);
          assert.equal(mine.at(-1).ticks, '', 'no delivery mark on a note');
          await page.waitForFunction(() => document.querySelector('#conversation-list .conversation.active .conversation-preview')?.textContent.startsWith('Note: Called her'));

          // Bob sees the note live, under Alice's name.
          await showView(bob.page, 'open');
          await openRow(bob.page, jane);
          await bob.page.waitForFunction((n) => [...document.querySelectorAll('#thread .bubble.note .body')].some((b) => b.textContent === n), note);
          assert.deepEqual((await thread(bob.page)).at(-1), { direction: 'note', body: note, author: 'Alice Agent', tag: 'Only agents see this', ticks: '' });
          await shot(bob.page, 'inbox-4-colleague-sees-note.png');

          // Back to Reply; a last reply reaches Twilio after the note was written, and the note never did.
          await page.click('.composer-mode[data-mode="reply"]');
          await page.fill('#composer-input', 'See you Saturday!');
          await page.press('#composer-input', 'Enter');
          await waitUntil('the replies to reach Twilio', () => fake.sent.some((m) => m.Body === 'See you Saturday!'));
          assert.deepEqual(
            fake.sent.map((m) => m.Body),
            ['Yes! Bob here, when would you like to come?', 'Saturday at 10 works for us.', 'See you Saturday!'],
          );
          await shot(page, 'inbox-5-thread-shared-number.png');

          // `e` (no field focused) closes Jane: it leaves Open and Carl, next in the view, opens.
          await page.locator('#thread-scroller').focus();
          await page.keyboard.press('e');
          await page.waitForFunction(() => document.querySelector('#thread-title').textContent === '+1 (212) 555-0100');
          await waitRows(page, [carl]);
          await waitCounts(page, { mine: 0, open: 1, closed: 1 });
          await waitCounts(bob.page, { open: 1, closed: 1 });
          // A search looks in the view shown, and again in the next one picked.
          await page.fill('#search-input', 'flat');
          await page.waitForFunction(() => document.querySelector('#search-empty-text')?.textContent === 'No conversations in Open match “flat”');
          await showView(page, 'closed');
          await waitRows(page, [jane]);
          assert.equal(await page.isVisible('#search-empty'), false);
          await page.press('#search-input', 'Escape');
          await waitRows(page, [jane]);
          await openRow(page, jane);
          assert.equal(await page.textContent('#close-button'), 'Reopen');
          assert.match(await page.textContent('#thread-state'), /^Closed/);
          await shot(page, 'inbox-6-closed-view.png');

          // Jane writes again: the conversation reopens and leaves Closed on both pages.
          await inbound(server, JANE, 'One more question!');
          await page.waitForSelector('#conversation-empty:not([hidden])');
          await waitCounts(page, { mine: 1, open: 2, closed: 0 });
          await waitCounts(bob.page, { open: 2, closed: 0 });
          assert.equal(await page.textContent('#close-button'), 'Close');
          assert.equal(await page.isVisible('#thread-state'), false);

          // Close and Reopen by the buttons.
          await page.click('#close-button');
          await waitCounts(page, { closed: 1 });
          await waitRows(page, [jane]);
          await page.click('#close-button');
          await waitCounts(page, { closed: 0, open: 2 });
          await page.waitForSelector('#conversation-empty:not([hidden])');

          // At phone width: the views scroll sideways, the header's actions have a row of their own.
          await showView(page, 'open');
          await page.setViewportSize({ width: 390, height: 844 });
          await page.click('#back-button');
          await waitRows(page, [jane, carl]);
          const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
          assert.ok(await fits(), 'no horizontal scroll on the list');
          await page.click('#views [data-view="closed"]');
          await page.click('#views [data-view="open"]');
          await shot(page, 'inbox-7-views-phone.png');
          await openRow(page, jane);
          for (const sel of ['#assignee-button', '#close-button', '#snooze-button', '.composer-mode[data-mode="note"]', '#composer-input']) {
            const box = await page.$eval(sel, (el) => el.getBoundingClientRect().toJSON());
            assert.ok(box.left >= 0 && box.right <= 390 && box.width > 0 && box.bottom <= 844, `${sel} on screen: ${JSON.stringify(box)}`);
          }
          assert.ok(await fits(), 'no horizontal scroll in the thread');
          await page.click('#snooze-button');
          const menuBox = await page.$eval('#snooze-menu', (el) => el.getBoundingClientRect().toJSON());
          assert.ok(menuBox.left >= 0 && menuBox.right <= 390, `the snooze menu fits: ${JSON.stringify(menuBox)}`);
          await shot(page, 'inbox-8-thread-phone-snooze-menu.png');
          await page.keyboard.press('Escape');
          await page.click('.composer-mode[data-mode="note"]');
          await shot(page, 'inbox-9-note-phone.png');

          assertCleanConsole(rec);
          assertCleanConsole(bob.rec);
        } finally {
          await bob.context.close();
        }
      },
      { agents: [ALICE, BOB], env: { TWILIO_ACCOUNT_SID: ACCOUNT, TWILIO_AUTH_TOKEN: TOKEN, TWILIO_API_BASE: fake.url } },
    );
  } finally {
    await fake.close();
  }
});

test('inbox: snoozed until a chosen time, the conversation leaves Open for Snoozed, then comes back by itself', { timeout: 120_000 }, async () => {
  await withServer('inbox snooze', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await server.simulateInbound(token, { from: JANE, body: 'Call me back next week' });
    const jane = '+1 (415) 555-0123';
    await waitRows(page, [jane]);
    await openRow(page, jane);

    // The menu's own choices, in the browser's time zone.
    await page.click('#snooze-button');
    await page.waitForSelector('#snooze-menu:not([hidden])');
    assert.deepEqual(
      await page.$$eval('#snooze-choices [role=menuitem]', (items) => items.map((i) => i.firstChild.firstChild.textContent)),
      ['1 hour', 'Tomorrow 9:00', 'Next Monday 9:00'],
    );
    await shot(page, 'inbox-10-snooze-menu.png');

    // A time in the past is refused on the page, with a sentence.
    const localInput = (ms) =>
      page.evaluate((offset) => {
        const d = new Date(Date.now() + offset);
        const pad = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      }, ms);
    await page.fill('#snooze-at', await localInput(-60_000));
    await page.click('#snooze-form button[type=submit]');
    await page.waitForSelector('#snooze-error:not([hidden])');
    assert.equal(await page.textContent('#snooze-error'), 'Choose a time in the future.');

    // A few seconds ahead: Snoozed, and the thread says until when.
    await page.fill('#snooze-at', await localInput(4000));
    await page.click('#snooze-form button[type=submit]');
    await waitCounts(page, { open: 0, snoozed: 1 });
    await page.waitForSelector('#conversation-empty:not([hidden])');
    await page.waitForSelector('#thread-placeholder:not([hidden])'); // nothing left in Open to move on to
    await showView(page, 'snoozed');
    await waitRows(page, [jane]);
    await openRow(page, jane);
    await page.waitForSelector('#thread-state:not([hidden])');
    assert.match(await page.textContent('#thread-state'), /^Snoozed until /);
    await shot(page, 'inbox-11-snoozed-view.png');

    // The server reopens it when the time has come (within a minute) and says so: it leaves Snoozed.
    await page.waitForSelector('#conversation-empty:not([hidden])', { timeout: 75_000 });
    await waitCounts(page, { open: 1, snoozed: 0 });
    await page.waitForSelector('#thread-state', { state: 'hidden' });
    assert.equal(await page.isVisible('#thread-view'), true, 'the conversation stays open');
    await showView(page, 'open');
    await waitRows(page, [jane]);
    assertCleanConsole(rec);
  });
});
