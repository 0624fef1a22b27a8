// Browser tests of a new user's first day: the setup and invite pages (the password rule before it is
// broken, errors as sentences, a styled page for a link that can no longer be used, the invited
// email), the layout at 1280 px and at a phone's 390 px, a failed send marked in the list, links in
// messages, numbers from other countries, and live mode asking nothing of the simulator. Run by run.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALICE,
  FAILING_NUMBER,
  assertCleanConsole,
  newPage,
  openConversationRow,
  openInbox,
  shot,
  startConversation,
  startFakeTwilio,
  typeAndSend,
  waitLive,
  withServer,
} from './lib.mjs';

const BOB = { email: 'bob@example.com', name: 'Bob Agent', number: ALICE.number };
const PHONE = { width: 390, height: 844 };

/** The text of the visible alert `selector`, once it shows. */
async function alertText(page, selector) {
  await page.waitForSelector(`${selector}:not([hidden])`);
  return (await page.textContent(selector)).trim();
}

/** A link that can no longer be used: 404, in the app's style, with a sentence and a way to sign in. */
async function assertGonePage(context, page, url, screenshot) {
  const res = await context.request.get(url);
  assert.equal(res.status(), 404, url);
  assert.match(res.headers()['content-type'], /^text\/html/);
  await page.goto(url);
  const styled = await page.evaluate(() => getComputedStyle(document.body).display === 'flex' && Boolean(document.querySelector('.auth-card')));
  assert.ok(styled, 'the page wears the app’s style');
  assert.match(await page.textContent('h1'), /can’t be used/);
  assert.match(await page.textContent('#notice-text'), /^[A-Z].*\.$/);
  assert.equal(await page.getAttribute('#notice-sign-in', 'href'), '/login');
  await shot(page, screenshot);
  await page.click('#notice-sign-in');
  await page.waitForURL(/\/login$/);
}

/** Whether `selector`'s text is shown whole (nothing cut by an ellipsis or overflow). */
function shownWhole(page, selector) {
  return page.$eval(selector, (el) => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().right <= window.innerWidth);
}

/** Whether `selector` is on screen, not covered, and can take a click at its centre. */
function reachable(page, selector) {
  return page.$eval(selector, (el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.left < 0 || r.right > window.innerWidth || r.bottom > window.innerHeight) return false;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return el === hit || el.contains(hit);
  });
}

test('r. first run: setup states the password rule and speaks in sentences; used links get a styled page; the invite names its email', { timeout: 60_000 }, async () => {
  await withServer(
    'r setup and invite',
    async ({ server, context, page, rec }) => {
      const link = /(http:\/\/localhost:\d+\/setup\?token=\S+)/.exec(server.output)?.[1];
      assert.ok(link, `the server printed a setup link:\n${server.output}`);
      const setupUrl = link.replace(/^http:\/\/localhost:\d+/, server.base);
      await page.goto(setupUrl);
      assert.match(await page.textContent('#password-rule'), /At least 8 characters/);
      assert.ok(await page.isVisible('#password-rule'), 'the rule shows before anything is typed');

      await page.fill('#name', 'Alice Admin');
      await page.fill('#email', ALICE.email);
      await page.fill('#password', 'short');
      await page.fill('#numbers', ALICE.number);
      await page.click('#setup-button');
      assert.equal(await alertText(page, '#setup-error'), 'Choose a password of at least 8 characters.');
      await shot(page, 'r1-setup-password-rule.png');

      // What the server refuses is said as a sentence, never as the API's field name.
      await page.fill('#password', 'password123');
      await page.fill('#email', 'alice');
      await page.click('#setup-button');
      assert.equal(await alertText(page, '#setup-error'), 'Enter a valid email address, such as ana@example.com.');
      await page.fill('#email', ALICE.email);
      await page.fill('#numbers', '12');
      await page.click('#setup-button');
      assert.match(await alertText(page, '#setup-error'), /^“12” is not a phone number\. .*one per line\.$/);
      await shot(page, 'r2-setup-error-sentence.png');
      await page.fill('#numbers', ALICE.number);
      await page.click('#setup-button');
      await page.waitForURL(/\/agent\/messages/);
      await waitLive(page);
      rec.console.length = 0; // Chromium logs the refused setups' 422s on purpose

      // Used: a styled 404 that leads to sign-in.
      const gone = await newPage();
      await assertGonePage(gone.context, gone.page, setupUrl, 'r3-setup-link-used.png');

      // An invite, opened by the invited agent: the page names the email it is for.
      const invited = await page.evaluate(async () => {
        const res = await fetch('/api/admin/agents', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ email: 'carol@example.com', name: 'Carol', numbers: ['+15550001000'] }),
        });
        return res.json();
      });
      const inviteUrl = invited.inviteUrl.replace(/^http:\/\/localhost:\d+/, server.base);
      const carol = await newPage();
      await carol.page.goto(inviteUrl);
      assert.equal(await carol.page.textContent('#invite-email'), 'carol@example.com');
      assert.match(await carol.page.textContent('#password-rule'), /At least 8 characters/);
      await carol.page.fill('#password', 'carols password');
      await carol.page.fill('#again', 'carols passworD');
      await carol.page.click('#invite-button');
      assert.match(await alertText(carol.page, '#invite-error'), /^The two passwords differ: .*\.$/);
      await carol.page.fill('#again', 'carols password');
      await shot(carol.page, 'r4-invite-names-the-email.png');
      await carol.page.click('#invite-button');
      await carol.page.waitForURL(/\/agent\/messages/);
      await waitLive(carol.page);
      assertCleanConsole(carol.rec);
      await assertGonePage(gone.context, gone.page, inviteUrl, 'r5-invite-link-used.png');
      await assertGonePage(gone.context, gone.page, `${server.base}/invite?token=unknown`, 'r6-invite-link-unknown.png');
      assertCleanConsole(rec);
      await carol.context.close();
      await gone.context.close();
    },
    { agents: [] },
  );
});

