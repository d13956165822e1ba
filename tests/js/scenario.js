// discord.js (unmodified, from npm) pointed at `discord-mitm serve`: REST through the `rest.api`
// option, the gateway URL from GET /gateway/bot. Runs one scenario step by step and prints what
// discord.js handed it as JSON lines on stdout, for tests/serve_clients_discordjs.rs to check.
// Any step that fails or times out exits non-zero with the reason on stderr.
//
// Environment: DMITM_API (http://HOST:PORT), BOT_TOKEN, ALICE_TOKEN, ALICE_ID, GUILD_ID,
// GENERAL_ID, DJS_COMPRESS = zlib-stream (zlib-sync loaded, the default) | none (discord.js
// behaves as when zlib-sync is not installed: an uncompressed gateway), and DJS_SCENARIO =
// full (the default) | resume (the socket is cut, alice posts meanwhile, discord.js resumes) |
// shards (two shards in one client: each guild and event on its shard, once) | demo (the world
// `serve` makes without a fixture, with the tokens its banner prints).
'use strict';

const Module = require('node:module');

const compress = process.env.DJS_COMPRESS ?? 'zlib-stream';
if (compress === 'none') {
  // discord.js picks zlib-stream only when require('zlib-sync') succeeds; make it fail as it
  // would on an install without the optional native module.
  const load = Module._load;
  Module._load = function (request, ...rest) {
    if (request === 'zlib-sync') throw new Error('zlib-sync disabled for this run');
    return load.call(this, request, ...rest);
  };
}

const {
  ActionRowBuilder,
  ApplicationCommandOptionType,
  ButtonBuilder,
  ButtonStyle,
  ChannelType,
  Client,
  Events,
  GatewayIntentBits,
  Partials,
} = require('discord.js');
const { SimpleShardingStrategy } = require('@discordjs/ws');

const SCENARIO = process.env.DJS_SCENARIO ?? 'full';
const env = (name) => {
  const value = process.env[name];
  if (!value) fail(`${name} is not set`);
  return value;
};
const API = env('DMITM_API');
const BOT_TOKEN = env('BOT_TOKEN');
const ALICE_TOKEN = env('ALICE_TOKEN');
const ALICE_ID = env('ALICE_ID');
// The demo world's ids are not known in advance: that scenario finds its guild and channel.
const GUILD_ID = SCENARIO === 'demo' ? '' : env('GUILD_ID');
const GENERAL_ID = SCENARIO === 'demo' ? '' : env('GENERAL_ID');
const STEP_TIMEOUT_MS = 15000;

function fail(why) {
  process.stderr.write(`SCENARIO FAILED: ${why}\n`);
  process.exit(1);
}

function emit(step, data) {
  process.stdout.write(`${JSON.stringify({ step, data })}\n`);
}

/** Resolves with the first `event` whose arguments `pick` maps to something other than undefined. */
function waitFor(client, event, what, pick) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`timed out waiting for ${what}`), STEP_TIMEOUT_MS);
    const listener = (...args) => {
      const found = pick(...args);
      if (found !== undefined) {
        clearTimeout(timer);
        client.off(event, listener);
        resolve(found);
      }
    };
    client.on(event, listener);
  });
}

