"""discord.py, unmodified, against `discord-mitm serve` on loopback.

Usage: gateway_scenarios.py SCENARIO (ready_pingpong | events | resume)
Environment: DMITM_API (http://127.0.0.1:PORT), DMITM_COMPRESS (zlib | zstd), BOT_TOKEN,
ALICE_TOKEN, ALICE_ID, GUILD_ID, GENERAL_ID, SECRET_ID, VOICE_ID.

Only discord.py's documented redirection points are touched: `Route.BASE` for REST and
`DiscordWebSocket.DEFAULT_GATEWAY` for the gateway. Alice acts through plain REST with her user
token. Prints "SCENARIO <name> OK" and exits 0 on success; any failure exits non-zero.
"""
import asyncio
import os
import sys
import zlib

import aiohttp
import yarl

import discord
from discord import utils
from discord.gateway import DiscordWebSocket
from discord.http import Route

API = os.environ["DMITM_API"]
Route.BASE = API + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + API[len("http"):] + "/")

BOT_TOKEN = os.environ["BOT_TOKEN"]
ALICE_TOKEN = os.environ["ALICE_TOKEN"]
ALICE_ID = int(os.environ["ALICE_ID"])
GUILD_ID = int(os.environ["GUILD_ID"])
GENERAL_ID = int(os.environ["GENERAL_ID"])
SECRET_ID = int(os.environ["SECRET_ID"])
VOICE_ID = int(os.environ["VOICE_ID"])
TIMEOUT = 10


class ZlibStream:
    """discord.py's own zlib-stream context (used when zstandard is absent), selected here so
    one venv can exercise both transports."""

    COMPRESSION_TYPE = "zlib-stream"

    def __init__(self):
        self.buffer = bytearray()
        self.context = zlib.decompressobj()

    def decompress(self, data):
        self.buffer.extend(data)
        if len(data) < 4 or data[-4:] != b"\x00\x00\xff\xff":
            return None
        message = self.context.decompress(self.buffer)
        self.buffer = bytearray()
        return message.decode("utf-8")


compress = os.environ.get("DMITM_COMPRESS", "zlib")
if compress == "zlib":
    utils._ActiveDecompressionContext = ZlibStream
elif utils._ActiveDecompressionContext.COMPRESSION_TYPE != "zstd-stream":
    sys.exit("zstd-stream requested but zstandard is not installed in this venv")


def check(condition, what):
    if not condition:
        raise AssertionError(what)


class Alice:
    """A human account acting through plain REST."""

    def __init__(self, session):
        self.session = session

    async def call(self, method, path, body=None):
        headers = {"Authorization": ALICE_TOKEN}
        async with self.session.request(method, Route.BASE + path, json=body, headers=headers) as r:
            data = None if r.status == 204 else await r.json(content_type=None)
            if r.status >= 300:
                raise RuntimeError(f"{method} {path} -> {r.status} {data}")
            return data


def waiter(client, event, check_fn):
    """Starts waiting for `event` now (before the action that causes it)."""
    return asyncio.ensure_future(client.wait_for(event, check=check_fn, timeout=TIMEOUT))


async def ready_pingpong(client, alice, log):
    guild = client.get_guild(GUILD_ID)
    check(guild is not None, "on_ready: fixture guild missing")
    check(guild.name == "Test Guild", f"guild name {guild.name!r}")
    names = sorted(c.name for c in guild.channels)
    check("general" in names and "Text" in names and "Voice" in names, f"channels {names}")
    check(guild.get_channel(SECRET_ID) is not None, "the bot should see #secret in the channel list")
    general = guild.get_channel(GENERAL_ID)
    check(general.category is not None and general.category.name == "Text", "category")
    check(guild.member_count == 3, f"member_count {guild.member_count}")
    me = guild.get_member(client.user.id)
    check(me is not None and me.joined_at is not None, "bot's own member with joined_at")
    log(f"ready: guild={guild.name} channels={names}")

    @client.event
    async def on_message(message):
        if message.author.id == ALICE_ID and message.content == "ping":
            await message.reply("pong")

    pong = waiter(client, "message", lambda m: m.author.id == client.user.id and m.content == "pong")
    ping = await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "ping"})
    reply = await pong
    check(reply.reference is not None and reply.reference.message_id == int(ping["id"]),
          "pong must reference ping")
    stored = await alice.call("GET", f"/channels/{GENERAL_ID}/messages?limit=5")
    check(stored[0]["content"] == "pong", f"newest stored message {stored[0]}")
    check(stored[0]["author"]["id"] == str(client.user.id), "pong author")
    check(stored[0]["message_reference"]["message_id"] == ping["id"], "stored message_reference")
    check(stored[0]["referenced_message"]["content"] == "ping", "stored referenced_message")
    log("ping -> pong stored and dispatched")


