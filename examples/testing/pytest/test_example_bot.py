"""Example tests of a discord.py bot against discord-mitm serve (docs/testing-your-bot.md)."""
import pytest

GENERAL = "200000000000000011"


def test_ping(discord, bot):
    discord.act_as("alice").send_message(GENERAL, "!ping")
    reply = discord.wait_for("MESSAGE_CREATE", channel_id=GENERAL, author_id=bot)
    assert reply["data"]["content"] == "pong"


def test_echo_sees_a_fresh_world(discord, bot):
    # The reset before this test removed test_ping's messages.
    assert discord.act_as("alice").act("rest", method="GET",
                                       path=f"/channels/{GENERAL}/messages") == []
    discord.act_as("alice").send_message(GENERAL, "!echo hello")
    reply = discord.wait_for("MESSAGE_CREATE", channel_id=GENERAL, author_id=bot)
    assert reply["data"]["content"] == "hello"


def test_silence_times_out(discord, bot):
    discord.act_as("alice").send_message(GENERAL, "nothing for the bot")
    with pytest.raises(TimeoutError):
        discord.wait_for("MESSAGE_CREATE", channel_id=GENERAL, author_id=bot, timeout=0.5)
