// Browser tests of search, contact names and notifications (docs/api.md, "Search"), run by run.mjs
// after the Success Checklist. Each starts its own server and browser context (lib.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALICE,
  assertCleanConsole,
  listRows,
  newPage,
  openConversationRow,
  openInbox,
  shot,
  startConversation,
  waitLive,
  withServer,
} from './lib.mjs';

const BOB = { email: 'bob@example.com', name: 'Bob Agent', number: ALICE.number };

/** Rows in the list, as the agent sees them now. */
const rowCount = (page) => page.$$eval('#conversation-list .conversation', (els) => els.length);

/** A second agent's page (its own context) on the same server, logged in and Live. */
async function openAs(server, who) {
  const ctx = await newPage();
  const res = await ctx.context.request.post(`${server.base}/api/auth/login`, { data: { email: who.email, password: 'password123' } });
  assert.equal(res.status(), 200);
  await ctx.page.goto(`${server.base}/agent/messages`);
  await waitLive(ctx.page);
  return ctx;
}

test('o. search: typing narrows the list, matches are marked, nothing found says so, Esc clears', { timeout: 60_000 }, async () => {
  await withServer('o search', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await server.simulateInbound(token, { from: '+14155550123', body: 'The delivery is set for Tuesday' });
    await server.simulateInbound(token, { from: '+12125550100', body: 'Crème brûlée tonight?' });
    await server.simulateInbound(token, { from: '+13105550199', body: 'Call me back please' });
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 3);
    await startConversation(page, '+16505550142', 'José Álvarez');
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 4);

    // `/` focuses the field from anywhere but a text field.
    await page.click('#thread-scroller');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'search-input');

    // Words of a message, the last one as a prefix, as the agent types.
    await page.keyboard.type('delivery tues', { delay: 20 });
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 1);
    let rows = await listRows(page);
    assert.equal(rows[0].preview, 'The delivery is set for Tuesday');
    const marked = await page.$$eval('#conversation-list .conversation mark', (els) => els.map((m) => m.textContent));
    assert.deepEqual(marked, ['delivery', 'Tues'], 'the matching words are marked');
    await shot(page, 'o1-search-results.png');

    // Accents and case do not matter; names and phone numbers are found too.
    await page.fill('#search-input', 'creme BRUL');
    await page.waitForFunction(() => document.querySelector('#conversation-list .conversation .conversation-preview')?.textContent === 'Crème brûlée tonight?');
    assert.equal(await rowCount(page), 1);
    await page.fill('#search-input', 'jose');
    await page.waitForFunction(() => document.querySelector('#conversation-list .conversation .conversation-name')?.textContent === 'José Álvarez');
    assert.equal(await rowCount(page), 1);
    assert.equal(await page.$eval('#conversation-list .conversation-name mark', (m) => m.textContent), 'José');
    await page.fill('#search-input', '(310) 555-0199');
    await page.waitForFunction(() => document.querySelector('#conversation-list .conversation .conversation-preview')?.textContent === 'Call me back please');
    assert.equal(await rowCount(page), 1);

    // Nothing matches: said in words, the text shown as text.
    await page.fill('#search-input', '<b>zebra</b>');
    await page.waitForSelector('#search-empty', { state: 'visible' });
    assert.equal(await page.textContent('#search-empty-text'), 'No conversations in Open match “<b>zebra</b>”');
    assert.equal(await page.$('#search-empty b'), null, 'never HTML');
    assert.equal(await rowCount(page), 0);
    await shot(page, 'o2-search-nothing-matches.png');

    // Esc clears: the whole list is back.
    await page.focus('#search-input');
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 4);
    assert.equal(await page.inputValue('#search-input'), '');
    assert.equal(await page.isVisible('#search-empty'), false);
    assert.equal(await page.$('#conversation-list mark'), null, 'no marks without a search');
    assertCleanConsole(rec);
  });
});

test('p. renaming from the thread header: Enter saves, Esc cancels, the other agent of the number sees it live', { timeout: 60_000 }, async () => {
  await withServer(
    'p rename',
    async ({ server, context, page, rec }) => {
      const { token } = await openInbox(context, page, server);
      await server.simulateInbound(token, { from: '+14155550123', body: 'Hello from a stranger' });
      const bob = await openAs(server, BOB);
      try {
        await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 1);
        await bob.page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 1);
        await openConversationRow(page, '555-0123');
        assert.equal(await page.textContent('#thread-avatar'), '#', 'no initials without a name');

        // Esc cancels.
        await page.click('#thread-title');
        await page.waitForSelector('#rename-input', { state: 'visible' });
        await page.fill('#rename-input', 'Not this one');
        await page.keyboard.press('Escape');
        await page.waitForSelector('#rename-input', { state: 'hidden' });
        assert.equal(await page.textContent('#thread-title'), '+1 (415) 555-0123');

        // Enter saves.
        await page.click('#thread-title');
        await page.fill('#rename-input', 'Renée Lima');
        await shot(page, 'p1-rename-input.png');
        await page.keyboard.press('Enter');
        await page.waitForFunction(() => document.querySelector('#thread-title')?.textContent === 'Renée Lima');
        assert.equal(await page.textContent('#thread-avatar'), 'RL');
        const rows = await listRows(page);
        assert.equal(rows[0].name, 'Renée Lima');
        assert.equal(await page.textContent('#conversation-list .conversation .avatar'), 'RL', 'initials once named');

        // Bob holds the number too: his list changes without a reload.
        await bob.page.waitForFunction(() => document.querySelector('#conversation-list .conversation .conversation-name')?.textContent === 'Renée Lima');
        assert.equal(await bob.page.textContent('#conversation-list .conversation .avatar'), 'RL');
        await shot(bob.page, 'p2-renamed-on-another-agents-page.png');

        // Clearing the name shows the number again, everywhere.
        await page.click('#thread-title');
        await page.fill('#rename-input', '');
        await page.keyboard.press('Enter');
        await page.waitForFunction(() => document.querySelector('#thread-title')?.textContent === '+1 (415) 555-0123');
        await bob.page.waitForFunction(() => document.querySelector('#conversation-list .conversation .conversation-name')?.textContent === '+1 (415) 555-0123');

        // "Start new conversation" with a name still names it.
        await startConversation(page, '+16505550142', 'Jane Doe');
        await page.waitForFunction(() => document.querySelector('#thread-title')?.textContent === 'Jane Doe');
        assert.equal(await page.textContent('#thread-avatar'), 'JD');
        assertCleanConsole(rec);
        assertCleanConsole(bob.rec);
      } finally {
        await bob.context.close();
      }
    },
    { agents: [ALICE, BOB] },
  );
});

