"""discord.py, unmodified, through `discord-mitm gateway-proxy` (gateway) with `discord-mitm serve`
as the REST API and the proxy's upstream.

Usage: gwproxy_bot.py MODE   (MODE: exit | hold)
Environment: DMITM_API (serve, http://127.0.0.1:PORT), GWPROXY_WS (ws://127.0.0.1:PORT),
BOT_TOKEN, ALICE_TOKEN, ALICE_ID, GUILD_ID, GENERAL_ID.

The bot answers alice's "ping" with a "pong" reply. Prints one line per fact for the test:
  GUILD_CREATE <json d as received through the proxy>
  SESSION <session_id> <seq>        (after the ping/pong and a quiet moment)
  SCENARIO gwproxy_pingpong OK
In `hold` mode it then stays connected until it is killed (the test kills it with SIGKILL).
"""
import asyncio
import json
import os
import sys

import aiohttp
import yarl

import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

API = os.environ["DMITM_API"]
Route.BASE = API + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["GWPROXY_WS"] + "/")

BOT_TOKEN = os.environ["BOT_TOKEN"]
ALICE_TOKEN = os.environ["ALICE_TOKEN"]
ALICE_ID = int(os.environ["ALICE_ID"])
GUILD_ID = int(os.environ["GUILD_ID"])
GENERAL_ID = int(os.environ["GENERAL_ID"])
TIMEOUT = 10


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def say(line):
    print(line, flush=True)


async def alice(session, method, path, body=None):
    headers = {"Authorization": ALICE_TOKEN}
    async with session.request(method, Route.BASE + path, json=body, headers=headers) as r:
        data = None if r.status == 204 else await r.json(content_type=None)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status} {data}")
        return data


async def scenario(client, session):
    guild = client.get_guild(GUILD_ID)
    check(guild is not None, "on_ready: fixture guild missing")
    check(guild.name == "Test Guild", f"guild name {guild.name!r}")
    check(client.get_channel(GENERAL_ID) is not None, "#general missing")
    # discord.py keeps READY's resume_gateway_url as the URL it reconnects to.
    check(str(client.ws.gateway).startswith(os.environ["GWPROXY_WS"]),
          f"resume_gateway_url {client.ws.gateway} is not the proxy")

    @client.event
    async def on_message(message):
        if message.author.id == ALICE_ID and message.content == "ping":
            await message.reply("pong")

    pong = asyncio.ensure_future(client.wait_for(
        "message", check=lambda m: m.author.id == client.user.id and m.content == "pong",
        timeout=TIMEOUT))
    ping = await alice(session, "POST", f"/channels/{GENERAL_ID}/messages", {"content": "ping"})
    reply = await pong
    check(reply.reference is not None and reply.reference.message_id == int(ping["id"]),
          "pong must reference ping")
    stored = await alice(session, "GET", f"/channels/{GENERAL_ID}/messages?limit=1")
    check(stored[0]["content"] == "pong", f"newest stored message {stored[0]}")
    # Let the dispatches the reply caused arrive before reporting where the session stands.
    await asyncio.sleep(0.5)
    say(f"SESSION {client.ws.session_id} {client.ws.sequence}")


async def main(mode):
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents, enable_debug_events=True)
    outcome = asyncio.get_running_loop().create_future()

    @client.event
    async def on_socket_raw_receive(raw):
        payload = json.loads(raw)
        if payload.get("t") == "GUILD_CREATE":
            say("GUILD_CREATE " + json.dumps(payload["d"], separators=(",", ":")))

    async with aiohttp.ClientSession() as session:
        started = False

        @client.event
        async def on_ready():
            nonlocal started
            if started:
                return
            started = True

            async def run():
                try:
                    await scenario(client, session)
                    outcome.set_result(None)
                except BaseException as error:  # noqa: BLE001 - reported to the test
                    if not outcome.done():
                        outcome.set_exception(error)

            asyncio.ensure_future(run())

        async with client:
            bot = asyncio.ensure_future(client.start(BOT_TOKEN))
            done, _ = await asyncio.wait({bot, outcome}, timeout=30,
                                         return_when=asyncio.FIRST_COMPLETED)
            if outcome in done:
                outcome.result()
            elif bot in done:
                bot.result()
                raise AssertionError("the bot stopped before the scenario finished")
            else:
                raise AssertionError("scenario timed out")
            say("SCENARIO gwproxy_pingpong OK")
            if mode == "hold":
                await asyncio.sleep(3600)
            await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
