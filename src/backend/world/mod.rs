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
mod images;
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
    let base = path.parent().unwrap_or(Path::new("."));
    load_fixture_in(store, &text, &path.display().to_string(), base)
}

/// What a fixture created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FixtureSummary {
    pub users: usize,
    pub guilds: usize,
    pub channels: usize,
}

/// Validates and applies fixture JSON (`file` names it in errors); image paths in it are
/// relative to the current directory.
pub(crate) fn load_fixture_bytes(
    store: &Store,
    bytes: &[u8],
    file: &str,
) -> Result<FixtureSummary, FixtureError> {
    load_fixture_in(store, bytes, file, Path::new("."))
}

/// Validates and applies fixture JSON whose image paths are relative to `base`.
fn load_fixture_in(
    store: &Store,
    bytes: &[u8],
    file: &str,
    base: &Path,
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
    let plan = plan(&fixture, base).map_err(|(path, reason)| invalid(path, reason))?;
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
fn plan(fixture: &fixture::Fixture, base: &Path) -> Result<plan::Plan, plan::PlanError> {
    let mut plan = plan::Plan::default();
    let users_by_id = users::plan_users(&mut plan, fixture)?;
    let mut all_ids = std::collections::HashSet::new();
    for (g, spec) in fixture.guilds.iter().enumerate() {
        guilds::plan_guild(&mut plan, g, spec, &users_by_id, &mut all_ids)?;
    }
    plan_images(&mut plan, fixture, base)?;
    users::plan_dms(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    group_dms::plan_group_dms(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    users::plan_applications(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    plan.account = account::plan_account(fixture, &users_by_id)?;
    Ok(plan)
}

/// Where each planned row sits, by the id of its record.
fn positions<T, X>(
    rows: &[(T, X)],
    id: impl Fn(&T) -> super::snowflake::Snowflake,
) -> std::collections::HashMap<super::snowflake::Snowflake, usize> {
    rows.iter()
        .enumerate()
        .map(|(i, (record, _))| (id(record), i))
        .collect()
}

/// Reads the users' and guilds' images (files or data URIs) into the plan and points the
/// planned records at their hashes.
fn plan_images(
    plan: &mut plan::Plan,
    fixture: &fixture::Fixture,
    base: &Path,
) -> Result<(), plan::PlanError> {
    // By id, once: a search per user made a 100,000-user fixture take minutes.
    let user_at = positions(&plan.users, |user| user.id);
    for (u, spec) in fixture.users.iter().enumerate() {
        let at = |field: &str| format!("$.users[{u}].{field}");
        let avatar = images::plan_image(plan, base, at("avatar"), spec.avatar.as_ref())?;
        let banner = images::plan_image(plan, base, at("banner"), spec.banner.as_ref())?;
        let found = user_at.get(&spec.id).and_then(|&i| plan.users.get_mut(i));
        if let Some((user, _)) = found {
            user.avatar = avatar;
            user.banner = banner;
        }
    }
    let guild_at = positions(&plan.guilds, |guild| guild.id);
    for (g, spec) in fixture.guilds.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].{field}");
        let icon = images::plan_image(plan, base, at("icon"), spec.icon.as_ref())?;
        let banner = images::plan_image(plan, base, at("banner"), spec.banner.as_ref())?;
        let splash = images::plan_image(plan, base, at("splash"), spec.splash.as_ref())?;
        let found = guild_at.get(&spec.id).and_then(|&i| plan.guilds.get_mut(i));
        if let Some((guild, _)) = found {
            guild.icon = icon;
            guild.banner = banner;
            guild.splash = splash;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
