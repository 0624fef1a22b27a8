// The Node backend smsdesk replaces, rebuilt as a reference for `benches/e2e.rs`: express,
// socket.io v4 and pg, written the way the original is described (docs/performance.md, "The
// Node reference"), neither handicapped nor tuned.
//
// What it does: the inbound webhook (`POST /api/crm/sms/webhook`, urlencoded) checked with
// twilio's own `validateRequest` against TWILIO_AUTH_TOKEN over PUBLIC_URL + path; the message
// stored in PostgreSQL once per MessageSid (the conversation upserted, the message inserted
// `ON CONFLICT DO NOTHING RETURNING`, the conversation's unread count and last message
// updated), each statement on its own from the pg Pool with its defaults, as the original's API
// routes did; then `message:new` emitted to the room `user:<agentId>` of every agent of the
// number. Sockets authenticate with `auth: {token}`, looked up in `sessions`, and join their
// agent's room.
//
// What it leaves out: the UI and every other route (sending, status callbacks, sync, search),
// typing relays, and login (the bench writes agents and sessions straight into the tables).
//
// Its tables live in the schema `crm`, created at start. `GET /readyz` answers 200 once they
// exist; the bench waits for it.
//
// Environment: PORT, DATABASE_URL (postgres://…), PUBLIC_URL, TWILIO_AUTH_TOKEN.

'use strict';

const http = require('http');
const express = require('express');
const { Server } = require('socket.io');
const { Pool } = require('pg');
const twilio = require('twilio');

const PORT = Number(process.env.PORT || 3000);
const PUBLIC_URL = (process.env.PUBLIC_URL || `http://localhost:${PORT}`).replace(/\/$/, '');
const AUTH_TOKEN = process.env.TWILIO_AUTH_TOKEN;
const WEBHOOK_PATH = '/api/crm/sms/webhook';

const pool = new Pool({ connectionString: process.env.DATABASE_URL });

const SCHEMA = `
CREATE SCHEMA IF NOT EXISTS crm;
CREATE TABLE IF NOT EXISTS crm.agents (
  id bigserial PRIMARY KEY,
  name text NOT NULL
);
CREATE TABLE IF NOT EXISTS crm.agent_numbers (
  agent_id bigint NOT NULL REFERENCES crm.agents(id),
  number text NOT NULL,
  PRIMARY KEY (number, agent_id)
);
CREATE TABLE IF NOT EXISTS crm.sessions (
  token text PRIMARY KEY,
  agent_id bigint NOT NULL REFERENCES crm.agents(id),
  expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS crm.conversations (
  id bigserial PRIMARY KEY,
  our_number text NOT NULL,
  contact_phone text NOT NULL,
  contact_name text,
  unread_count integer NOT NULL DEFAULT 0,
  last_message_id bigint,
  last_message_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (our_number, contact_phone)
);
CREATE TABLE IF NOT EXISTS crm.messages (
  id bigserial PRIMARY KEY,
  conversation_id bigint NOT NULL REFERENCES crm.conversations(id),
  direction text NOT NULL,
  from_number text NOT NULL,
  to_number text NOT NULL,
  body text NOT NULL,
  media jsonb NOT NULL DEFAULT '[]',
  status text NOT NULL,
  error_code integer,
  error_message text,
  twilio_sid text UNIQUE,
  client_id text,
  agent_id bigint,
  segments integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON crm.messages (conversation_id, id DESC);
`;

