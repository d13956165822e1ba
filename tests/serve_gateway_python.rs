//! discord.py (from PyPI, unmodified) against the built `discord-mitm serve`: READY and the
//! fixture guild, ping/pong with a stored reply, edits, deletes, reactions, channel creation,
//! member updates, member chunking, VIEW_CHANNEL filtering, voice state (op 4 with its
//! VOICE_SERVER_UPDATE), and RESUME after the socket is cut
//! — over zlib-stream and zstd-stream; and hikari, which finds the gateway via /gateway/bot and
//! speaks zlib-stream with binary frames both ways.
mod serve_gateway_support;

use std::time::Duration;

use serve_gateway_support::{fixture, run_scenario, Server};

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn discordpy_sees_the_guild_on_ready_and_replies_pong_over_zlib_stream() {
    run_scenario(
        Server::start(&fixture(None)),
        "ready_pingpong",
        "zlib",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn discordpy_replies_pong_over_zlib_stream_with_per_connection_history() {
    run_scenario(
        Server::start_with(&fixture(None), &["--gateway-zlib-history"]),
        "ready_pingpong",
        "zlib",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn discordpy_sees_the_guild_on_ready_and_replies_pong_over_zstd_stream() {
    run_scenario(
        Server::start(&fixture(None)),
        "ready_pingpong",
        "zstd",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn discordpy_receives_edits_deletes_reactions_channels_members_chunks_and_voice() {
    run_scenario(
        Server::start(&fixture(None)),
        "events",
        "zlib",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn discordpy_resumes_after_the_socket_is_cut_and_gets_what_it_missed() {
    run_scenario(
        Server::start(&fixture(None)),
        "resume",
        "zstd",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn hikari_finds_the_gateway_via_gateway_bot_and_replies_pong_over_zlib_stream() {
    run_scenario(
        Server::start(&fixture(None)),
        "hikari",
        "zlib",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn discordpy_app_commands_views_modals_deferrals_and_ephemeral_answers_through_the_hook() {
    run_scenario(
        Server::start(&fixture(None)),
        "interactions_discordpy",
        "zlib",
        SCENARIO_TIMEOUT,
    );
}

#[test]
fn hikari_gateway_interactions_answer_with_buttons_updates_and_ephemeral_deferrals() {
    run_scenario(
        Server::start(&fixture(None)),
        "interactions_hikari",
        "zlib",
        SCENARIO_TIMEOUT,
    );
}
