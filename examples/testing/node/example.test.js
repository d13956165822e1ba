// Example tests of a discord.js bot against discord-mitm serve, for node:test
// (`node --test`; docs/testing-your-bot.md). DISCORD_MITM_BIN names the binary.
'use strict';

const assert = require('node:assert');
const path = require('node:path');
const { after, before, beforeEach, test } = require('node:test');

const { startServe } = require('./discord-mitm-testing');
const { createBot } = require('./example-bot');

const GENERAL = '200000000000000011';
const BOT = '100000000000000002';
const BOT_TOKEN = 'MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.ZXhhbXBsZQ';

let serve;
let bot;

before(async () => {
  serve = await startServe({ fixture: path.join(__dirname, '..', 'fixture.json') });
  bot = createBot(serve.url);
  await bot.login(BOT_TOKEN);
});

after(async () => {
  await bot?.destroy();
  await serve?.stop();
});

beforeEach(async () => {
  await serve.reset();
  // The reset ended the bot's session: wait until it has identified again.
  await serve.waitFor('GUILD_CREATE', { user_id: BOT }, { timeoutMs: 30000 });
});

test('ping', async () => {
  await serve.actAs('alice').sendMessage(GENERAL, '!ping');
  const reply = await serve.waitFor('MESSAGE_CREATE', { channel_id: GENERAL, author_id: BOT });
  assert.strictEqual(reply.data.content, 'pong');
});

test('echo sees a fresh world', async () => {
  const before = await serve.actAs('alice').act('rest', { method: 'GET', path: `/channels/${GENERAL}/messages` });
  assert.deepStrictEqual(before, []);
  await serve.actAs('alice').sendMessage(GENERAL, '!echo hello');
  const reply = await serve.waitFor('MESSAGE_CREATE', { channel_id: GENERAL, author_id: BOT });
  assert.strictEqual(reply.data.content, 'hello');
});

test('silence times out', async () => {
  await serve.actAs('alice').sendMessage(GENERAL, 'nothing for the bot');
  await assert.rejects(
    serve.waitFor('MESSAGE_CREATE', { channel_id: GENERAL, author_id: BOT }, { timeoutMs: 500 }),
    { code: 'ETIMEDOUT' },
  );
});
