// Browser tests of sending pictures (docs/api.md, "Sending pictures"), run by run.mjs after the Success
// Checklist: a picture attached by the button and one pasted into the text box show as thumbnails with
// their upload's progress, the counter says MMS, the sent bubble shows the pictures (from the files at
// once, then from the server) and goes to ✓✓ as the simulator fetches them; a file of the wrong type or
// too big is refused in words before any upload, and the server's refusal is shown too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCleanConsole, openInbox, shot, startConversation, withServer } from './lib.mjs';

/** A PNG drawn in the page (a colourful 160×120 picture), as bytes. */
async function drawnPng(page, hue) {
  const base64 = await page.evaluate((h) => {
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 120;
    const g = canvas.getContext('2d');
    const grad = g.createLinearGradient(0, 0, 160, 120);
    grad.addColorStop(0, `hsl(${h}, 80%, 60%)`);
    grad.addColorStop(1, `hsl(${h + 60}, 80%, 40%)`);
    g.fillStyle = grad;
    g.fillRect(0, 0, 160, 120);
    g.fillStyle = '#fff';
    g.beginPath();
    g.arc(80, 60, 30, 0, Math.PI * 2);
    g.fill();
    return canvas.toDataURL('image/png').split(',')[1];
  }, hue);
  return Buffer.from(base64, 'base64');
}

/** Attaches files through the attach button's file chooser. */
async function attachByButton(page, files) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#attach-button')]);
  await chooser.setFiles(files);
}

/** The thumbnails in the tray: [state]. */
async function tray(page) {
  return page.$$eval('#attachments .attachment', (els) => els.map((el) => el.dataset.state));
}

async function lastToast(page, pattern) {
  await page.waitForFunction(
    (source) => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => new RegExp(source).test(t.textContent)),
    pattern.source,
  );
}

test('pictures: attached by the button and by paste, thumbnails and MMS in the counter, sent and shown in the bubble, ✓✓', { timeout: 90_000 }, async () => {
  await withServer('mms pictures', async ({ server, context, page, rec }) => {
    await openInbox(context, page, server);
    await startConversation(page, '(415) 555-0123', 'Jane Doe');

    // By the button: a thumbnail with its progress, then ready; the counter says MMS.
    await attachByButton(page, [{ name: 'sunset.png', mimeType: 'image/png', buffer: await drawnPng(page, 20) }]);
    await page.waitForSelector('#attachments .attachment[data-state=done]');
    assert.match(await page.textContent('#segment-counter'), /^MMS · 1 picture$/);

    // By paste into the text box.
    await page.click('#composer-input');
    const pasted = (await drawnPng(page, 200)).toString('base64');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      const paste = new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });
      document.querySelector('#composer-input').dispatchEvent(paste);
    }, pasted);
    await page.waitForFunction(() => document.querySelectorAll('#attachments .attachment[data-state=done]').length === 2);
    await page.keyboard.type('Here you go');
    assert.match(await page.textContent('#segment-counter'), /^MMS · 2 pictures · 11 characters$/);
    assert.equal(await page.isDisabled('#send-button'), false);
    await shot(page, 'mms-1-two-pictures-attached.png');

    // Sent: the bubble shows both pictures and goes to ✓✓ once the simulator fetched them.
    await page.keyboard.press('Enter');
    assert.deepEqual(await tray(page), [], 'the tray empties on send');
    assert.match(await page.textContent('#segment-counter'), /^0 \/ 160/);
    await page.waitForSelector('#thread .bubble.outbound[data-status=delivered]', { timeout: 15_000 });
    const shown = await page.$$eval('#thread .bubble.outbound .media img', (imgs) =>
      imgs.map((img) => ({ src: new URL(img.src).pathname, loaded: img.complete && img.naturalWidth === 160 })),
    );
    const id = await page.getAttribute('#thread .bubble.outbound', 'data-id');
    assert.deepEqual(shown, [
      { src: `/api/crm/sms/messages/${id}/media/0`, loaded: true },
      { src: `/api/crm/sms/messages/${id}/media/1`, loaded: true },
    ]);
    assert.equal(await page.textContent('#thread .bubble.outbound .body'), 'Here you go');
    await shot(page, 'mms-2-sent-delivered.png');

    // A picture alone, without text, goes too.
    await attachByButton(page, [{ name: 'alone.png', mimeType: 'image/png', buffer: await drawnPng(page, 120) }]);
    await page.waitForSelector('#attachments .attachment[data-state=done]');
    await page.click('#send-button');
    await page.waitForFunction(() => document.querySelectorAll('#thread .bubble.outbound[data-status=delivered]').length === 2, null, { timeout: 15_000 });
    assertCleanConsole(rec);
  });
});

test('pictures: the wrong type or too big is refused before upload, the server refusal is shown, a thumbnail can be removed', { timeout: 60_000 }, async () => {
  await withServer('mms refusals', async ({ server, context, page, rec }) => {
    await openInbox(context, page, server);
    await startConversation(page, '(415) 555-0123', 'Jane Doe');
    const uploads = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/crm/sms/uploads')) uploads.push(r.url());
    });

    await attachByButton(page, [{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') }]);
    await lastToast(page, /notes\.txt is not a JPEG, PNG or GIF picture/);
    await attachByButton(page, [{ name: 'huge.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(5 * 1024 * 1024 + 1, 1) }]);
    await lastToast(page, /huge\.jpg is too big \(5\.1 MB; at most 5 MB\)/);
    assert.deepEqual(await tray(page), []);
    assert.deepEqual(uploads, [], 'nothing uploaded');

    // A page that calls itself a PNG passes the browser's check; the server reads the bytes.
    await attachByButton(page, [{ name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script></html>') }]);
    await page.waitForSelector('#attachments .attachment[data-state=failed]');
    await lastToast(page, /fake\.png: Not sent: only JPEG, PNG and GIF pictures can be sent/);
    assert.equal(await page.isDisabled('#send-button'), true);
    assert.match(await page.textContent('#composer-hint'), /Remove the pictures that could not be uploaded/);
    await shot(page, 'mms-3-refused-by-the-server.png');
    rec.console.length = 0; // Chromium logs the refused upload (415) on purpose

    await page.click('#attachments .attachment-remove');
    assert.deepEqual(await tray(page), []);
    assert.match(await page.textContent('#segment-counter'), /^0 \/ 160/);
    assertCleanConsole(rec);
  });
});
