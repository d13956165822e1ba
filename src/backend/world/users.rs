//! Fixture users, bots' applications and DMs, planned.
use std::collections::{HashMap, HashSet};

use super::fixture::*;
use super::plan::*;
use crate::backend::accounts::{self, NewUser};
use crate::backend::model::*;
use crate::backend::snowflake::Snowflake;

/// The users (ids, names, tokens and emails unique), by id.
pub(super) fn plan_users<'f>(
    plan: &mut Plan,
    fixture: &'f Fixture,
) -> Result<HashMap<Snowflake, &'f FixtureUser>, PlanError> {
    let mut user_ids = HashSet::new();
    let mut tokens = HashSet::new();
    let mut emails = HashSet::new();
    let mut users_by_id: HashMap<Snowflake, &FixtureUser> = HashMap::new();
    for (index, spec) in fixture.users.iter().enumerate() {
        let at = |field: &str| format!("$.users[{index}].{field}");
        if spec.id.0 == 0 {
            return Err((at("id"), "must be a non-zero snowflake".into()));
        }
        if !user_ids.insert(spec.id) {
            return Err((at("id"), format!("duplicate user id {}", spec.id)));
        }
        let length = spec.username.chars().count();
        if !(2..=32).contains(&length) {
            return Err((at("username"), "must be between 2 and 32 characters".into()));
        }
        if let Some(token) = &spec.token {
            if token.trim().is_empty() || token.contains(char::is_whitespace) {
                return Err((
                    at("token"),
                    "must be non-empty and contain no spaces".into(),
                ));
            }
            if !tokens.insert(token.clone()) {
                return Err((at("token"), "the same token is given to two users".into()));
            }
        }
        if let Some(email) = &spec.email {
            if !email.contains('@') {
                return Err((at("email"), "is not an email address".into()));
            }
            if !emails.insert(email.to_lowercase()) {
                return Err((at("email"), "the same email is given to two users".into()));
            }
        }
        if spec.application.is_some() && !spec.bot {
            return Err((
                at("application"),
                "only bots have an application here (set \"bot\": true)".into(),
            ));
        }
        if spec.password.is_some() && spec.email.is_none() {
            return Err((
                at("password"),
                "a password needs an email to log in with".into(),
            ));
        }
        users_by_id.insert(spec.id, spec);
    }
    for spec in &fixture.users {
        let (mut user, credentials) = accounts::build_user(NewUser {
            id: spec.id,
            username: spec.username.clone(),
            global_name: spec.global_name.clone(),
            bot: spec.bot,
            token: spec.token.clone(),
            email: spec.email.clone(),
            password: spec.password.clone(),
        });
        if let Some(d) = &spec.discriminator {
            user.discriminator = d.clone();
        }
        user.system = spec.system;
        user.verified = spec.verified.unwrap_or(true);
        user.mfa_enabled = spec.mfa_enabled;
        if let Some(locale) = &spec.locale {
            user.locale = locale.clone();
        }
        user.flags = spec.flags;
        user.public_flags = spec.public_flags;
        user.premium_type = spec.premium_type;
        plan.users.push((user, credentials));
    }
    Ok(users_by_id)
}

/// Bots' applications (with their global commands).
pub(super) fn plan_applications(
    plan: &mut Plan,
    fixture: &Fixture,
    users_by_id: &HashMap<Snowflake, &FixtureUser>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    // Bots get an application with their id; its owner is the first human (or the bot).
    let first_human = fixture.users.iter().find(|u| !u.bot).map(|u| u.id);
    for (index, spec) in fixture.users.iter().enumerate() {
        if !spec.bot {
            continue;
        }
        let settings = spec.application.as_ref();
        let owner = settings
            .and_then(|a| a.owner_id)
            .or(first_human)
            .unwrap_or(spec.id);
        if !users_by_id.contains_key(&owner) {
            return Err((
                format!("$.users[{index}].application.owner_id"),
                format!("no user with id {owner} in $.users"),
            ));
        }
        let user = &plan
            .users
            .iter()
            .find(|(u, _)| u.id == spec.id)
            .map(|(u, _)| u.clone())
            .unwrap_or_else(|| User::new(spec.id, &spec.username, true));
        let mut app = accounts::bot_application(user, owner, settings.and_then(|a| a.flags));
        if let Some(name) = settings.and_then(|a| a.name.clone()) {
            app.name = name;
        }
        if let Some(description) = settings.and_then(|a| a.description.clone()) {
            app.description = description;
        }
        for (k, body) in settings
            .map(|a| a.commands.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let command = plan_command(
                &format!("$.users[{index}].application.commands[{k}]"),
                body,
                app.id,
                None,
                &plan.commands,
                all_ids,
            )?;
            plan.commands.push(command);
        }
        plan.applications.push(app);
    }
    Ok(())
}

/// DM channels between two users, with their messages.
pub(super) fn plan_dms(
    plan: &mut Plan,
    fixture: &Fixture,
    users: &HashMap<Snowflake, &FixtureUser>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let mut pairs = HashSet::new();
    for (d, dm) in fixture.dms.iter().enumerate() {
        let at = |field: &str| format!("$.dms[{d}].{field}");
        let [a, b] = dm.recipients.as_slice() else {
            return Err((at("recipients"), "must list exactly two user ids".into()));
        };
        for (r, id) in [a, b].into_iter().enumerate() {
            if !users.contains_key(id) {
                return Err((
                    format!("$.dms[{d}].recipients[{r}]"),
                    format!("no user with id {id} in $.users"),
                ));
            }
        }
        if a == b {
            return Err((at("recipients"), "a DM needs two different users".into()));
        }
        if users.get(a).is_some_and(|u| u.bot) && users.get(b).is_some_and(|u| u.bot) {
            return Err((
                at("recipients"),
                "bots cannot DM each other (Discord: 50007)".into(),
            ));
        }
        if !pairs.insert((*a.min(b), *a.max(b))) {
            return Err((
                at("recipients"),
                "these two users already have a DM in $.dms".into(),
            ));
        }
        let id = dm.id.unwrap_or_else(|| fixture_id(0x30_0000 + d));
        if !all_ids.insert(id) {
            return Err((at("id"), format!("duplicate id {id}")));
        }
        let mut channel = Channel::new(id, channel_type::DM);
        channel.recipient_ids = Some(vec![*a, *b]);
        plan_messages(
            plan,
            &format!("$.dms[{d}]"),
            (id, None),
            &dm.messages,
            &|author| author == *a || author == *b,
            users,
            &HashSet::new(),
        )?;
        plan.dms.push((channel, *a, *b));
    }
    Ok(())
}
