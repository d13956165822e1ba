"""A tiny discord.py bot for `discord-mitm serve`: logs in, says when it is ready, answers !ping.

    discord-mitm serve --fixture examples/fixtures/minimal-bot.json --reset   # in one terminal
    python3 examples/bots/discordpy/bot.py                                    # in another

DISCORD_API (default http://127.0.0.1:3000) and DISCORD_TOKEN (default the example world's bot)
point it elsewhere. Only discord.py's own redirection points are changed: Route.BASE for REST and
DiscordWebSocket.DEFAULT_GATEWAY for the gateway; the rest is an ordinary discord.py bot.
"""
import os

import yarl
import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

API = os.environ.get("DISCORD_API", "http://127.0.0.1:3000").rstrip("/")
TOKEN = os.environ.get("DISCORD_TOKEN", "MTEwMDAwMDAwMDAwMDAwMDAwMg.example.bot-token")

Route.BASE = API + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + API[len("http"):] + "/")

intents = discord.Intents.default()
intents.message_content = True
client = discord.Client(intents=intents)


@client.event
async def on_ready():
    guilds = ", ".join(guild.name for guild in client.guilds)
    print(f"ready as {client.user.name} in {len(client.guilds)} guild(s): {guilds}", flush=True)


@client.event
async def on_message(message):
    if message.author != client.user and message.content == "!ping":
        await message.channel.send("pong")


client.run(TOKEN, log_handler=None)
