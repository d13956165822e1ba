"""hikari's gateway interactions, unmodified, against `discord-mitm serve` through the
interaction hook: a guild slash command with an option answered with a button, the button
click answered by updating the message, and an ephemeral deferral answered by editing the
initial response and a followup.

Alice invokes through `POST /_mitm/interactions` and holds a user gateway session; carol holds
one too, so the scenario asserts who sees what. Environment as for interactions_discordpy.py.
Prints "SCENARIO interactions_hikari OK" on success.
"""
import asyncio
import os
import sys

import aiohttp
import hikari

from interaction_world import (
    ALICE_TOKEN, BOT_ID, CAROL_TOKEN, EPHEMERAL, GENERAL_ID, GUILD_ID, LOADING, REST, Session,
    User, check, visibility_barrier,
)


def commands(bot):
    greet = bot.rest.slash_command_builder("greet", "Greets someone").add_option(
        hikari.CommandOption(type=hikari.OptionType.STRING, name="name", description="who", is_required=True)
    )
    think = bot.rest.slash_command_builder("think", "Thinks, privately")
    return [greet, think]


async def on_interaction(bot, proceed, event):
    interaction = event.interaction
    if isinstance(interaction, hikari.CommandInteraction) and interaction.command_name == "greet":
        name = interaction.options[0].value
        row = bot.rest.build_message_action_row().add_interactive_button(
            hikari.ButtonStyle.PRIMARY, "wave", label="Wave"
        )
        await interaction.create_initial_response(
            hikari.ResponseType.MESSAGE_CREATE, f"hello {name}", component=row
        )
    elif isinstance(interaction, hikari.CommandInteraction) and interaction.command_name == "think":
        await interaction.create_initial_response(
            hikari.ResponseType.DEFERRED_MESSAGE_CREATE, flags=hikari.MessageFlag.EPHEMERAL
        )
        await proceed.wait()
        await interaction.edit_initial_response("thought it through")
        await interaction.execute("and one more thing", flags=hikari.MessageFlag.EPHEMERAL)
    elif isinstance(interaction, hikari.ComponentInteraction) and interaction.custom_id == "wave":
        await interaction.create_initial_response(
            hikari.ResponseType.MESSAGE_UPDATE, f"waved at by {interaction.user.username}", components=[]
        )


async def scenario(bot, proceed, alice, alice_session, carol_session):
    greeted = await alice.invoke({"name": "greet", "options": [{"name": "name", "type": 3, "value": "bob"}]},
                                 wait=True)
    check(greeted["status"] == "responded", greeted)
    message = greeted["original"]
    check(message["content"] == "hello bob", message)
    check(message["components"][0]["components"][0]["custom_id"] == "wave", message)
    check(message["interaction_metadata"]["id"] == greeted["id"], message)
    for session in (alice_session, carol_session):
        await session.wait_for("MESSAGE_CREATE", lambda d: d["id"] == message["id"], "the greeting")

    waved = await alice.invoke({"type": 3, "message_id": message["id"], "custom_id": "wave", "component_type": 2},
                               wait=True)
    check(waved["status"] == "responded" and waved["response_type"] == 7, waved)
    stored = await alice.call("GET", f"/channels/{GENERAL_ID}/messages/{message['id']}")
    check(stored["content"] == "waved at by alice" and stored["components"] == [], stored)
    await carol_session.wait_for("MESSAGE_UPDATE", lambda d: d["id"] == message["id"], "the update")
    print("[hikari] slash command + button ok", flush=True)

    thinking = await alice.invoke({"name": "think"}, wait=True)
    check(thinking["status"] == "deferred", thinking)
    original = thinking["original"]
    check(original["flags"] & (EPHEMERAL | LOADING) == EPHEMERAL | LOADING, original)
    proceed.set()
    state = await alice.until(thinking["id"], lambda s: s["original"]["content"] == "thought it through"
                              and len(s["followups"]) == 1, "the deferred answer")
    check(not state["original"]["flags"] & LOADING, state["original"])
    secret_ids = {original["id"], state["followups"][0]["id"]}
    check(all(m["flags"] & EPHEMERAL for m in [state["original"], *state["followups"]]), state)
    await alice_session.wait_for("MESSAGE_UPDATE", lambda d: d["id"] == original["id"], "the private edit")
    await visibility_barrier(alice, [alice_session, carol_session], "hikari barrier")
    check(not carol_session.seen("MESSAGE_CREATE", lambda d: d["id"] in secret_ids), "carol saw ephemeral")
    check(not carol_session.seen("MESSAGE_UPDATE", lambda d: d["id"] in secret_ids), "carol saw ephemeral")
    history = await alice.history()
    check(not [m for m in history if m["id"] in secret_ids], "ephemeral messages in channel history")
    print("[hikari] ephemeral deferral + followup ok", flush=True)


async def main():
    bot = hikari.GatewayBot(
        os.environ["BOT_TOKEN"], rest_url=REST, banner=None, intents=hikari.Intents.ALL_UNPRIVILEGED,
        suppress_optimization_warning=True,
    )
    proceed = asyncio.Event()

    @bot.listen(hikari.InteractionCreateEvent)
    async def interaction_created(event):
        await on_interaction(bot, proceed, event)

    await bot.start(check_for_updates=False)
    async with aiohttp.ClientSession() as http:
        alice = User(http, ALICE_TOKEN)
        sessions = [await Session(http, ALICE_TOKEN).connect(), await Session(http, CAROL_TOKEN).connect()]
        try:
            registered = await bot.rest.set_application_commands(int(BOT_ID), commands(bot), int(GUILD_ID))
            check(sorted(c.name for c in registered) == ["greet", "think"], registered)
            await scenario(bot, proceed, alice, *sessions)
        finally:
            for session in sessions:
                await session.close()
            await bot.close()
    print("SCENARIO interactions_hikari OK", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - reported to the test
        print(f"hikari interactions scenario failed: {error!r}", file=sys.stderr)
        raise
