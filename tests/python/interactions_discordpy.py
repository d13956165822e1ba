"""discord.py's app commands and UI, unmodified, against `discord-mitm serve`, end to end through
the interaction hook: a slash command with options and autocomplete, user and message context
menus, a view with a button and a select answered with `edit_message`, a modal opened from a
button and submitted, `defer` + followups + `edit_original_response`, ephemeral responses and
followups, and an interaction the bot answers too late.

Alice invokes everything through `POST /_mitm/interactions`; alice and carol each hold a user
gateway session, so the scenario asserts what each of them sees (ephemeral messages reach only
alice, and never channel history). Environment as for gateway_scenarios.py, plus BOT_ID,
CAROL_ID and CAROL_TOKEN. Prints "SCENARIO interactions_discordpy OK" on success.
"""
import asyncio
import os
import sys
import zlib

import aiohttp
import yarl

import discord
from discord import app_commands, utils
from discord.gateway import DiscordWebSocket
from discord.http import Route

from interaction_world import (
    ALICE_TOKEN, API, BOT_ID, CAROL_ID, CAROL_TOKEN, EPHEMERAL, GENERAL_ID, GUILD_ID, LOADING,
    ApiFailure, Session, User, check, visibility_barrier,
)

Route.BASE = API + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + API[len("http"):] + "/")
GUILD = discord.Object(int(GUILD_ID))


class ZlibStream:
    """discord.py's own zlib-stream context, selected so the venv's zstandard is not needed."""

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


utils._ActiveDecompressionContext = ZlibStream


class Feedback(discord.ui.Modal, title="Feedback"):
    text = discord.ui.TextInput(label="What do you think?", custom_id="feedback_text")

    async def on_submit(self, interaction):
        # Opened from a button: the submit may update the button's message.
        await interaction.response.edit_message(content=f"feedback: {self.text.value}", view=None)


class Panel(discord.ui.View):
    def __init__(self):
        super().__init__(timeout=None)

    @discord.ui.button(label="Approve", custom_id="approve", style=discord.ButtonStyle.success)
    async def approve(self, interaction, button):
        button.disabled = True
        await interaction.response.edit_message(content=f"approved by {interaction.user.name}", view=self)

    @discord.ui.select(custom_id="colour", options=[discord.SelectOption(label="red"), discord.SelectOption(label="blue")])
    async def colour(self, interaction, select):
        await interaction.response.edit_message(content=f"colour: {select.values[0]}", view=self)

    @discord.ui.button(label="Feedback", custom_id="feedback")
    async def feedback(self, interaction, _button):
        await interaction.response.send_modal(Feedback())


class Bot(discord.Client):
    def __init__(self):
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.proceed = asyncio.Event()
        self.late = asyncio.Event()
        self.late_outcome = asyncio.get_event_loop().create_future()
        self.ready = asyncio.Event()
        register(self)

    async def on_ready(self):
        self.ready.set()


def register(bot):
    tree = bot.tree

    async def echo_choices(_interaction, current):
        words = ["hello", "help", "world"]
        return [app_commands.Choice(name=w, value=w) for w in words if w.startswith(current)]

    @tree.command(name="echo", description="Echoes", guild=GUILD)
    @app_commands.describe(text="what to echo", times="how often")
    @app_commands.autocomplete(text=echo_choices)
    async def echo(interaction, text: str, times: int = 1):
        await interaction.response.send_message(" ".join([text] * times))

    @tree.context_menu(name="Inspect", guild=GUILD)
    async def inspect(interaction, member: discord.Member):
        await interaction.response.send_message(f"inspected {member.name}", ephemeral=True)
        await interaction.followup.send("only you see this too", ephemeral=True)

    @tree.context_menu(name="Quote", guild=GUILD)
    async def quote(interaction, message: discord.Message):
        await interaction.response.send_message(f"quoted: {message.content}")

    @tree.command(name="panel", description="A panel", guild=GUILD)
    async def panel(interaction):
        await interaction.response.send_message("choose", view=Panel())

    @tree.command(name="slow", description="Thinks first", guild=GUILD)
    async def slow(interaction):
        await interaction.response.defer(thinking=True)
        await bot.proceed.wait()
        await interaction.followup.send("first answer")
        await interaction.followup.send("a followup")
        await interaction.edit_original_response(content="final answer")

    @tree.command(name="secret", description="Ephemeral, then deleted", guild=GUILD)
    async def secret(interaction):
        await interaction.response.send_message("for your eyes only", ephemeral=True)
        await bot.proceed.wait()
        await interaction.delete_original_response()

    @tree.command(name="late", description="Answers after the deadline", guild=GUILD)
    async def late(interaction):
        await bot.late.wait()
        try:
            await interaction.response.send_message("too late")
            bot.late_outcome.set_result("answered")
        except discord.NotFound as error:
            bot.late_outcome.set_result(error.code)


