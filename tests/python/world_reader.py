"""Reads a guild through `discord-mitm serve --listen` and prints what it saw, as one line
`WORLD {json}`: the guild's name, channel, thread, role and member names, and the newest
messages of every text channel and thread (fetched over REST, so they are recorded).

MODE=bot: discord.py, unmodified (`Client(proxy=...)`, SSL_CERT_FILE trusting the proxy's CA).
MODE=user: the official client's way, by hand with aiohttp: GET /users/@me, a WebSocket to
wss://gateway.discord.gg through the proxy with a user IDENTIFY (capabilities 16381:
CLIENT_STATE_V2 guilds, deduplicated users, merged_members), READY read, messages over REST.

Environment: DMITM_PROXY, TOKEN, GUILD_ID, MODE. Exits 0 after printing the line.
"""
import asyncio
import json
import os

import aiohttp

PROXY = os.environ["DMITM_PROXY"]
TOKEN = os.environ["TOKEN"]
GUILD_ID = int(os.environ["GUILD_ID"])
MODE = os.environ.get("MODE", "bot")
API = "https://discord.com/api/v10"
TEXT_TYPES = {0, 5, 10, 11, 12}


def report(name, channels, threads, roles, members, messages):
    print("WORLD " + json.dumps({
        "guild": name,
        "channels": sorted(channels),
        "threads": sorted(threads),
        "roles": sorted(roles),
        "members": sorted(members),
        "messages": messages,
    }, sort_keys=True), flush=True)


async def bot():
    import discord

    client = discord.Client(intents=discord.Intents.all(), proxy=PROXY)
    done = asyncio.get_running_loop().create_future()

    @client.event
    async def on_ready():
        if done.done():
            return
        try:
            guild = client.get_guild(GUILD_ID)
            messages = {}
            readable = [c for c in guild.channels if isinstance(c, discord.TextChannel)]
            for channel in sorted(readable + list(guild.threads), key=lambda c: c.id):
                messages[channel.name] = [m.content async for m in channel.history(limit=10)]
            report(guild.name, [c.name for c in guild.channels], [t.name for t in guild.threads],
                   [r.name for r in guild.roles], [m.name for m in guild.members], messages)
            done.set_result(None)
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            done.set_exception(error)

    async with client:
        runner = asyncio.ensure_future(client.start(TOKEN))
        finished, _ = await asyncio.wait({runner, done}, timeout=30,
                                         return_when=asyncio.FIRST_COMPLETED)
        if done in finished:
            done.result()
        elif runner in finished:
            runner.result()
            raise AssertionError("the bot stopped before reading the guild")
        else:
            raise AssertionError("timed out")
        await client.close()


async def user():
    headers = {"Authorization": TOKEN}
    async with aiohttp.ClientSession() as session:
        async def get(path):
            async with session.get(API + path, headers=headers, proxy=PROXY) as r:
                if r.status != 200:
                    raise RuntimeError(f"GET {path} -> {r.status} {await r.text()}")
                return await r.json(content_type=None)

        me = await get("/users/@me")
        url = "wss://gateway.discord.gg/?v=9&encoding=json"
        async with session.ws_connect(url, proxy=PROXY) as ws:
            hello = await ws.receive_json(timeout=10)
            assert hello["op"] == 10, hello
            await ws.send_json({"op": 2, "d": {
                "token": TOKEN, "capabilities": 16381,
                "properties": {"os": "Linux", "browser": "Discord Client",
                               "release_channel": "stable", "client_build_number": 1},
                "presence": {"status": "online", "since": 0, "activities": [], "afk": False},
                "compress": False,
                "client_state": {"guild_versions": {}, "api_code_version": 0}}})
            while True:
                payload = await ws.receive_json(timeout=10)
                if payload.get("t") == "READY":
                    ready = payload["d"]
                    break
        assert ready["user"]["id"] == me["id"], (ready["user"], me)
        guild = next(g for g in ready["guilds"] if int(g["id"]) == GUILD_ID)
        props = guild.get("properties", guild)
        users = {u["id"]: u for u in ready.get("users", [])}
        users[me["id"]] = me
        members = [users[m["user_id"]]["username"]
                   for m in ready["merged_members"][ready["guilds"].index(guild)]]
        messages = {}
        readable = [c for c in guild["channels"] + guild["threads"] if c["type"] in TEXT_TYPES]
        for channel in sorted(readable, key=lambda c: int(c["id"])):
            fetched = await get(f"/channels/{channel['id']}/messages?limit=10")
            messages[channel["name"]] = [m["content"] for m in fetched]
        report(props["name"], [c["name"] for c in guild["channels"]],
               [t["name"] for t in guild["threads"]],
               [r["name"] for r in guild["roles"]], members, messages)


if __name__ == "__main__":
    asyncio.run(bot() if MODE == "bot" else user())