/** Acts as the user alice over plain REST (a bare user token). */
async function asAlice(method, path, body) {
  const response = await fetch(`${API}/api/v10${path}`, {
    method,
    headers: { Authorization: ALICE_TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) fail(`alice ${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function step(what, promise) {
  try {
    return await promise;
  } catch (error) {
    fail(`${what}: ${error?.stack ?? error} ${error?.rawError ? JSON.stringify(error.rawError) : ''}`);
  }
}

async function main() {
  let strategy = null;
  const client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMembers,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.GuildMessageReactions,
      GatewayIntentBits.MessageContent,
      GatewayIntentBits.DirectMessages,
    ],
    // DM channels are not in the cache until a message arrives in one.
    partials: [Partials.Channel],
    // discord.js builds `${api}/v10/...`; the gateway URL then comes from GET /gateway/bot.
    rest: { api: `${API}/api` },
    ...(SCENARIO === 'shards' ? { shards: [0, 1], shardCount: 2 } : {}),
    // The default strategy, kept at hand so the resume scenario can reach the shard's socket.
    ws: {
      buildStrategy: (manager) => {
        strategy = new SimpleShardingStrategy(manager);
        return strategy;
      },
    },
  });
  const debug = [];
  client.on(Events.Debug, (line) => debug.push(line));
  // How discord.js's REST layer fared with serve's X-RateLimit headers: waits it chose to make,
  // and 429s it ran into anyway.
  const restStats = { responses: 0, status_429: 0, rate_limited_waits: 0, global_waits: 0 };
  client.rest.on('response', (_request, response) => {
    restStats.responses += 1;
    if (response.status === 429) restStats.status_429 += 1;
  });
  client.rest.on('rateLimited', (info) => {
    restStats.rate_limited_waits += 1;
    if (info.global) restStats.global_waits += 1;
  });
  client.on(Events.Error, (error) => fail(`client error: ${error?.stack ?? error}`));
  process.on('unhandledRejection', (error) => fail(`unhandled rejection: ${error?.stack ?? error}`));

  const ready = waitFor(client, Events.ClientReady, 'ready', (c) => c);
  await step('login', client.login(BOT_TOKEN));
  await ready;
  const shardDebug = debug.filter((l) => /Connecting to|compression|Session Limit|Fetched Gateway/.test(l));
  emit('ready', {
    user: client.user.username,
    bot: client.user.bot,
    user_id: client.user.id,
    application_id: client.application?.id ?? null,
    guilds: [...client.guilds.cache.keys()],
    ping_ms: client.ws.ping,
    debug: shardDebug,
  });

  if (SCENARIO === 'demo') {
    await demoScenario(client);
    return;
  }
  if (SCENARIO === 'shards') {
    await shardsScenario(client);
    return;
  }
  if (SCENARIO === 'resume') {
    await resumeScenario(client, strategy, debug);
    return;
  }

  const guild = client.guilds.cache.get(GUILD_ID);
  if (!guild) fail('the guild is not in the cache after ready');
  emit('cache', {
    name: guild.name,
    available: guild.available,
    owner_id: guild.ownerId,
    member_count: guild.memberCount,
    channels: guild.channels.cache.map((c) => c.name).sort(),
    roles: guild.roles.cache.map((r) => r.name).sort(),
    everyone_role: guild.roles.everyone?.id ?? null,
    members: guild.members.cache.map((m) => m.user.username).sort(),
    me_roles: guild.members.me?.roles.cache.size ?? null,
    can_send_in_general: guild.channels.cache.get(GENERAL_ID)?.permissionsFor(client.user)?.has('SendMessages') ?? null,
  });

  const general = guild.channels.cache.get(GENERAL_ID);
  if (!general?.isTextBased()) fail('#general is not a cached text channel');

  // Send, and see our own MESSAGE_CREATE.
  const created = waitFor(client, Events.MessageCreate, 'our MESSAGE_CREATE', (m) =>
    m.author.id === client.user.id && m.content === 'hello from discord.js' ? m : undefined);
  const sent = await step('send', general.send('hello from discord.js'));
  const echoed = await created;
  emit('sent', {
    same_id: echoed.id === sent.id,
    content: echoed.content,
    guild_id: echoed.guildId,
    member_cached: echoed.member !== null,
  });

  // Edit.
  const updated = waitFor(client, Events.MessageUpdate, 'MESSAGE_UPDATE', (old, now) =>
    now.id === sent.id ? { old, now } : undefined);
  const edited = await step('edit', sent.edit('edited by discord.js'));
  const update = await updated;
  emit('edited', {
    rest_content: edited.content,
    old_content: update.old.content,
    new_content: update.now.content,
    edited_at: update.now.editedTimestamp !== null,
  });

  // React.
  const reacted = waitFor(client, Events.MessageReactionAdd, 'MESSAGE_REACTION_ADD', (reaction, user) =>
    reaction.message.id === sent.id ? { reaction, user } : undefined);
  await step('react', sent.react('👍'));
  const reaction = await reacted;
  const reactors = await step('reaction users', reaction.reaction.users.fetch());
  emit('reacted', {
    emoji: reaction.reaction.emoji.name,
    user_id: reaction.user.id,
    count: reaction.reaction.count,
    users: reactors.map((u) => u.username),
  });

  // Another user posts; the bot replies.
  const pinged = waitFor(client, Events.MessageCreate, "alice's MESSAGE_CREATE", (m) =>
    m.author.id === ALICE_ID ? m : undefined);
  await asAlice('POST', `/channels/${GENERAL_ID}/messages`, { content: 'ping' });
  const ping = await pinged;
  const ponged = waitFor(client, Events.MessageCreate, 'the reply', (m) =>
    m.author.id === client.user.id && m.reference ? m : undefined);
  await step('reply', ping.reply('pong'));
  const pong = await ponged;
  const replied = await step('fetch the replied-to message', pong.fetchReference());
  emit('alice_message', {
    content: ping.content,
    author: ping.author.username,
    member_roles: ping.member?.roles.cache.size ?? null,
  });
  emit('replied', {
    content: pong.content,
    reference: pong.reference?.messageId ?? null,
    ping_id: ping.id,
    reference_content: replied.content,
  });

  // History.
  const history = await step('fetch messages', general.messages.fetch({ limit: 10 }));
  emit('history', history.map((m) => m.content));

  // Typing.
  await step('typing', general.sendTyping());

  // Members: by id over REST, everyone over the gateway (op 8 REQUEST_GUILD_MEMBERS).
  const alice = await step('fetch alice', guild.members.fetch({ user: ALICE_ID, force: true }));
  const everyone = await step('fetch all members', guild.members.fetch({ time: 10000 }));
  emit('members', {
    alice: alice.user.username,
    alice_roles: alice.roles.cache.filter((r) => r.id !== guild.id).map((r) => r.name),
    alice_joined: alice.joinedTimestamp !== null,
    all: everyone.map((m) => m.user.username).sort(),
  });

  // A thread from the message.
  const threadCreated = waitFor(client, Events.ThreadCreate, 'THREAD_CREATE', (t) =>
    t.name === 'discord.js thread' ? t : undefined);
  const thread = await step('start a thread', sent.startThread({ name: 'discord.js thread' }));
  const threadEvent = await threadCreated;
  const inThread = await step('post in the thread', thread.send('inside the thread'));
  emit('thread', {
    same_id: thread.id === threadEvent.id,
    name: threadEvent.name,
    parent_id: threadEvent.parentId,
    is_thread: threadEvent.isThread(),
    message_channel: inThread.channelId === thread.id,
  });

  // Slash commands: PUT guild commands, then an interaction that the bot answers.
  const commands = await step(
    'register commands',
    guild.commands.set([
      {
        name: 'echo',
        description: 'Echoes',
        options: [{ type: ApplicationCommandOptionType.String, name: 'text', description: 'what to echo', required: true }],
      },
    ]),
  );
  const interacted = waitFor(client, Events.InteractionCreate, 'INTERACTION_CREATE', (i) =>
    i.isChatInputCommand() ? i : undefined);
  await asAlice('POST', '/_mitm/interactions', {
    application_id: client.application.id,
    channel_id: GENERAL_ID,
    name: 'echo',
    options: [{ name: 'text', type: 3, value: 'hi' }],
  });
  const interaction = await interacted;
  const answered = waitFor(client, Events.MessageCreate, "the interaction's answer", (m) =>
    m.content.startsWith('echo:') ? m : undefined);
  await step('reply to the interaction', interaction.reply({ content: `echo: ${interaction.options.getString('text')}` }));
  const original = await step('fetch the original response', interaction.fetchReply());
  const answer = await answered;
  await step('follow up', interaction.followUp({ content: 'and a follow-up' }));
  emit('interaction', {
    commands: commands.map((c) => c.name),
    command: interaction.commandName,
    user: interaction.user.username,
    option: interaction.options.getString('text'),
    in_guild: interaction.inGuild(),
    replied: interaction.replied,
    original: original.content,
    answer: answer.content,
    answer_interaction_user: answer.interactionMetadata?.user?.username ?? answer.interaction?.user?.username ?? null,
  });

  // A button: alice clicks it, the bot updates the message in place (callback type 7).
  const withButton = await step('send a button', general.send({
    content: 'approve?',
    components: [new ActionRowBuilder().addComponents(
      new ButtonBuilder().setCustomId('approve').setLabel('Approve').setStyle(ButtonStyle.Success))],
  }));
  const clicked = waitFor(client, Events.InteractionCreate, 'the button INTERACTION_CREATE', (i) =>
    i.isButton() ? i : undefined);
  await asAlice('POST', '/_mitm/interactions', {
    type: 3,
    application_id: client.application.id,
    channel_id: GENERAL_ID,
    message_id: withButton.id,
    custom_id: 'approve',
    component_type: 2,
  });
  const click = await clicked;
  const buttonUpdated = waitFor(client, Events.MessageUpdate, 'the button MESSAGE_UPDATE', (old, now) =>
    now.id === withButton.id && now.content === 'approved' ? now : undefined);
  await step('update from the button', click.update({ content: 'approved', components: [] }));
  const afterClick = await buttonUpdated;
  emit('button', {
    custom_id: click.customId,
    user: click.user.username,
    message_id_matches: click.message.id === withButton.id,
    content: afterClick.content,
    components: afterClick.components.length,
  });

  // A DM from alice, answered in the DM.
  const dm = await asAlice('POST', '/users/@me/channels', { recipient_id: client.user.id });
  const dmReceived = waitFor(client, Events.MessageCreate, "alice's DM", (m) =>
    m.channel.type === ChannelType.DM && m.author.id === ALICE_ID ? m : undefined);
  await asAlice('POST', `/channels/${dm.id}/messages`, { content: 'psst' });
  const dmMessage = await dmReceived;
  const dmAnswered = waitFor(client, Events.MessageCreate, 'the DM answer', (m) =>
    m.channel.type === ChannelType.DM && m.author.id === client.user.id ? m : undefined);
  await step('answer the DM', dmMessage.reply('got it'));
  const dmAnswer = await dmAnswered;
  const aliceUser = await step('fetch alice as a user', client.users.fetch(ALICE_ID, { force: true }));
  const toAlice = await step('DM alice from the bot', aliceUser.send('hello alice'));
  emit('dm', {
    content: dmMessage.content,
    in_guild: dmMessage.inGuild(),
    channel_id_matches: dmMessage.channelId === dm.id,
    answer: dmAnswer.content,
    bot_dm_same_channel: toAlice.channelId === dm.id,
  });

  // Guild management: a channel, a role given to carol, a nickname, a pin, an embed, a bulk delete.
  const channelCreated = waitFor(client, Events.ChannelCreate, 'CHANNEL_CREATE', (c) =>
    c.name === 'djs-made' ? c : undefined);
  const made = await step('create a channel', guild.channels.create({ name: 'djs-made', topic: 'made by discord.js', parent: general.parentId }));
  const madeEvent = await channelCreated;
  const roleCreated = waitFor(client, Events.GuildRoleCreate, 'GUILD_ROLE_CREATE', (r) =>
    r.name === 'Helpers' ? r : undefined);
  const role = await step('create a role', guild.roles.create({ name: 'Helpers', colors: { primaryColor: 0x00ff00 }, mentionable: true }));
  await roleCreated;
  const memberUpdated = waitFor(client, Events.GuildMemberUpdate, 'GUILD_MEMBER_UPDATE', (old, now) =>
    now.user.username === 'carol' && now.roles.cache.has(role.id) ? now : undefined);
  const carol = guild.members.cache.find((m) => m.user.username === 'carol');
  if (!carol) fail('carol is not cached');
  await step('give carol the role', carol.roles.add(role));
  const carolNow = await memberUpdated;
  const nicked = waitFor(client, Events.GuildMemberUpdate, 'the nickname GUILD_MEMBER_UPDATE', (old, now) =>
    now.nickname === 'caz' ? now : undefined);
  await step('set a nickname', carol.setNickname('caz'));
  await nicked;
  const embedded = await step('send an embed', made.send({ embeds: [{ title: 'Report', description: 'all good', color: 0x5865f2, fields: [{ name: 'a', value: 'b', inline: true }] }] }));
  const pinsUpdated = waitFor(client, Events.ChannelPinsUpdate, 'CHANNEL_PINS_UPDATE', (channel) =>
    channel.id === made.id ? channel : undefined);
  await step('pin', embedded.pin());
  await pinsUpdated;
  const pins = await step('fetch pins', made.messages.fetchPins ? made.messages.fetchPins() : made.messages.fetchPinned());
  const extra = await step('send more', made.send('one more'));
  // A burst on one route: with serve's rate limits on, discord.js must pace itself by the headers.
  const burst = await step('burst', Promise.all(Array.from({ length: 7 }, (_, i) => made.send(`burst ${i}`))));
  const bulkDeleted = waitFor(client, Events.MessageBulkDelete, 'MESSAGE_DELETE_BULK', (messages) => messages);
  const removed = await step('bulk delete', made.bulkDelete([embedded.id, extra.id, ...burst.map((m) => m.id)]));
  const bulk = await bulkDeleted;
  emit('management', {
    channel: { name: madeEvent.name, topic: madeEvent.topic, parent_id: madeEvent.parentId, same_id: madeEvent.id === made.id },
    role: { name: role.name, color: role.colors?.primaryColor ?? role.color, mentionable: role.mentionable, position: role.position },
    carol_roles: carolNow.roles.cache.filter((r) => r.id !== guild.id).map((r) => r.name).sort(),
    carol_nick: guild.members.cache.get(carol.id)?.nickname ?? null,
    embed: { title: embedded.embeds[0]?.title ?? null, fields: embedded.embeds[0]?.fields.length ?? 0 },
    pins: pins.items ? pins.items.map((p) => p.message.embeds[0]?.title) : pins.map((m) => m.embeds[0]?.title),
    bulk_deleted: removed.size,
    bulk_event: bulk.size,
  });

  // Delete.
  const deleted = waitFor(client, Events.MessageDelete, 'MESSAGE_DELETE', (m) =>
    m.id === sent.id ? m : undefined);
  await step('delete', sent.delete());
  const gone = await deleted;
  emit('deleted', { id_matches: gone.id === sent.id, was_cached: !gone.partial });

  emit('rest', restStats);
  // With a short --gateway-heartbeat-interval the test asks to wait for an acknowledged beat.
  const heartbeatWait = Date.now() + Number(process.env.DJS_HEARTBEAT_WAIT_MS ?? 0);
  while (client.ws.ping < 0 && Date.now() < heartbeatWait) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  emit('heartbeat', {
    ping_ms: client.ws.ping,
    first_heartbeat: debug.some((l) => l.includes('First heartbeat sent')),
    zombie: debug.some((l) => /Zombie/i.test(l)),
  });

  await client.destroy();
  process.stdout.write('SCENARIO discord.js OK\n');
  process.exit(0);
}

/** The demo world, as a newcomer meets it: the guild and its channels are cached, the bot can
 * talk in a text channel, and the demo user's message reaches it with its content. */
async function demoScenario(client) {
  const guild = client.guilds.cache.first();
  if (!guild) fail('no guild in the demo world');
  const channel = guild.channels.cache.find(
    (c) => c.type === ChannelType.GuildText && c.permissionsFor(client.user)?.has('SendMessages'));
  if (!channel) fail('no text channel the bot may write in');
  const echoed = waitFor(client, Events.MessageCreate, 'our MESSAGE_CREATE', (m) =>
    m.author.id === client.user.id ? m : undefined);
  await step('send', channel.send('hello demo world'));
  await echoed;
  const pinged = waitFor(client, Events.MessageCreate, "the demo user's MESSAGE_CREATE", (m) =>
    m.author.id === ALICE_ID ? m : undefined);
  await asAlice('POST', `/channels/${channel.id}/messages`, { content: 'ping' });
  const ping = await pinged;
  const pong = await step('reply', ping.reply('pong'));
  emit('demo', {
    bot: client.user.username,
    guilds: client.guilds.cache.size,
    guild: guild.name,
    channels: guild.channels.cache.map((c) => `${c.type}:${c.name}`).sort(),
    members: guild.members.cache.map((m) => m.user.username).sort(),
    channel: channel.name,
    ping: ping.content,
    ping_author: ping.author.username,
    pong_reference: pong.reference?.messageId === ping.id,
  });
  await client.destroy();
  process.stdout.write('SCENARIO discord.js OK\n');
  process.exit(0);
}

/** Two shards in one client: the guild lives on shard (guild_id >> 22) % 2 and alice's message
 * arrives once, on that shard. */
async function shardsScenario(client) {
  const guild = client.guilds.cache.get(GUILD_ID);
  if (!guild) fail('the guild is not cached with two shards');
  const seen = [];
  client.on(Events.MessageCreate, (m) => {
    if (m.content === 'ping both shards') seen.push(m.guild?.shardId ?? null);
  });
  const pinged = waitFor(client, Events.MessageCreate, "alice's MESSAGE_CREATE", (m) =>
    m.content === 'ping both shards' ? m : undefined);
  await asAlice('POST', `/channels/${GENERAL_ID}/messages`, { content: 'ping both shards' });
  await pinged;
  // Give a duplicate on the other shard the time to show up.
  await new Promise((resolve) => setTimeout(resolve, 300));
  emit('shards', {
    shard_count: client.options.shardCount,
    shards: [...client.ws.shards.keys()].sort(),
    statuses: [...client.ws.shards.values()].map((s) => s.status),
    guild_shard: guild.shardId,
    expected_shard: Number((BigInt(GUILD_ID) >> 22n) % 2n),
    message_shards: seen,
  });
  await client.destroy();
  process.stdout.write('SCENARIO discord.js OK\n');
  process.exit(0);
}

/** Cuts the socket (as a network failure would), has alice post while the bot is away, and lets
 * discord.js RESUME: the missed MESSAGE_CREATE must be replayed, not lost. */
async function resumeScenario(client, strategy, debug) {
  const shard = strategy?.shards.get(0);
  if (!shard?.connection) fail('no shard connection to cut');
  const firstSession = client.ws.shards.get(0)?.sessionInfo?.sessionId ?? null;
  // Hold the reconnect until alice's message exists, so it can only arrive by replay.
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const connect = shard.internalConnect.bind(shard);
  shard.internalConnect = async () => {
    await gate;
    shard.internalConnect = connect;
    return connect();
  };
  const missed = waitFor(client, Events.MessageCreate, 'the missed MESSAGE_CREATE', (m) =>
    m.content === 'posted while the bot was away' ? m : undefined);
  const resumed = waitFor(client, Events.ShardResume, 'shardResume', (id, replayed) => ({ id, replayed }));
  shard.connection.terminate();
  await asAlice('POST', `/channels/${GENERAL_ID}/messages`, { content: 'posted while the bot was away' });
  release();
  const message = await missed;
  const resume = await resumed;
  emit('resumed', {
    shard: resume.id,
    replayed: resume.replayed,
    content: message.content,
    author: message.author.username,
    same_session: client.ws.shards.get(0)?.sessionInfo?.sessionId === firstSession,
    debug: debug.filter((l) => /Resum|replayed|unexpected code/.test(l)),
  });
  // Still live after the resume.
  const live = waitFor(client, Events.MessageCreate, 'a live MESSAGE_CREATE after the resume', (m) =>
    m.content === 'after the resume' ? m : undefined);
  await asAlice('POST', `/channels/${GENERAL_ID}/messages`, { content: 'after the resume' });
  emit('live', { content: (await live).content });
  await client.destroy();
  process.stdout.write('SCENARIO discord.js OK\n');
  process.exit(0);
}

main().catch((error) => fail(error?.stack ?? String(error)));
