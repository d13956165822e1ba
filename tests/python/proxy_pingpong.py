"""discord.py, unmodified and unredirected, entirely through `discord-mitm serve --listen`.

Nothing in discord.py is patched: REST stays at https://discord.com/api/v10 and the gateway at
whatever /gateway advertises (wss://gateway.discord.gg). The only settings are the ones any bot
operator has: `Client(proxy=...)` and SSL_CERT_FILE (set by the caller before Python starts) so
the proxy's CA is trusted. Alice, a human account, acts over REST through the same proxy.

Environment: DMITM_PROXY (http://127.0.0.1:PORT), BOT_TOKEN, ALICE_TOKEN, ALICE_ID, GUILD_ID,
GENERAL_ID. Prints "SCENARIO proxy_pingpong OK" and exits 0 on success.
"""
import asyncio
import os
import sys

import aiohttp

import discord

PROXY = os.environ["DMITM_PROXY"]
BOT_TOKEN = os.environ["BOT_TOKEN"]
ALICE_TOKEN = os.environ["ALICE_TOKEN"]
ALICE_ID = int(os.environ["ALICE_ID"])
GUILD_ID = int(os.environ["GUILD_ID"])
GENERAL_ID = int(os.environ["GENERAL_ID"])
API = "https://discord.com/api/v10"
TIMEOUT = 10


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def alice_call(session, method, path, body=None):
    headers = {"Authorization": ALICE_TOKEN}
    async with session.request(method, API + path, json=body, headers=headers, proxy=PROXY) as r:
        source = r.headers.get("X-Discord-Mitm-Source")
        data = None if r.status == 204 else await r.json(content_type=None)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status} {data}")
        check(source == "backend", f"{method} {path} answered by {source!r}")
        return data


async def main():
    client = discord.Client(intents=discord.Intents.all(), proxy=PROXY)
    outcome = asyncio.get_running_loop().create_future()

    async def scenario(session):
        guild = client.get_guild(GUILD_ID)
        check(guild is not None and guild.name == "Test Guild", "fixture guild on READY")
        # After READY discord.py holds READY's resume_gateway_url here.
        url = str(client.ws.gateway)
        check(url.startswith("wss://gateway.discord.gg"), f"gateway URL {url!r}")
        print(f"ready as {client.user} in {guild.name}", flush=True)

        @client.event
        async def on_message(message):
            if message.author.id == ALICE_ID and message.content == "ping":
                await message.reply("pong")

        pong = asyncio.ensure_future(client.wait_for(
            "message", check=lambda m: m.author.id == client.user.id and m.content == "pong",
            timeout=TIMEOUT))
        ping = await alice_call(session, "POST", f"/channels/{GENERAL_ID}/messages",
                                {"content": "ping"})
        reply = await pong
        check(reply.reference is not None and reply.reference.message_id == int(ping["id"]),
              "pong must reference ping")
        stored = await alice_call(session, "GET", f"/channels/{GENERAL_ID}/messages?limit=5")
        check(stored[0]["content"] == "pong", f"newest stored message {stored[0]}")
        print("ping -> pong through the proxy", flush=True)

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
                    await scenario(session)
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
            await client.close()
    print("SCENARIO proxy_pingpong OK", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
