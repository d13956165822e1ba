// Node helper: a local Discord (`discord-mitm serve --control`) for a bot's tests, with the
// control API's client (docs/testing-your-bot.md). For node:test, Jest or any runner; only
// Node's standard library (Node 18+: global fetch).
//
//   const { startServe } = require('./discord-mitm-testing');
//   const serve = await startServe({ fixture: 'fixture.json' });   // a free loopback port
//   await serve.reset();
//   await serve.actAs('alice').sendMessage(GENERAL, '!ping');
//   const reply = await serve.waitFor('MESSAGE_CREATE', { channel_id: GENERAL, author_id: BOT });
//   await serve.stop();
//
// The binary is `options.binary`, DISCORD_MITM_BIN, or `discord-mitm` on PATH.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

/** A control call that answered with an error status. */
class ControlError extends Error {
  constructor(status, body) {
    super(`control API answered ${status}: ${JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

/** The test-control API of one `serve`. */
class Control {
  constructor(base, token) {
    this.base = base.replace(/\/$/, '');
    this.token = token;
    this.mark = 0;
  }

  async call(method, route, body) {
    const response = await fetch(this.base + route, {
      method,
      headers: {
        Authorization: `Control ${this.token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed };
  }

  async ok(method, route, body) {
    const { status, body: out } = await this.call(method, route, body);
    if (status >= 300) throw new ControlError(status, out);
    return out;
  }

  /** Cursor, clock and users of the running world. */
  status() {
    return this.ok('GET', '/_mitm/control');
  }

  /** Back to the loaded fixture (or another fixture file); later waits start here. */
  async reset(fixture) {
    const out = await this.ok('POST', '/_mitm/reset', fixture ? { fixture } : {});
    this.mark = out.cursor;
    return out;
  }

  /** A fixture user (id or username) to act as. */
  actAs(who) {
    return new User(this, who);
  }

  /** Logged entries after `since` (default: the last reset or mark) matching `match`. */
  async events(type, match = {}, since = this.mark) {
    const query = new URLSearchParams({ since: String(since), ...match });
    if (type) query.set('type', type);
    return (await this.ok('GET', `/_mitm/events?${query}`)).events;
  }

  /** The first entry of `type` matching `match` after `since` (default: the last reset or
   * mark); rejects with a timeout error after `timeoutMs`. */
  async waitFor(type, match = {}, { timeoutMs = 10000, since = this.mark } = {}) {
    const { status, body } = await this.call('POST', '/_mitm/events/wait', {
      type, match, since, timeout_ms: timeoutMs,
    });
    if (status === 408) {
      const error = new Error(`no ${type} matching ${JSON.stringify(match)} within ${timeoutMs} ms`);
      error.code = 'ETIMEDOUT';
      throw error;
    }
    if (status >= 300) throw new ControlError(status, body);
    return body.event;
  }

  /** Later waits only see what happens from now on. */
  async setMark() {
    this.mark = (await this.status()).cursor;
    return this.mark;
  }

  /** Reads (no argument) or moves the backend's clock: { advance_ms } | { set_ms } | { frozen }. */
  clock(change) {
    return change ? this.ok('POST', '/_mitm/clock', change) : this.ok('GET', '/_mitm/clock');
  }
}

/** Acting as one fixture user: each call is the REST call that user's client would make. */
class User {
  constructor(control, who) {
    this.control = control;
    this.who = who;
  }

  async act(action, fields = {}) {
    const out = await this.control.ok('POST', '/_mitm/act', { as: this.who, action, ...fields });
    if (out.status >= 300) throw new ControlError(out.status, out.body);
    return out.body;
  }

  sendMessage(channelId, content, fields = {}) {
    return this.act('send_message', { channel_id: String(channelId), content, ...fields });
  }

  editMessage(channelId, messageId, fields) {
    return this.act('edit_message', { channel_id: String(channelId), message_id: String(messageId), ...fields });
  }

  deleteMessage(channelId, messageId) {
    return this.act('delete_message', { channel_id: String(channelId), message_id: String(messageId) });
  }

  react(channelId, messageId, emoji) {
    return this.act('react', { channel_id: String(channelId), message_id: String(messageId), emoji });
  }

  typing(channelId) {
    return this.act('typing', { channel_id: String(channelId) });
  }

  invokeCommand(channelId, name, fields = {}) {
    return this.act('invoke_command', { channel_id: String(channelId), name, ...fields });
  }

  clickComponent(channelId, messageId, customId, fields = {}) {
    return this.act('click_component', {
      channel_id: String(channelId), message_id: String(messageId), custom_id: customId, ...fields,
    });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `discord-mitm serve --control` on a free loopback port with `fixture`; resolves to its
 * control client, with `url` (for the bot's REST and gateway) and `stop()`.
 */
async function startServe({ fixture, binary, args = [] } = {}) {
  const bin = binary ?? process.env.DISCORD_MITM_BIN ?? 'discord-mitm';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'discord-mitm-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const token = crypto.randomBytes(24).toString('hex');
  const child = spawn(bin, [
    'serve', '--api', `127.0.0.1:${port}`, '--rate-limit', 'off',
    '--data', path.join(dir, 'data'), '--fixture', fixture,
    '--control', '--exit-on-stdin-close', ...args,
  ], { env: { ...process.env, DISCORD_MITM_CONTROL_TOKEN: token }, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const control = new Control(url, token);
  control.url = url;
  control.stop = async () => {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${stderr}`);
    try {
      await control.status();
      return control;
    } catch (error) {
      if (Date.now() > deadline) {
        await control.stop();
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

module.exports = { startServe, Control, ControlError };
