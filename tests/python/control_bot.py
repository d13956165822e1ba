"""A tiny discord.py bot (unmodified library) that tests/serve_control.rs drives through the
control API: "!ping" -> "pong", "!channels" -> the guild's text channel names, sorted, from
discord.py's own cache (what the bot believes the world is).

Usage: control_bot.py   Environment: DMITM_API (http://127.0.0.1:PORT), BOT_TOKEN.
Prints "READY <n>" on every READY (so a reconnect after a reset shows up) and runs until killed.
"""
import os
import sys

import yarl

import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

API = os.environ["DMITM_API"]
Route.BASE = API + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + API[len("http"):] + "/")



class Bot(discord.Client):
    async def before_identify_hook(self, shard_id, *, initial=False):
        # No 5-second pause before re-IDENTIFYing after a reset (Discord's pacing; not needed).
        pass


intents = discord.Intents.default()
intents.message_content = True
client = Bot(intents=intents)
readies = 0


@client.event
async def on_ready():
    global readies
    readies += 1
    print(f"READY {readies}", flush=True)


@client.event
async def on_message(message):
    if message.author.bot:
        return
    if message.content == "!ping":
        await message.channel.send("pong")
    elif message.content == "!channels" and message.guild is not None:
        me = message.guild.me
        names = sorted(
            c.name for c in message.guild.text_channels if c.permissions_for(me).view_channel
        )
        await message.channel.send(",".join(names))


client.run(os.environ["BOT_TOKEN"], log_handler=None)
sys.exit(0)
