// Shared by the browser test files: preconditions, the server under test, the browser and small
// helpers. Scenario files import what they use from here; run.mjs runs them all.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { accessSync, constants as fsConstants, createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';


const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const SMSDESK_BIN = process.env.SMSDESK_BIN || '/var/tmp/smsdesk-target/debug/smsdesk';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = path.resolve(process.env.TEST_OUTPUT || path.join(REPO, 'test-output', 'browser'));

const PASSWORD = 'password123';
const ALICE = { email: 'alice@example.com', name: 'Alice Agent', number: '+15550001000' };
const STEP_TIMEOUT = 10_000; // default for every Playwright action / wait
const FAILING_NUMBER = '+15005550001'; // simulator: Twilio error 21211
const IN_CI = Boolean(process.env.CI) && !/^(0|false|no)$/i.test(process.env.CI);

// ---------------------------------------------------------------------------------------------
// Preconditions: Chromium, the server binary, playwright-core.

function isExecutable(p) {
  try {
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

if (!isExecutable(CHROMIUM)) {
  console.log(`Chromium not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (or set CHROMIUM)`);
  process.exit(IN_CI ? 1 : 0);
}
if (!isExecutable(SMSDESK_BIN)) {
  console.log(`smsdesk binary not found at ${SMSDESK_BIN}: build it with \`cargo build\` (or set SMSDESK_BIN)`);
  process.exit(1);
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.log(`playwright-core is not installed: run \`npm ci\` in ${path.relative(process.cwd(), HERE) || '.'}`);
  process.exit(IN_CI ? 1 : 0);
}

// A hard bound on the whole run, whatever hangs: the exit handler below kills our servers and
// playwright-core kills the browser it launched.
const RUN_LIMIT_MS = 480_000;
setTimeout(() => {
  console.error(`browser tests: the run took more than ${RUN_LIMIT_MS / 1000} s; giving up`);
  process.exit(1);
}, RUN_LIMIT_MS).unref();

mkdirSync(OUT, { recursive: true });
// Artifacts of an earlier failed run would be mistaken for this run's.
for (const f of readdirSync(OUT)) {
  if (/\.(failure\.png|console\.log|server\.log)$/.test(f)) rmSync(path.join(OUT, f), { force: true });
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what, fn, { timeout = STEP_TIMEOUT, interval = 25 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(interval);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function slug(s) {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
}

// ---------------------------------------------------------------------------------------------
// The server under test

const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Environment for the binary: simulator mode (no Twilio credentials), nothing inherited that matters. */
function serverEnv(extra) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('TWILIO_') || k === 'PUBLIC_URL' || k === 'DATABASE_URL' || k === 'PORT' || k === 'HOST') delete env[k];
  }
  return { ...env, RUST_LOG: 'info', NO_COLOR: '1', ...extra };
}

function runCli(args, { env, cwd, input = '', timeout = 20_000 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(SMSDESK_BIN, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`smsdesk ${args.join(' ')} exited with ${code ?? signal}:\n${out}`));
    });
    child.stdin.end(input);
  });
}