// The message as the page receives it (camelCase, ids as strings).
function toMessage(row) {
  return {
    id: String(row.id),
    conversationId: String(row.conversation_id),
    direction: row.direction,
    from: row.from_number,
    to: row.to_number,
    body: row.body,
    media: row.media,
    status: row.status,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    twilioSid: row.twilio_sid,
    clientId: row.client_id,
    agentId: row.agent_id === null ? null : String(row.agent_id),
    segments: row.segments,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function mediaOf(params) {
  const media = [];
  const count = Math.min(Number(params.NumMedia) || 0, 10);
  for (let i = 0; i < count; i++) {
    const url = params[`MediaUrl${i}`];
    if (url) media.push({ url, contentType: params[`MediaContentType${i}`] || null });
  }
  return media;
}

const app = express();
const server = http.createServer(app);
const io = new Server(server);

function emitNewMessage(agentId, message) {
  io.to(`user:${agentId}`).emit('message:new', message);
  console.log(`[Socket.io] 📤 Emitted new message to user:${agentId}`);
}

app.get('/readyz', (_req, res) => res.json({ ok: true }));

app.post(WEBHOOK_PATH, express.urlencoded({ extended: false }), async (req, res) => {
  const params = req.body || {};
  const signature = req.get('X-Twilio-Signature') || '';
  if (!twilio.validateRequest(AUTH_TOKEN, signature, PUBLIC_URL + req.originalUrl, params)) {
    console.warn('[Webhook] invalid signature: is PUBLIC_URL the URL Twilio posts to?');
    return res.status(403).json({ error: { code: 'forbidden', message: 'invalid signature' } });
  }
  const { MessageSid: sid, From: from, To: to, Body: body = '' } = params;
  if (!sid || !from || !to) {
    return res.status(400).json({ error: { code: 'bad_request', message: 'missing fields' } });
  }
  try {
    const conversation = await pool.query(
      `INSERT INTO crm.conversations (our_number, contact_phone, last_message_at)
       VALUES ($1, $2, now())
       ON CONFLICT (our_number, contact_phone) DO UPDATE SET updated_at = now()
       RETURNING id`,
      [to, from],
    );
    const conversationId = conversation.rows[0].id;
    const inserted = await pool.query(
      `INSERT INTO crm.messages (conversation_id, direction, from_number, to_number, body,
         media, status, twilio_sid, segments)
       VALUES ($1, 'inbound', $2, $3, $4, $5, 'received', $6, $7)
       ON CONFLICT (twilio_sid) DO NOTHING
       RETURNING *`,
      [conversationId, from, to, body, JSON.stringify(mediaOf(params)), sid,
        Number(params.NumSegments) || 1],
    );
    if (inserted.rows.length === 1) {
      const message = toMessage(inserted.rows[0]);
      await pool.query(
        `UPDATE crm.conversations SET unread_count = unread_count + 1, last_message_id = $2,
           last_message_at = $3, updated_at = now()
         WHERE id = $1`,
        [conversationId, message.id, message.createdAt],
      );
      const agents = await pool.query(
        'SELECT agent_id FROM crm.agent_numbers WHERE number = $1',
        [to],
      );
      for (const { agent_id: agentId } of agents.rows) {
        try {
          emitNewMessage(agentId, message);
        } catch (error) {
          // The message is stored; the page gets it on its next load.
          console.warn('Socket.io not ready:', error);
        }
      }
    }
    res.type('text/xml').send('<Response/>');
  } catch (error) {
    console.error('[Webhook] failed to store an inbound message', error);
    res.status(503).json({ error: { code: 'unavailable', message: 'database unavailable' } });
  }
});

io.use(async (socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (typeof token !== 'string') return next(new Error('unauthorized'));
  try {
    const session = await pool.query(
      'SELECT agent_id FROM crm.sessions WHERE token = $1 AND expires_at > now()',
      [token],
    );
    if (session.rows.length === 0) return next(new Error('unauthorized'));
    socket.data.agentId = session.rows[0].agent_id;
    next();
  } catch (error) {
    next(new Error('unavailable'));
  }
});

io.on('connection', (socket) => {
  socket.join(`user:${socket.data.agentId}`);
});

pool.query(SCHEMA).then(
  () => {
    server.listen(PORT, '127.0.0.1', () => {
      console.log(`Server ready! Local: http://localhost:${PORT}`);
      console.log('[Socket.io] 🚀 Server initialized');
    });
  },
  (error) => {
    console.error('DATABASE_URL: cannot create the schema', error);
    process.exit(1);
  },
);
