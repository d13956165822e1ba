//! Seeding: fixture files (validated whole, with JSON paths in errors, before anything is
//! written) and the demo world created on an empty data directory.

use super::store::{Store, StoreError};
use std::path::Path;

mod account;
mod account_fixture;
mod demo;
mod fixture;
mod forum_tags;
mod group_dms;
mod guild_extras;
mod guilds;
mod plan;
pub(crate) mod recorded;
mod upstream_tokens;
mod users;
mod write;

pub(crate) use demo::create_demo_world;
pub(crate) use upstream_tokens::fixture_upstream_tokens;

/// Why a fixture was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FixtureError {
    #[error("cannot read fixture {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fixture {file}: at {path}: {reason}")]
    Invalid {
        file: String,
        path: String,
        reason: String,
    },
    #[error("writing the fixture failed: {0}")]
    Store(#[from] StoreError),
}

/// Reads, validates and applies a fixture file; nothing is written if anything is wrong.
pub(crate) fn load_fixture_file(
    store: &Store,
    path: &Path,
) -> Result<FixtureSummary, FixtureError> {
    let text = std::fs::read(path).map_err(|source| FixtureError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_fixture_bytes(store, &text, &path.display().to_string())
}

/// What a fixture created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FixtureSummary {
    pub users: usize,
    pub guilds: usize,
    pub channels: usize,
}

/// Validates and applies fixture JSON (`file` names it in errors).
pub(crate) fn load_fixture_bytes(
    store: &Store,
    bytes: &[u8],
    file: &str,
) -> Result<FixtureSummary, FixtureError> {
    let invalid = |path: String, reason: String| FixtureError::Invalid {
        file: file.to_string(),
        path,
        reason,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let fixture: fixture::Fixture =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            invalid(
                if path == "." {
                    "$".into()
                } else {
                    format!("$.{path}")
                },
                err.inner().to_string(),
            )
        })?;
    let plan = plan(&fixture).map_err(|(path, reason)| invalid(path, reason))?;
    let summary = FixtureSummary {
        users: plan.users.len(),
        guilds: plan.guilds.len(),
        channels: plan.channels.len(),
    };
    write::write(store, plan)?;
    Ok(summary)
}

/// The JSON Schema of the fixture format (draft 2020-12), generated from the fixture types.
pub(crate) fn fixture_schema() -> String {
    let schema = schemars::schema_for!(fixture::Fixture);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Checks the whole fixture and builds what it will write (nothing is written here).
fn plan(fixture: &fixture::Fixture) -> Result<plan::Plan, plan::PlanError> {
    let mut plan = plan::Plan::default();
    let users_by_id = users::plan_users(&mut plan, fixture)?;
    let mut all_ids = std::collections::HashSet::new();
    for (g, spec) in fixture.guilds.iter().enumerate() {
        guilds::plan_guild(&mut plan, g, spec, &users_by_id, &mut all_ids)?;
    }
    users::plan_dms(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    group_dms::plan_group_dms(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    users::plan_applications(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    plan.account = account::plan_account(fixture, &users_by_id)?;
    Ok(plan)
}

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