class Server {
  /** `env`: extra environment for the binary (e.g. live mode against a fake Twilio). */
  constructor(name, env = {}) {
    this.name = name;
    this.extraEnv = env;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'smsdesk-browser-'));
    this.dbUrl = `sqlite://${path.join(this.dir, 'db.sqlite')}`;
    this.logPath = path.join(this.dir, 'server.log');
    this.log = createWriteStream(this.logPath, { flags: 'a' });
    this.child = null;
    this.port = null;
    this.starts = 0;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  env() {
    return serverEnv({ DATABASE_URL: this.dbUrl, PORT: String(this.port), HOST: '127.0.0.1', ...this.extraEnv });
  }

  async addAgent({ email, name, number }) {
    await runCli(['agent', 'add', '--email', email, '--name', name, '--number', number], {
      env: serverEnv({ DATABASE_URL: this.dbUrl }),
      cwd: this.dir,
      input: `${PASSWORD}\n`,
    });
  }

  /** Start (or restart, same port and database); resolves when /healthz answers 200. */
  async start() {
    if (this.port == null) this.port = await freePort();
    this.starts += 1;
    this.log.write(`\n===== start #${this.starts} on port ${this.port} =====\n`);
    const child = spawn(SMSDESK_BIN, [], { env: this.env(), cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    liveChildren.add(child);
    let exited = null;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        exited = code ?? signal;
        liveChildren.delete(child);
        this.log.write(`===== exited: ${exited} =====\n`);
        resolve(exited);
      });
    });
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    this.output = '';
    const keep = (d) => (this.output += d);
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    await waitUntil(
      `the server on port ${this.port} (/healthz)`,
      async () => {
        if (exited !== null) throw new Error(`the server exited (${exited}) before answering; log: ${this.logPath}`);
        const res = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(1000) });
        return res.status === 200;
      },
      { timeout: 20_000, interval: 20 },
    );
    return Date.now();
  }

  /** Stop with `signal`, SIGKILL after 5 s; resolves when the process is gone. */
  async stop(signal = 'SIGTERM') {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  logText() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async dispose(keepLogAs) {
    await this.stop();
    await new Promise((r) => this.log.end(r));
    if (keepLogAs) writeFileSync(path.join(OUT, `${keepLogAs}.server.log`), this.logText());
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** POST /api/auth/login from the test itself: {agent, token}. */
  async apiLogin(email = ALICE.email) {
    const res = await fetch(`${this.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    assert.equal(res.status, 200, `login of ${email}`);
    return res.json();
  }

  /** POST /dev/simulate/inbound with a Bearer token: the simulator posts a signed inbound webhook. */
  async simulateInbound(token, { from, to = ALICE.number, body, mediaUrls }) {
    const res = await fetch(`${this.base}/dev/simulate/inbound`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ from, to, body, ...(mediaUrls ? { mediaUrls } : {}) }),
    });
    const text = await res.text();
    assert.ok(res.status >= 200 && res.status < 300, `POST /dev/simulate/inbound → ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

// ---------------------------------------------------------------------------------------------
// The browser

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
  });
});

after(async () => {
  await browser?.close();
});

