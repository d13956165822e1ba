// A tiny discord.js bot for `discord-mitm serve`: logs in, says when it is ready, answers !ping.
//
//   discord-mitm serve --fixture examples/fixtures/minimal-bot.json --reset   # in one terminal
//   cd examples/bots/discordjs && npm install && node bot.js                  # in another
//
// DISCORD_API (default http://127.0.0.1:3000) and DISCORD_TOKEN (default the example world's bot)
// point it elsewhere. Only the REST base is changed (`rest.api`); discord.js finds the gateway
// through GET /gateway/bot as it does on Discord.
'use strict';

const { Client, Events, GatewayIntentBits } = require('discord.js');

const API = (process.env.DISCORD_API ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
const TOKEN = process.env.DISCORD_TOKEN ?? 'MTEwMDAwMDAwMDAwMDAwMDAwMg.example.bot-token';

const client = new Client({
  intents: [
    GatewayIntentBits.Guilds,
    GatewayIntentBits.GuildMessages,
    GatewayIntentBits.MessageContent,
  ],
  rest: { api: `${API}/api` },
});

client.once(Events.ClientReady, (ready) => {
  const guilds = ready.guilds.cache.map((guild) => guild.name).join(', ');
  console.log(`ready as ${ready.user.username} in ${ready.guilds.cache.size} guild(s): ${guilds}`);
});

client.on(Events.MessageCreate, async (message) => {
  if (message.author.id !== client.user.id && message.content === '!ping') {
    await message.channel.send('pong');
  }
});

client.login(TOKEN).catch((error) => {
  console.error(`login failed: ${error.message}`);
  process.exit(1);
});
