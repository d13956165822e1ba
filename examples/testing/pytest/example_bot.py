"""The bot under test: a tiny discord.py bot. "!ping" -> "pong", "!echo TEXT" -> "TEXT".

Pointed at discord-mitm by its environment (DMITM_API, BOT_TOKEN) through discord.py's
documented redirection points; a real bot reads these from its own configuration.
"""
import os

import yarl

import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

API = os.environ["DMITM_API"]
Route.BASE = API + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + API[len("http"):] + "/")



class Bot(discord.Client):
    async def before_identify_hook(self, shard_id, *, initial=False):
        # discord.py waits 5 s before every IDENTIFY but the first (Discord's identify pacing);
        # a local server needs none, and tests reset (so re-IDENTIFY) often.
        pass


intents = discord.Intents.default()
intents.message_content = True
client = Bot(intents=intents)


@client.event
async def on_message(message):
    if message.author.bot:
        return
    if message.content == "!ping":
        await message.channel.send("pong")
    elif message.content.startswith("!echo "):
        await message.channel.send(message.content[len("!echo "):])


client.run(os.environ["BOT_TOKEN"], log_handler=None)