async def events(client, alice, log):
    guild = client.get_guild(GUILD_ID)
    # Edit.
    created = waiter(client, "message", lambda m: m.content == "draft")
    posted = await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "draft"})
    await created
    edited = waiter(client, "message_edit", lambda b, a: a.id == int(posted["id"]))
    await alice.call("PATCH", f"/channels/{GENERAL_ID}/messages/{posted['id']}", {"content": "final"})
    before, after = await edited
    check(before.content == "draft" and after.content == "final", "edit contents")
    log("edit ok")
    # Reaction.
    reacted = waiter(client, "reaction_add", lambda r, u: u.id == ALICE_ID)
    await alice.call("PUT", f"/channels/{GENERAL_ID}/messages/{posted['id']}/reactions/%F0%9F%91%8D/@me")
    reaction, user = await reacted
    check(str(reaction.emoji) == "\N{THUMBS UP SIGN}" and reaction.count == 1, f"reaction {reaction}")
    unreacted = waiter(client, "raw_reaction_remove", lambda p: p.user_id == ALICE_ID)
    await alice.call("DELETE", f"/channels/{GENERAL_ID}/messages/{posted['id']}/reactions/%F0%9F%91%8D/@me")
    await unreacted
    log("reactions ok")
    # Delete.
    deleted = waiter(client, "message_delete", lambda m: m.id == int(posted["id"]))
    await alice.call("DELETE", f"/channels/{GENERAL_ID}/messages/{posted['id']}")
    await deleted
    log("delete ok")
    # Channel creation.
    made = waiter(client, "guild_channel_create", lambda c: c.name == "new-room")
    await alice.call("POST", f"/guilds/{GUILD_ID}/channels", {"name": "new-room", "type": 0})
    channel = await made
    check(guild.get_channel(channel.id) is not None, "new channel cached")
    log("channel create ok")
    # Member update.
    updated = waiter(client, "member_update", lambda b, a: a.id == ALICE_ID and a.nick == "Ally")
    await alice.call("PATCH", f"/guilds/{GUILD_ID}/members/{ALICE_ID}", {"nick": "Ally"})
    await updated
    log("member update ok")
    # Chunking (op 8).
    members = await asyncio.wait_for(guild.chunk(), TIMEOUT)
    names = sorted(m.name for m in members)
    check(names == ["alice", "carol", "pingbot"], f"chunked members {names}")
    found = await asyncio.wait_for(guild.query_members("car"), TIMEOUT)
    check([m.name for m in found] == ["carol"], f"query_members {found}")
    by_id = await asyncio.wait_for(guild.query_members(user_ids=[ALICE_ID]), TIMEOUT)
    check([m.id for m in by_id] == [ALICE_ID], f"query by id {by_id}")
    log("chunking ok")
    # Messages in a channel the bot cannot see never reach it.
    hidden = waiter(client, "message", lambda m: m.channel.id == SECRET_ID)
    marker = waiter(client, "message", lambda m: m.content == "after-secret")
    await alice.call("POST", f"/channels/{SECRET_ID}/messages", {"content": "hidden"})
    await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "after-secret"})
    await marker
    check(not hidden.done(), "a message in #secret reached the bot")
    hidden.cancel()
    log("VIEW_CHANNEL filter ok")
    # Voice state (op 4): the bot's own VOICE_STATE_UPDATE, then its VOICE_SERVER_UPDATE.
    voice = guild.get_channel(VOICE_ID)
    in_voice = waiter(client, "voice_state_update", lambda m, b, a: m.id == client.user.id)
    server_update = waiter(client, "socket_event_type", lambda t: t == "VOICE_SERVER_UPDATE")
    await guild.change_voice_state(channel=voice, self_deaf=True)
    member, before, after = await in_voice
    check(before.channel is None and after.channel == voice and after.self_deaf, f"voice {after}")
    await server_update
    check(guild.me.voice is not None and guild.me.voice.channel == voice, "voice state cached")
    log("voice state + server update ok")


async def resume(client, alice, log):
    readies_before = READIES[0]
    original = DiscordWebSocket.from_client.__func__

    async def from_client(cls, bot, **kwargs):
        if kwargs.get("resume"):
            # Events happen while the bot is away: they must be replayed on RESUME.
            await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "missed-1"})
            await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "missed-2"})
            await asyncio.sleep(0.3)
        return await original(cls, bot, **kwargs)

    DiscordWebSocket.from_client = classmethod(from_client)
    seen = []

    @client.event
    async def on_message(message):
        seen.append(message.content)

    @client.event
    async def on_resumed():
        seen.append("<RESUMED>")

    resumed = waiter(client, "resumed", lambda: True)
    old_session = client.ws.session_id
    await client.ws.close(4000)
    await resumed
    await asyncio.sleep(0.2)
    check(client.ws.session_id == old_session, "session id changed: it identified instead of resuming")
    check(seen[:3] == ["missed-1", "missed-2", "<RESUMED>"], f"order after resume {seen}")
    check(READIES[0] == readies_before, "READY was received again")
    live = waiter(client, "message", lambda m: m.content == "live")
    await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "live"})
    await live
    log(f"resumed session {old_session} and got {seen}")


READIES = [0]
SCENARIOS = {"ready_pingpong": ready_pingpong, "events": events, "resume": resume}


async def main(name):
    scenario = SCENARIOS[name]
    client = discord.Client(intents=discord.Intents.all(), enable_debug_events=True)
    outcome = asyncio.get_running_loop().create_future()

    def log(text):
        print(f"[{name}] {text}", flush=True)

    async with aiohttp.ClientSession() as session:
        alice = Alice(session)

        async def run():
            try:
                await scenario(client, alice, log)
                outcome.set_result(None)
            except BaseException as error:  # noqa: BLE001 - reported to the test
                if not outcome.done():
                    outcome.set_exception(error)

        started = False

        @client.event
        async def on_ready():
            nonlocal started
            READIES[0] += 1
            if not started:
                started = True
                asyncio.ensure_future(run())

        async with client:
            bot = asyncio.ensure_future(client.start(BOT_TOKEN))
            done, _ = await asyncio.wait({bot, outcome}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            if outcome in done:
                outcome.result()
            elif bot in done:
                bot.result()
                raise AssertionError("the bot stopped before the scenario finished")
            else:
                raise AssertionError("scenario timed out")
            await client.close()
    print(f"SCENARIO {name} OK", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