/** A page with its console and errors recorded. */
async function newPage({ viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'America/Los_Angeles' });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const rec = { console: [], errors: [], dialogs: [] };
  page.on('console', (m) => rec.console.push({ type: m.type(), text: m.text(), t: Date.now() }));
  page.on('pageerror', (e) => rec.errors.push(String(e?.stack || e)));
  page.on('dialog', (d) => {
    rec.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  return { context, page, rec };
}

/**
 * Run `fn` with a fresh server (agents created) and a fresh browser context; always cleaned up.
 * The server log and the page console are kept in TEST_OUTPUT when the test fails.
 */
async function withServer(name, fn, { agents = [ALICE], viewport, env } = {}) {
  const server = new Server(name, env);
  let ctx = null;
  let failed = true;
  try {
    for (const a of agents) await server.addAgent(a);
    await server.start();
    ctx = await newPage({ viewport });
    await fn({ server, ...ctx });
    failed = false;
  } finally {
    if (ctx) {
      if (failed) {
        writeFileSync(
          path.join(OUT, `${slug(name)}.console.log`),
          [...ctx.rec.console.map((c) => `[${c.type}] ${c.text}`), ...ctx.rec.errors.map((e) => `[pageerror] ${e}`)].join('\n'),
        );
        await ctx.page.screenshot({ path: path.join(OUT, `${slug(name)}.failure.png`) }).catch(() => {});
      }
      await ctx.context.close().catch(() => {});
    }
    await server.dispose(failed ? slug(name) : null);
  }
}

/**
 * A stand-in for Twilio's API in live mode (its address is TWILIO_API_BASE, so the media proxy
 * fetches from it): serves the media put in `media`, accepts every message created
 * (`POST …/Messages.json`, kept in `sent` as its form fields), and records every request and
 * websocket upgrade, so that an exfiltration attempt would be seen.
 */
async function startFakeTwilio() {
  const media = new Map();
  const requests = [];
  const upgrades = [];
  const sent = [];
  const srv = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const { pathname } = new URL(req.url, 'http://fake');
    if (req.method === 'POST' && /^\/2010-04-01\/Accounts\/[^/]+\/Messages\.json$/.test(pathname)) {
      let form = '';
      req.on('data', (d) => (form += d));
      req.on('end', () => {
        const fields = Object.fromEntries(new URLSearchParams(form));
        const sid = `SM${crypto.randomBytes(16).toString('hex')}`;
        sent.push({ sid, ...fields });
        res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ sid, status: 'queued', to: fields.To, from: fields.From, body: fields.Body }));
      });
      return;
    }
    const item = media.get(pathname);
    if (!item) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': item.type }).end(item.body);
  });
  srv.on('upgrade', (req, socket) => {
    upgrades.push(req.url);
    socket.destroy();
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return { url, media, requests, upgrades, sent, close: () => new Promise((resolve) => srv.close(resolve)) };
}

/** X-Twilio-Signature as Twilio computes it: HMAC-SHA1 over the URL and the sorted parameters. */
function twilioSignature(token, url, params) {
  const data = url + Object.keys(params).sort().map((k) => k + params[k]).join('');
  return crypto.createHmac('sha1', token).update(data, 'utf8').digest('base64');
}

async function shot(page, file, opts = {}) {
  await page.screenshot({ path: path.join(OUT, file), ...opts });
}

/** No uncaught exceptions, no console errors (CSP violations, failed requests…) on a page whose server stayed up. */
function assertCleanConsole(rec) {
  assert.deepEqual(rec.errors, [], 'uncaught exceptions in the page');
  const errors = rec.console.filter((c) => c.type === 'error').map((c) => c.text);
  assert.deepEqual(errors, [], 'console errors in the page');
  assert.deepEqual(rec.dialogs, [], 'dialogs opened by the page');
}

// Page helpers ----------------------------------------------------------------------------------

async function loginThroughForm(page, server, { email = ALICE.email, password = PASSWORD } = {}) {
  await page.goto(`${server.base}/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#login-button');
}

/** Log in with the API through the context (shares the cookie jar), then open the inbox. */
async function openInbox(context, page, server) {
  const res = await context.request.post(`${server.base}/api/auth/login`, { data: { email: ALICE.email, password: PASSWORD } });
  assert.equal(res.status(), 200);
  await page.goto(`${server.base}/agent/messages`);
  await waitLive(page);
  return res.json();
}

async function badge(page) {
  return page.$eval('#live-badge', (el) => ({ state: el.dataset.state, text: el.textContent.trim() }));
}

async function waitLive(page, timeout = STEP_TIMEOUT) {
  await page.waitForFunction(
    () => {
      const b = document.querySelector('#live-badge');
      return b && b.dataset.state === 'live' && b.textContent.trim() === 'Live';
    },
    null,
    { timeout, polling: 20 },
  );
}

async function waitConnecting(page, timeout = STEP_TIMEOUT) {
  await page.waitForFunction(
    () => {
      const b = document.querySelector('#live-badge');
      return b && b.dataset.state === 'connecting' && b.textContent.trim() === 'Connecting...';
    },
    null,
    { timeout, polling: 20 },
  );
}

/** Record every change of the badge, with the browser's wall clock (same clock as the test's). */
async function recordBadge(page) {
  await page.evaluate(() => {
    const b = document.querySelector('#live-badge');
    window.__badge = [{ state: b.dataset.state, text: b.textContent.trim(), t: Date.now() }];
    new MutationObserver(() => {
      const last = window.__badge[window.__badge.length - 1];
      const now = { state: b.dataset.state, text: b.textContent.trim(), t: Date.now() };
      if (now.state !== last.state || now.text !== last.text) window.__badge.push(now);
    }).observe(b, { attributes: true, childList: true, characterData: true, subtree: true });
  });
}

async function badgeHistory(page) {
  return page.evaluate(() => window.__badge || []);
}

/** Record, for every bubble in the thread, each distinct (status, indicator) it shows, with times. */
async function recordBubbles(page) {
  await page.evaluate(() => {
    window.__bubbles = [];
    const seen = new Map();
    const scan = () => {
      for (const el of document.querySelectorAll('#thread .bubble')) {
        const st = el.querySelector('.status');
        const snap = {
          key: el.dataset.key,
          id: el.dataset.id,
          clientId: el.dataset.clientId,
          direction: el.dataset.direction,
          status: el.dataset.status,
          body: el.querySelector('.body')?.textContent ?? '',
          statusClass: st?.className ?? '',
          statusText: st?.textContent ?? '',
          spinner: Boolean(st?.querySelector('.spinner')),
        };
        const sig = JSON.stringify(snap);
        if (seen.get(el) !== sig) {
          seen.set(el, sig);
          window.__bubbles.push({ ...snap, t: Date.now() });
        }
      }
    };
    scan();
    new MutationObserver(scan).observe(document.querySelector('#thread'), {
      attributes: true,
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
}

async function bubbleHistory(page) {
  return page.evaluate(() => window.__bubbles || []);
}

/** The thread's bubbles as plain data. */
async function bubbles(page) {
  return page.$$eval('#thread .bubble', (els) =>
    els.map((el) => {
      const st = el.querySelector('.status');
      const err = el.querySelector('.error-line');
      const retry = el.querySelector('.retry-button');
      return {
        key: el.dataset.key,
        id: el.dataset.id,
        clientId: el.dataset.clientId,
        direction: el.dataset.direction,
        status: el.dataset.status,
        body: el.querySelector('.body')?.textContent ?? '',
        statusText: st?.textContent ?? '',
        statusClass: st?.className ?? '',
        spinner: Boolean(st?.querySelector('.spinner')),
        errorShown: Boolean(err && !err.hidden),
        errorText: el.querySelector('.error-text')?.textContent ?? '',
        retryShown: Boolean(retry && !retry.hidden),
      };
    }),
  );
}

async function startConversation(page, phone, name, { screenshot } = {}) {
  await page.click('#new-conversation-button');
  await page.fill('#new-conversation-form input[name=phone]', phone);
  if (name) await page.fill('#new-conversation-form input[name=name]', name);
  if (screenshot) await shot(page, screenshot);
  await page.click('#new-conversation-submit');
  await page.waitForSelector('#new-conversation-dialog', { state: 'hidden' });
  await page.waitForSelector('#thread-view', { state: 'visible' });
}

async function typeAndSend(page, text) {
  await page.fill('#composer-input', text);
  const t0 = Date.now();
  await page.press('#composer-input', 'Enter');
  return t0;
}

async function openConversationRow(page, phoneText) {
  await page.locator('#conversation-list .conversation', { hasText: phoneText }).first().click();
  await page.waitForSelector('#thread-view', { state: 'visible' });
}

async function listRows(page) {
  return page.$$eval('#conversation-list .conversation', (els) =>
    els.map((li) => ({
      id: li.dataset.id,
      name: li.querySelector('.conversation-name')?.textContent ?? '',
      preview: li.querySelector('.conversation-preview')?.textContent ?? '',
      unread: li.querySelector('.unread-badge')?.hidden ? 0 : Number(li.querySelector('.unread-badge')?.textContent || 0),
      active: li.classList.contains('active'),
    })),
  );
}

/** Resolve once `ms` pass with no HTTP request starting or in flight. */
async function quietFor(page, ms, timeout = STEP_TIMEOUT) {
  let inflight = 0;
  let last = Date.now();
  const start = () => {
    inflight += 1;
    last = Date.now();
  };
  const end = () => {
    inflight = Math.max(0, inflight - 1);
    last = Date.now();
  };
  page.on('request', start);
  page.on('requestfinished', end);
  page.on('requestfailed', end);
  try {
    await waitUntil(`${ms} ms without HTTP requests`, () => inflight === 0 && Date.now() - last >= ms, { timeout, interval: 50 });
  } finally {
    page.off('request', start);
    page.off('requestfinished', end);
    page.off('requestfailed', end);
  }
}

function rgb(color) {
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color);
  return m ? m.slice(1, 4).map(Number) : null;
}

// ---------------------------------------------------------------------------------------------
// The tests (the Node original's Success Checklist)

export {
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
};
