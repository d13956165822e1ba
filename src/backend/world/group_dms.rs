//! A fixture's group DMs: an owner and up to nine others, with their messages.
use std::collections::{HashMap, HashSet};

use super::fixture::{Fixture, FixtureUser};
use super::plan::{fixture_id, plan_messages, Plan, PlanError};
use crate::backend::model::{channel_type, Channel};
use crate::backend::snowflake::Snowflake;

/// Discord's limit on the people in a group DM.
const MAX_RECIPIENTS: usize = 10;

/// Checks and plans `fixture.group_dms`.
pub(super) fn plan_group_dms(
    plan: &mut Plan,
    fixture: &Fixture,
    users: &HashMap<Snowflake, &FixtureUser>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    for (g, group) in fixture.group_dms.iter().enumerate() {
        let at = |field: &str| format!("$.group_dms[{g}].{field}");
        let mut people: Vec<Snowflake> = Vec::new();
        for (r, id) in group.recipients.iter().enumerate() {
            if !users.contains_key(id) {
                return Err((
                    format!("$.group_dms[{g}].recipients[{r}]"),
                    format!("no user with id {id} in $.users"),
                ));
            }
            if people.contains(id) {
                return Err((
                    format!("$.group_dms[{g}].recipients[{r}]"),
                    format!("{id} is listed twice"),
                ));
            }
            people.push(*id);
        }
        if !(2..=MAX_RECIPIENTS).contains(&people.len()) {
            return Err((
                at("recipients"),
                format!("must list 2 to {MAX_RECIPIENTS} user ids, the owner included"),
            ));
        }
        if !people.contains(&group.owner_id) {
            return Err((at("owner_id"), "must be one of recipients".into()));
        }
        if group.name.as_ref().is_some_and(|n| n.chars().count() > 100) {
            return Err((at("name"), "must be 100 or fewer characters".into()));
        }
        let id = group.id.unwrap_or_else(|| fixture_id(0x31_0000 + g));
        if !all_ids.insert(id) {
            return Err((at("id"), format!("duplicate id {id}")));
        }
        let mut channel = Channel::new(id, channel_type::GROUP_DM);
        channel.recipient_ids = Some(people.clone());
        channel.owner_id = Some(group.owner_id);
        channel.name = group.name.clone();
        channel.icon = group.icon.clone();
        plan_messages(
            plan,
            &format!("$.group_dms[{g}]"),
            (id, None),
            &group.messages,
            &|author| people.contains(&author),
            users,
            &HashSet::new(),
        )?;
        plan.group_dms.push((channel, people));
    }
    Ok(())
}
