"""hikari, unmodified, against `discord-mitm serve`: it finds the gateway through
GET /gateway/bot, connects with zlib-stream (binary frames both ways), gets READY and the
guild, and answers alice's "ping" with a "pong" reply that is stored and dispatched.

Environment as for gateway_scenarios.py. Prints "SCENARIO hikari OK" on success.
"""
import asyncio
import os
import sys

import aiohttp
import hikari

API = os.environ["DMITM_API"]
REST = API + "/api/v10"
ALICE_TOKEN = os.environ["ALICE_TOKEN"]
ALICE_ID = int(os.environ["ALICE_ID"])
GUILD_ID = int(os.environ["GUILD_ID"])
GENERAL_ID = int(os.environ["GENERAL_ID"])


async def alice(session, method, path, body=None):
    async with session.request(method, REST + path, json=body, headers={"Authorization": ALICE_TOKEN}) as r:
        data = await r.json(content_type=None)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status} {data}")
        return data


async def main():
    bot = hikari.GatewayBot(
        os.environ["BOT_TOKEN"], rest_url=REST, banner=None, intents=hikari.Intents.ALL, suppress_optimization_warning=True
    )
    outcome = asyncio.get_running_loop().create_future()

    @bot.listen(hikari.GuildMessageCreateEvent)
    async def on_message(event):
        if event.author_id == ALICE_ID and event.content == "ping":
            await event.message.respond("pong", reply=True)
        elif event.author_id == bot.get_me().id and event.content == "pong" and not outcome.done():
            outcome.set_result(event.message)

    @bot.listen(hikari.StartedEvent)
    async def on_started(_event):
        guild = bot.cache.get_guild(GUILD_ID)
        if guild is None or guild.name != "Test Guild":
            outcome.set_exception(AssertionError(f"guild not cached: {guild}"))
            return
        channels = sorted(c.name for c in bot.cache.get_guild_channels_view_for_guild(GUILD_ID).values())
        print(f"[hikari] ready: {guild.name} channels={channels}", flush=True)
        async with aiohttp.ClientSession() as session:
            await alice(session, "POST", f"/channels/{GENERAL_ID}/messages", {"content": "ping"})

    await bot.start(check_for_updates=False)
    try:
        pong = await asyncio.wait_for(outcome, 30)
        assert pong.referenced_message is not None and pong.referenced_message.content == "ping", pong
        async with aiohttp.ClientSession() as session:
            stored = await alice(session, "GET", f"/channels/{GENERAL_ID}/messages?limit=1")
        assert stored[0]["content"] == "pong" and stored[0]["message_reference"], stored
    finally:
        await bot.close()
    print("SCENARIO hikari OK", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - reported to the test
        print(f"hikari scenario failed: {error!r}", file=sys.stderr)
        raise