async def slash_command_with_options_and_autocomplete(alice, sessions):
    alice_session, carol_session = sessions
    done = await alice.invoke({"name": "echo", "options": [
        {"name": "text", "type": 3, "value": "hi"}, {"name": "times", "type": 4, "value": 2}]}, wait=True)
    check(done["status"] == "responded", done)
    original = done["original"]
    check(original["content"] == "hi hi", original)
    check(original["interaction_metadata"]["user"]["id"] == alice_session.user_id, original)
    for session in sessions:
        seen = await session.wait_for("MESSAGE_CREATE", lambda d: d["id"] == original["id"], "echo answer")
        check(seen["interaction_metadata"]["id"] == done["id"], seen)
    stored = await alice.history()
    check(any(m["id"] == original["id"] and m["type"] == 20 for m in stored), stored)
    choices = await alice.invoke({"type": 4, "name": "echo", "options": [
        {"name": "text", "type": 3, "value": "he", "focused": True}]}, wait=True)
    check(choices["status"] == "responded" and choices["response_type"] == 8, choices)
    names = [c["name"] for c in choices["response_data"]["choices"]]
    check(names == ["hello", "help"], names)
    print("[discord.py] slash command + autocomplete ok", flush=True)


async def context_menus_and_ephemeral(alice, sessions):
    alice_session, carol_session = sessions
    done = await alice.invoke({"name": "Inspect", "command_type": 2, "target_id": CAROL_ID}, wait=True)
    check(done["status"] == "responded", done)
    original = done["original"]
    check(original["content"] == "inspected carol" and original["flags"] & EPHEMERAL, original)
    check(original["interaction_metadata"]["target_user"]["id"] == CAROL_ID, original)
    state = await alice.until(done["id"], lambda s: len(s["followups"]) == 1, "the ephemeral followup")
    followup = state["followups"][0]
    check(followup["flags"] & EPHEMERAL and followup["content"] == "only you see this too", followup)
    secret_ids = {original["id"], followup["id"]}
    for message_id in secret_ids:
        await alice_session.wait_for("MESSAGE_CREATE", lambda d, i=message_id: d["id"] == i, "ephemeral to alice")
    await visibility_barrier(alice, [carol_session], "barrier after ephemeral")
    leaked = carol_session.seen("MESSAGE_CREATE", lambda d: d["id"] in secret_ids)
    check(not leaked, f"carol saw ephemeral messages: {leaked}")
    for user in (alice, User(alice.session, CAROL_TOKEN)):
        history = await user.history()
        check(not [m for m in history if m["id"] in secret_ids], "ephemeral messages in channel history")
    try:
        await alice.call("GET", f"/channels/{GENERAL_ID}/messages/{original['id']}")
        raise AssertionError("an ephemeral message is readable through the channel")
    except ApiFailure as failure:
        check(failure.status == 404 and failure.body["code"] == 10008, failure.body)

    target = await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": "quote me"})
    quoted = await alice.invoke({"name": "Quote", "command_type": 3, "target_id": target["id"]}, wait=True)
    check(quoted["original"]["content"] == "quoted: quote me", quoted)
    check(quoted["original"]["type"] == 23, quoted["original"])
    check(quoted["original"]["interaction_metadata"]["target_message_id"] == target["id"], quoted)
    print("[discord.py] context menus + ephemeral visibility ok", flush=True)


