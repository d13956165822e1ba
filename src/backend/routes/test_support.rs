//! Helpers shared by the route modules' unit tests.
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt;

use crate::backend::state::AppState;

/// Sends one JSON request through the whole router in-process; returns the status and the JSON body
/// (`Value::Null` when the body is empty or not JSON).
pub(crate) async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(format!("/api/v10{path}"))
        .header("authorization", token)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = crate::backend::routes::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A guild (100, text channel 110, owner alice 11) with a bot application (12, token "bot").
pub(crate) const GUILD_WITH_BOT: &str = r#"{"users": [
  {"id": "11", "username": "alice", "token": "alice"},
  {"id": "12", "username": "pingbot", "bot": true, "token": "bot"}],
 "guilds": [{"id": "100", "name": "Guild", "owner_id": "11",
   "channels": [{"id": "110", "name": "general", "type": 0}],
   "members": [{"user_id": "11"}, {"user_id": "12"}]}]}"#;

/// A guild (100, owner alice 11, member bob 13) whose one channel 110 has `name` and `kind`.
pub(crate) fn alice_and_bob_guild(name: &str, kind: u8) -> String {
    format!(
        r#"{{"users": [
  {{"id": "11", "username": "alice", "token": "alice"}},
  {{"id": "13", "username": "bob", "token": "bob"}}],
 "guilds": [{{"id": "100", "name": "Guild", "owner_id": "11",
   "channels": [{{"id": "110", "name": "{name}", "type": {kind}}}],
   "members": [{{"user_id": "11"}}, {{"user_id": "13"}}]}}]}}"#
    )
}

/// The state of a fresh temporary store loaded with the fixture JSON `fixture`.
pub(crate) fn state_with(fixture: &str) -> AppState {
    let store = crate::backend::store::Store::temporary().unwrap();
    crate::backend::world::load_fixture_bytes(&store, fixture.as_bytes(), "fixture").unwrap();
    AppState::new(store, crate::backend::state::Config::default())
}
