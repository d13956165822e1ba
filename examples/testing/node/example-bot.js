// The bot under test: a tiny discord.js bot. "!ping" -> "pong", "!echo TEXT" -> "TEXT".
// `createBot(apiUrl)` points discord.js at discord-mitm through its documented `rest.api`
// option (the gateway URL comes from GET /gateway/bot); a real bot reads it from configuration.
'use strict';

const { Client, Events, GatewayIntentBits } = require('discord.js');

function createBot(apiUrl) {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    rest: { api: `${apiUrl}/api` },
    // discord.js waits 5 s between IDENTIFYs (Discord's identify pacing); a local server needs
    // none, and tests reset (so re-IDENTIFY) often.
    ws: { buildIdentifyThrottler: () => ({ waitForIdentify: async () => {} }) },
  });
  client.on(Events.MessageCreate, async (message) => {
    if (message.author.bot) return;
    if (message.content === '!ping') await message.channel.send('pong');
    else if (message.content.startsWith('!echo ')) await message.channel.send(message.content.slice(6));
  });
  return client;
}

module.exports = { createBot };