test('q. notifications: asked on click only, shown for other conversations, clicking opens one; choices persist', { timeout: 60_000 }, async () => {
  await withServer('q notifications', async ({ server, context, page, rec }) => {
    await context.grantPermissions(['notifications'], { origin: server.base });
    await context.addInitScript(() => {
      window.__notifications = [];
      window.__permissionAsked = 0;
      class RecordingNotification {
        static get permission() {
          return window.__permissionAsked > 0 || localStorage.getItem('smsdesk-prefs.notifications') ? 'granted' : 'default';
        }
        static requestPermission() {
          window.__permissionAsked += 1;
          return Promise.resolve('granted');
        }
        constructor(title, options = {}) {
          this.title = title;
          this.body = options.body;
          this.tag = options.tag;
          this.closed = false;
          window.__notifications.push(this);
        }
        close() {
          this.closed = true;
        }
      }
      window.Notification = RecordingNotification;
    });
    const { token } = await openInbox(context, page, server);
    assert.equal(await page.evaluate(() => window.__permissionAsked), 0, 'never asked on load');
    assert.equal(await page.getAttribute('#notify-toggle', 'aria-pressed'), 'false');
    assert.equal(await page.getAttribute('#sound-toggle', 'aria-pressed'), 'false', 'sound off by default');

    await server.simulateInbound(token, { from: '+14155550123', body: 'Jane here' });
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 1);
    assert.equal(await page.evaluate(() => window.__notifications.length), 0, 'nothing before the bell is on');

    await page.click('#notify-toggle');
    await page.waitForFunction(() => document.querySelector('#notify-toggle')?.getAttribute('aria-pressed') === 'true');
    assert.equal(await page.evaluate(() => window.__permissionAsked), 1, 'asked on click');
    await page.click('#sound-toggle');
    assert.equal(await page.getAttribute('#sound-toggle', 'aria-pressed'), 'true');
    await shot(page, 'q1-notifications-on.png', { clip: { x: 880, y: 0, width: 400, height: 64 } });

    // A message in the open conversation, tab visible: no notification.
    await openConversationRow(page, '555-0123');
    await server.simulateInbound(token, { from: '+14155550123', body: 'Still me' });
    await page.waitForFunction(() => [...document.querySelectorAll('#thread .bubble .body')].some((b) => b.textContent === 'Still me'));
    assert.equal(await page.evaluate(() => window.__notifications.length), 0, 'not for the conversation on screen');

    // A message in another conversation: one notification, its first line, one tag per conversation.
    await server.simulateInbound(token, { from: '+12125550100', body: 'Hi from Bob\nsecond line' });
    await page.waitForFunction(() => window.__notifications.length === 1);
    const [n] = await page.evaluate(() => window.__notifications.map(({ title, body, tag }) => ({ title, body, tag })));
    const bobRow = (await listRows(page)).find((r) => r.preview.startsWith('Hi from Bob'));
    assert.deepEqual(n, { title: '+1 (212) 555-0100', body: 'Hi from Bob', tag: `conv-${bobRow.id}` });
    assert.match(await page.title(), /^\(1\) Messages · smsdesk$/, 'the tab title keeps the unread count');

    // Clicking it opens that conversation.
    await page.evaluate(() => window.__notifications[0].onclick());
    await page.waitForFunction(() => document.querySelector('#thread-title')?.textContent === '+1 (212) 555-0100');
    assert.equal(await page.evaluate(() => window.__notifications[0].closed), true);

    // The choices survive a reload.
    await page.reload();
    await waitLive(page);
    assert.equal(await page.getAttribute('#notify-toggle', 'aria-pressed'), 'true');
    assert.equal(await page.getAttribute('#sound-toggle', 'aria-pressed'), 'true');
    // Turning the bell off stops them.
    await page.click('#notify-toggle');
    await server.simulateInbound(token, { from: '+13105550199', body: 'Quiet please' });
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 3);
    assert.equal(await page.evaluate(() => window.__notifications.length), 0);
    assertCleanConsole(rec);
  });
});