test('s. live mode: the page asks nothing of the simulator (no /dev/status, no 404 in the console) and offers no simulated SMS', { timeout: 45_000 }, async () => {
  const fake = await startFakeTwilio();
  try {
    await withServer(
      's live mode without dev requests',
      async ({ server, context, page, rec }) => {
        const asked = [];
        page.on('request', (r) => asked.push(new URL(r.url()).pathname));
        await openInbox(context, page, server);
        await page.reload();
        await waitLive(page);
        assert.deepEqual(asked.filter((p) => p.startsWith('/dev/')), [], 'no request to /dev/*');
        assert.equal(await page.isVisible('#simulate-button'), false);
        assertCleanConsole(rec);
      },
      { env: { TWILIO_ACCOUNT_SID: 'ACfeedfacefeedfacefeedfacefeedface', TWILIO_AUTH_TOKEN: 'fake-auth-token', TWILIO_API_BASE: fake.url } },
    );
  } finally {
    await fake.close();
  }
  await withServer('s simulator mode offers simulated SMS', async ({ server, context, page, rec }) => {
    const asked = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await openInbox(context, page, server);
    assert.ok(await page.isVisible('#simulate-button'), 'the simulator is offered');
    assert.deepEqual(asked.filter((p) => p.startsWith('/dev/')), []);
    assertCleanConsole(rec);
  });
});