async def views_and_modal(alice, sessions):
    alice_session, _ = sessions
    shown = await alice.invoke({"name": "panel"}, wait=True)
    message = shown["original"]
    check(message["content"] == "choose" and len(message["components"]) == 2, message)
    click = {"type": 3, "message_id": message["id"]}
    clicked = await alice.invoke({**click, "custom_id": "approve", "component_type": 2}, wait=True)
    check(clicked["status"] == "responded" and clicked["response_type"] == 7, clicked)
    stored = await alice.call("GET", f"/channels/{GENERAL_ID}/messages/{message['id']}")
    check(stored["content"] == "approved by alice", stored)
    button = stored["components"][0]["components"][0]
    check(button["custom_id"] == "approve" and button.get("disabled") is True, button)
    await alice_session.wait_for("MESSAGE_UPDATE", lambda d: d["id"] == message["id"], "the click's update")

    picked = await alice.invoke({**click, "custom_id": "colour", "component_type": 3, "values": ["blue"]}, wait=True)
    check(picked["status"] == "responded", picked)
    stored = await alice.call("GET", f"/channels/{GENERAL_ID}/messages/{message['id']}")
    check(stored["content"] == "colour: blue", stored)

    opened = await alice.invoke({**click, "custom_id": "feedback", "component_type": 2}, wait=True)
    check(opened["response_type"] == 9 and opened["response_data"]["title"] == "Feedback", opened)
    submitted = await alice.invoke({"type": 5, "custom_id": opened["response_data"]["custom_id"], "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "feedback_text", "value": "great"}]}]}, wait=True)
    check(submitted["status"] == "responded" and submitted["response_type"] == 7, submitted)
    stored = await alice.call("GET", f"/channels/{GENERAL_ID}/messages/{message['id']}")
    check(stored["content"] == "feedback: great" and stored["components"] == [], stored)
    print("[discord.py] buttons, select, modal ok", flush=True)


async def defer_followups_and_deletion(alice, sessions, bot):
    alice_session, carol_session = sessions
    deferred = await alice.invoke({"name": "slow"}, wait=True)
    check(deferred["status"] == "deferred", deferred)
    check(deferred["original"]["flags"] & LOADING, deferred["original"])
    bot.proceed.set()
    state = await alice.until(deferred["id"], lambda s: s["original"]["content"] == "final answer"
                              and len(s["followups"]) == 1, "the deferred answer")
    check(not state["original"]["flags"] & LOADING, state["original"])
    check(state["followups"][0]["content"] == "a followup", state["followups"])
    check(state["followups"][0]["interaction_metadata"]["id"] == deferred["id"], state["followups"][0])

    bot.proceed.clear()
    secret = await alice.invoke({"name": "secret"}, wait=True)
    secret_id = secret["original"]["id"]
    await alice_session.wait_for("MESSAGE_CREATE", lambda d: d["id"] == secret_id, "the ephemeral answer")
    bot.proceed.set()
    await alice_session.wait_for("MESSAGE_DELETE", lambda d: d["id"] == secret_id, "the ephemeral deletion")
    state = await alice.interaction(secret["id"])
    check(state["original"] is None, state)
    await visibility_barrier(alice, [carol_session], "barrier after deletion")
    check(not carol_session.seen("MESSAGE_DELETE", lambda d: d["id"] == secret_id), "carol saw the deletion")
    print("[discord.py] defer, followups, deletion ok", flush=True)


async def missed_deadline(alice, bot):
    failed = await alice.invoke({"name": "late"}, wait=True)
    check(failed["status"] == "failed", failed)
    bot.late.set()
    outcome = await asyncio.wait_for(bot.late_outcome, 10)
    check(outcome == 10062, f"a late answer should be refused with 10062, got {outcome}")
    print("[discord.py] missed deadline ok", flush=True)


async def main():
    bot = Bot()
    runner = asyncio.create_task(bot.start(os.environ["BOT_TOKEN"]))
    async with aiohttp.ClientSession() as http:
        alice = User(http, ALICE_TOKEN)
        sessions = [await Session(http, ALICE_TOKEN).connect(), await Session(http, CAROL_TOKEN).connect()]
        sessions[0].user_id = os.environ["ALICE_ID"]
        try:
            await asyncio.wait_for(bot.ready.wait(), 20)
            check(str(bot.application_id) == BOT_ID, bot.application_id)
            synced = await bot.tree.sync(guild=GUILD)
            check(sorted(c.name for c in synced) == ["Inspect", "Quote", "echo", "late", "panel", "secret", "slow"],
                  synced)
            await slash_command_with_options_and_autocomplete(alice, sessions)
            await context_menus_and_ephemeral(alice, sessions)
            await views_and_modal(alice, sessions)
            await defer_followups_and_deletion(alice, sessions, bot)
            await missed_deadline(alice, bot)
        finally:
            for session in sessions:
                await session.close()
            await bot.close()
            runner.cancel()
    print("SCENARIO interactions_discordpy OK", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - reported to the test
        print(f"discord.py interactions scenario failed: {error!r}", file=sys.stderr)
        raise
