//! Polls against the built binary: creation with validation and SEND_POLLS, votes through the
//! official client's route, answer voters, ending a poll (results finalised, POLL_RESULT
//! notice), persistence across a restart, the documented shapes, and the gateway dispatches.
mod serve_routes_gateway_support;
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_gateway_support::{call, next_dispatch, session};
use serve_routes_support::*;
use serve_support::*;

const SEND_POLLS: u64 = 1 << 49;

fn lunch_poll(multiselect: bool) -> Value {
    json!({"poll": {
        "question": {"text": "Lunch?"},
        "answers": [
            {"poll_media": {"text": "Pizza", "emoji": {"name": "🍕"}}},
            {"poll_media": {"text": "Salad"}},
            {"poll_media": {"text": "Soup"}},
        ],
        "duration": 2,
        "allow_multiselect": multiselect,
    }})
}

#[test]
fn poll_lifecycle_over_rest() {
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server =
        Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).expect("server starts");
    let api = server.api();
    let messages = format!("/channels/{GENERAL}/messages");

    let created = api.post(&messages, ALICE, lunch_poll(false));
    let poll_message = expect_documented(
        &spec,
        &created,
        200,
        "POST",
        "/channels/{channel_id}/messages",
    );
    let poll = &poll_message["poll"];
    assert_eq!(poll["question"], json!({"text": "Lunch?"}));
    assert_eq!(poll["answers"][0]["answer_id"], 1);
    assert_eq!(
        poll["answers"][0]["poll_media"],
        json!({"text": "Pizza", "emoji": {"id": null, "name": "🍕"}})
    );
    assert_eq!(poll["allow_multiselect"], false);
    assert_eq!(poll["layout_type"], 1);
    assert_eq!(
        poll["results"],
        json!({"is_finalized": false, "answer_counts": []})
    );
    assert!(poll["expiry"].as_str().unwrap().ends_with("+00:00"));
    let id = poll_message["id"].as_str().unwrap().to_string();
    let polls = format!("/channels/{GENERAL}/polls/{id}");

    // Bad polls: every problem under its path, nothing stored.
    let invalid = api.post(
        &messages,
        ALICE,
        json!({"poll": {"question": {"text": ""}, "answers": [], "duration": 9999}}),
    );
    expect_error(&invalid, 400, 50035);
    let errors = &invalid.body["errors"]["poll"];
    assert!(errors["question"]["text"]["_errors"].is_array(), "{errors}");
    assert!(errors["answers"]["_errors"].is_array(), "{errors}");
    assert!(errors["duration"]["_errors"].is_array(), "{errors}");
    let eleven: Vec<Value> = (0..11)
        .map(|n| json!({"poll_media": {"text": format!("a{n}")}}))
        .collect();
    expect_error(
        &api.post(
            &messages,
            ALICE,
            json!({"poll": {"question": {"text": "q"}, "answers": eleven}}),
        ),
        400,
        50035,
    );
    let listed = expect(&api.get(&format!("{messages}?limit=100"), ALICE), 200).clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // SEND_POLLS is checked like every other permission.
    expect(
        &api.put(
            &format!("/channels/{GENERAL}/permissions/{BOB_ID}"),
            ALICE,
            json!({"type": 1, "deny": SEND_POLLS.to_string()}),
        ),
        204,
    );
    expect_error(&api.post(&messages, BOB, lunch_poll(false)), 403, 50013);

    // Votes: user accounts only, known answers only, one unless multiselect.
    let vote = |token: &str, answers: Value| {
        api.put(
            &format!("{polls}/answers/@me"),
            token,
            json!({ "answer_ids": answers }),
        )
    };
    assert_eq!(vote(BOB, json!([1])).status, 204);
    assert_eq!(vote(DAVE, json!(["2"])).status, 204);
    expect_error(&vote(BOT, json!([1])), 403, 20001);
    let too_many = vote(BOB, json!([1, 2]));
    expect_error(&too_many, 400, 50035);
    assert!(too_many.body["errors"]["answer_ids"]["_errors"].is_array());
    let unknown = vote(BOB, json!([9]));
    expect_error(&unknown, 400, 50035);
    assert!(unknown.body["errors"]["answer_ids"]["0"]["_errors"].is_array());
    expect_error(
        &api.put(&format!("{polls}/answers/@me"), BOB, json!({})),
        400,
        50035,
    );
    expect_error(&vote(CAROL, json!([1])), 403, 50001);

    let seen_by_bob = expect_documented(
        &spec,
        &api.get(&format!("{messages}/{id}"), BOB),
        200,
        "GET",
        "/channels/{channel_id}/messages/{message_id}",
    );
    assert_eq!(
        seen_by_bob["poll"]["results"]["answer_counts"],
        json!([{"id": 1, "count": 1, "me_voted": true},
               {"id": 2, "count": 1, "me_voted": false}])
    );

    // Voters of an answer, paged by user id.
    let voters_path = "/channels/{channel_id}/polls/{message_id}/answers/{answer_id}";
    let voters = expect_documented(
        &spec,
        &api.get(&format!("{polls}/answers/2"), BOT),
        200,
        "GET",
        voters_path,
    );
    assert_eq!(voters["users"].as_array().unwrap().len(), 1);
    assert_eq!(voters["users"][0]["id"], DAVE_ID);
    assert_eq!(vote(BOB, json!([2])).status, 204);
    let both = expect(&api.get(&format!("{polls}/answers/2"), BOT), 200).clone();
    let ids: Vec<&str> = both["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [BOB_ID, DAVE_ID]);
    let after = expect(
        &api.get(&format!("{polls}/answers/2?after={BOB_ID}&limit=1"), BOT),
        200,
    )
    .clone();
    assert_eq!(after["users"][0]["id"], DAVE_ID);
    assert_eq!(
        expect(&api.get(&format!("{polls}/answers/1"), BOT), 200)["users"],
        json!([])
    );
    expect_error(
        &api.get(&format!("{polls}/answers/2?limit=0"), BOT),
        400,
        50035,
    );
    expect_error(&api.get(&format!("{polls}/answers/7"), BOT), 400, 50035);
    expect_error(
        &api.get(&format!("/channels/{GENERAL}/polls/1/answers/1"), BOT),
        404,
        10008,
    );
    // Clearing a vote.
    assert_eq!(vote(DAVE, json!([])).status, 204);

    // A poll message cannot be edited; only its author ends it; non-polls cannot be ended.
    expect_error(
        &api.patch(
            &format!("{messages}/{id}"),
            ALICE,
            json!({"content": "changed"}),
        ),
        400,
        520003,
    );
    expect_error(
        &api.post(&format!("{polls}/expire"), BOB, json!({})),
        403,
        50005,
    );
    let plain = expect(&api.post(&messages, ALICE, json!({"content": "hi"})), 200)["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/polls/{plain}/expire"),
            ALICE,
            json!({}),
        ),
        400,
        520006,
    );

    // Restart: the poll and its votes persist.
    server.stop();
    let server = Server::start_in(&data, None, &["--rate-limit", "off"]).expect("server restarts");
    let api = server.api();
    let polls_seen = expect(&api.get(&format!("{messages}/{id}"), BOB), 200).clone();
    assert_eq!(
        polls_seen["poll"]["results"]["answer_counts"],
        json!([{"id": 2, "count": 1, "me_voted": true}])
    );

    let ended = expect_documented(
        &spec,
        &api.post(&format!("{polls}/expire"), ALICE, json!({})),
        200,
        "POST",
        "/channels/{channel_id}/polls/{message_id}/expire",
    );
    assert_eq!(ended["poll"]["results"]["is_finalized"], true);
    assert_eq!(
        ended["poll"]["results"]["answer_counts"],
        json!([{"id": 2, "count": 1, "me_voted": false}])
    );
    expect_error(
        &api.put(
            &format!("{polls}/answers/@me"),
            DAVE,
            json!({"answer_ids": [1]}),
        ),
        400,
        520001,
    );
    expect_error(
        &api.post(&format!("{polls}/expire"), ALICE, json!({})),
        400,
        520001,
    );

    // The POLL_RESULT notice: by the poll's author, pointing at the poll, with the winner.
    let latest = expect(&api.get(&format!("{messages}?limit=1"), ALICE), 200)[0].clone();
    conforms(
        &spec,
        "GET",
        "/channels/{channel_id}/messages",
        200,
        &json!([latest.clone()]),
    );
    assert_eq!(latest["type"], 46);
    assert_eq!(latest["author"]["id"], ALICE_ID);
    assert_eq!(latest["message_reference"]["message_id"], id.as_str());
    let fields: Vec<(String, String)> = latest["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(latest["embeds"][0]["type"], "poll_result");
    for expected in [
        ("poll_question_text", "Lunch?"),
        ("victor_answer_votes", "1"),
        ("total_votes", "1"),
        ("victor_answer_id", "2"),
        ("victor_answer_text", "Salad"),
    ] {
        assert!(
            fields.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {fields:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_and_the_end_of_a_poll_reach_gateway_sessions() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    const GUILDS: u64 = 1;
    const GUILD_MESSAGES: u64 = 1 << 9;
    const MESSAGE_CONTENT: u64 = 1 << 15;
    const GUILD_MESSAGE_POLLS: u64 = 1 << 24;
    let bot_token = BOT.trim_start_matches("Bot ");
    let mut polls_bot = session(
        &server.addr,
        bot_token,
        GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT | GUILD_MESSAGE_POLLS,
    )
    .await;
    let mut messages_only = session(&server.addr, bot_token, GUILDS | GUILD_MESSAGES).await;

    let (status, created) = call(
        &base,
        "POST",
        format!("/channels/{GENERAL}/messages"),
        ALICE,
        lunch_poll(true),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (create, _) = next_dispatch(&mut polls_bot, |n| n == "MESSAGE_CREATE").await;
    assert_eq!(create["poll"]["question"]["text"], "Lunch?");
    // Without MESSAGE_CONTENT the poll is withheld like the rest of the content.
    let (bare, _) = next_dispatch(&mut messages_only, |n| n == "MESSAGE_CREATE").await;
    assert!(bare.get("poll").is_none(), "{bare}");

    let vote = |answers: Value| {
        call(
            &base,
            "PUT",
            format!("/channels/{GENERAL}/polls/{id}/answers/@me"),
            BOB,
            json!({ "answer_ids": answers }),
        )
    };
    assert_eq!(vote(json!([1, 3])).await.0, 204);
    let is_vote = |n: &str| n.starts_with("MESSAGE_POLL_VOTE_");
    let (first, _) = next_dispatch(&mut polls_bot, is_vote).await;
    let (second, _) = next_dispatch(&mut polls_bot, is_vote).await;
    let expected = |answer: u32| {
        json!({"user_id": BOB_ID, "channel_id": GENERAL, "message_id": id,
               "guild_id": GUILD, "answer_id": answer})
    };
    assert_eq!(first, expected(1));
    assert_eq!(second, expected(3));

    // Switching from {1, 3} to {3, 2}: one REMOVE for 1, one ADD for 2.
    assert_eq!(vote(json!([3, 2])).await.0, 204);
    let (removed, _) = next_dispatch(&mut polls_bot, |n| n == "MESSAGE_POLL_VOTE_REMOVE").await;
    assert_eq!(removed, expected(1));
    let (added, skipped) = next_dispatch(&mut polls_bot, |n| n == "MESSAGE_POLL_VOTE_ADD").await;
    assert_eq!(added, expected(2));
    assert!(skipped.is_empty(), "{skipped:?}");

    // Ending it: MESSAGE_UPDATE with finalised results, then the POLL_RESULT notice.
    let (status, _) = call(
        &base,
        "POST",
        format!("/channels/{GENERAL}/polls/{id}/expire"),
        ALICE,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (update, skipped) = next_dispatch(&mut polls_bot, |n| n == "MESSAGE_UPDATE").await;
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(update["id"], id.as_str());
    assert_eq!(update["poll"]["results"]["is_finalized"], true);
    assert_eq!(
        update["poll"]["results"]["answer_counts"],
        json!([{"id": 2, "count": 1, "me_voted": false}, {"id": 3, "count": 1, "me_voted": false}])
    );
    let (notice, _) = next_dispatch(&mut polls_bot, |n| n == "MESSAGE_CREATE").await;
    assert_eq!(notice["type"], 46);
    assert_eq!(notice["guild_id"], GUILD);

    // The session without poll intents saw no vote dispatch before those two.
    let (_, skipped) = next_dispatch(&mut messages_only, |n| n == "MESSAGE_UPDATE").await;
    assert!(!skipped.iter().any(|n| is_vote(n)), "{skipped:?}");
}