test('t. layout: an unnamed number whole in the thread header, the search hint fits, phones keep the toggles and the admin table’s Status and Disable', { timeout: 60_000 }, async () => {
  await withServer(
    't layout',
    async ({ server, context, page, rec }) => {
      const { token } = await openInbox(context, page, server);
      await server.simulateInbound(token, { from: '+15559876543', body: 'Who is this?' });
      await openConversationRow(page, '987-6543');
      assert.equal(await page.textContent('#thread-title'), '+1 (555) 987-6543');
      assert.ok(await shownWhole(page, '#thread-title'), 'the number in the header is not cut at 1280 px');
      const placeholderFits = await page.$eval('#search-input', (input) => {
        const style = getComputedStyle(input);
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return ctx.measureText(input.placeholder).width <= room;
      });
      assert.ok(placeholderFits, 'the search placeholder is not cut');
      await shot(page, 't1-desktop-thread-header.png');

      const phone = await newPage({ viewport: PHONE });
      const res = await phone.context.request.post(`${server.base}/api/auth/login`, { data: { email: ALICE.email, password: 'password123' } });
      assert.equal(res.status(), 200);
      await phone.page.goto(`${server.base}/agent/messages`);
      await waitLive(phone.page);
      for (const control of ['#notify-toggle', '#sound-toggle', '#agents-button', '#logout-button', '#live-badge']) {
        assert.ok(await reachable(phone.page, control), `${control} is on a phone's screen`);
      }
      assert.ok(await phone.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll');
      await phone.page.click('#sound-toggle');
      assert.equal(await phone.page.getAttribute('#sound-toggle', 'aria-pressed'), 'true', 'the sound toggle works on a phone');
      await shot(phone.page, 't2-phone-toggles.png');

      await openConversationRow(phone.page, '987-6543');
      assert.ok(await shownWhole(phone.page, '#thread-title'), 'the number in the header is not cut at 390 px');
      await phone.page.click('#back-button');

      await phone.page.click('#agents-button');
      await phone.page.waitForSelector('#agents-dialog[open]');
      await phone.page.waitForFunction(() => document.querySelectorAll('#agents-rows tr').length === 2);
      const bob = await phone.page.$$eval('#agents-rows tr', (rows, email) => rows.find((tr) => tr.textContent.includes(email))?.dataset.id, BOB.email);
      const row = `#agents-rows tr[data-id="${bob}"]`;
      await phone.page.$eval(row, (tr) => tr.scrollIntoView({ block: 'center' }));
      assert.ok(await reachable(phone.page, `${row} .status-pill`), 'the Status column is on screen');
      assert.ok(await reachable(phone.page, `${row} .btn-danger`), 'the Disable button is on screen');
      const scroller = await phone.page.$eval('.admin-table-scroller', (el) => el.scrollWidth <= el.clientWidth);
      assert.ok(scroller, 'the agents table needs no sideways scroll');
      await shot(phone.page, 't3-phone-agents.png');
      await phone.page.click(`${row} .btn-danger`);
      await phone.page.waitForSelector('#disable-agent-dialog[open]');
      assertCleanConsole(phone.rec);
      assertCleanConsole(rec);
      await phone.context.close();
    },
    { agents: [ALICE, BOB] },
  );
});

test('u. a failed send is marked in the list, live; links in messages open safely; numbers abroad are grouped', { timeout: 60_000 }, async () => {
  await withServer('u list mark links numbers', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await startConversation(page, FAILING_NUMBER, null);
    await typeAndSend(page, 'This one will fail');
    await page.waitForSelector('#thread .bubble.outbound[data-status=failed]', { timeout: 8000 });
    const failedRow = '#conversation-list .conversation.has-failed';
    await page.waitForSelector(`${failedRow} .failed-mark:not([hidden])`);
    assert.match(await page.getAttribute(`${failedRow} .failed-mark`, 'aria-label'), /Not delivered/);
    await shot(page, 'u1-failed-send-in-list.png');
    // The contact answers: the newest message is theirs, and the mark goes.
    await server.simulateInbound(token, { from: FAILING_NUMBER, body: 'Got it anyway' });
    await page.waitForFunction(() => !document.querySelector('#conversation-list .conversation.has-failed'));

    const body = 'Menu: https://example.com/menu?day=1&x=2. Not this: javascript:alert(1) <b>bold</b>';
    await server.simulateInbound(token, { from: '+447700900123', body });
    await openConversationRow(page, '+44 7700 900123');
    assert.equal(await page.textContent('#thread-title'), '+44 7700 900123');
    const bubble = '#thread .bubble.inbound >> nth=-1';
    assert.equal(await page.textContent(`${bubble} >> .body`), body, 'the text is the message, every character');
    const anchors = await page.$$eval('#thread .bubble.inbound .body a', (els) =>
      els.map((a) => ({ href: a.getAttribute('href'), text: a.textContent, target: a.target, rel: a.rel })),
    );
    assert.deepEqual(anchors, [{ href: 'https://example.com/menu?day=1&x=2', text: 'https://example.com/menu?day=1&x=2', target: '_blank', rel: 'noopener noreferrer' }]);
    assert.equal(await page.$('#thread .bubble b'), null, 'markup stays text');
    await shot(page, 'u2-link-and-number-abroad.png');
    assertCleanConsole(rec);
  });
});
