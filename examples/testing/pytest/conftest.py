"""Wires the plugin and the bot under test for test_example_bot.py."""
import os
import subprocess
import sys

import pytest

pytest_plugins = ["discord_mitm_testing"]

HERE = os.path.dirname(os.path.abspath(__file__))
BOT_ID = "100000000000000002"
BOT_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.ZXhhbXBsZQ"


@pytest.fixture(scope="session")
def bot_process(discord_mitm):
    """The bot, running against serve for the whole session."""
    env = dict(os.environ, DMITM_API=discord_mitm.url, BOT_TOKEN=BOT_TOKEN)
    process = subprocess.Popen([sys.executable, os.path.join(HERE, "example_bot.py")], env=env)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def bot(discord, bot_process):
    """The bot, connected to the freshly reset world (a reset makes it identify again)."""
    discord.wait_for("GUILD_CREATE", user_id=BOT_ID, timeout=30)
    return BOT_ID
