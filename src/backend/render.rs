//! Wire shapes (API v10): stored entities plus what Discord resolves into them (authors, users,
//! counts, reactions). Used by REST responses and by event payloads, so both always agree.
use serde_json::{json, Map, Value};

use super::model::*;
use super::snowflake::Snowflake;
use super::store::{ReactionEntry, Store, StoreError};

fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A user as others see it.
pub(crate) fn user(user: &User) -> Value {
    let mut out = json!({
        "id": user.id,
        "username": user.username,
        "discriminator": user.discriminator,
        "global_name": user.global_name,
        "avatar": user.avatar,
        "avatar_decoration_data": null,
        "public_flags": user.public_flags,
        "flags": user.public_flags,
        "banner": user.banner,
        "accent_color": user.accent_color,
        "primary_guild": null,
        "collectibles": null,
    });
    if user.bot {
        out["bot"] = Value::Bool(true);
    }
    if user.system {
        out["system"] = Value::Bool(true);
    }
    out
}

/// A user as they see themselves (`/users/@me`): adds email, verified, locale, mfa, premium.
pub(crate) fn user_private(user: &User) -> Value {
    serde_json::to_value(PrivateUser::of(user)).unwrap_or(Value::Null)
}

/// [`user_private`] serialized straight to JSON bytes (the hottest answer: no `Value` tree).
pub(crate) fn user_private_json(user: &User) -> Vec<u8> {
    serde_json::to_vec(&PrivateUser::of(user)).unwrap_or_else(|_| b"{}".to_vec())
}

/// The `/users/@me` shape, borrowed from the stored user (same keys, same order as [`user`]
/// followed by the private fields).
#[derive(serde::Serialize)]
struct PrivateUser<'a> {
    id: Snowflake,
    username: &'a str,
    discriminator: &'a str,
    global_name: &'a Option<String>,
    avatar: &'a Option<String>,
    avatar_decoration_data: Option<()>,
    public_flags: u64,
    flags: u64,
    banner: &'a Option<String>,
    accent_color: Option<u32>,
    primary_guild: Option<()>,
    collectibles: Option<()>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    bot: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    system: bool,
    mfa_enabled: bool,
    locale: &'a str,
    premium_type: u8,
    verified: bool,
    email: &'a Option<String>,
}

impl<'a> PrivateUser<'a> {
    fn of(user: &'a User) -> Self {
        PrivateUser {
            id: user.id,
            username: &user.username,
            discriminator: &user.discriminator,
            global_name: &user.global_name,
            avatar: &user.avatar,
            avatar_decoration_data: None,
            public_flags: user.public_flags,
            flags: user.flags,
            banner: &user.banner,
            accent_color: user.accent_color,
            primary_guild: None,
            collectibles: None,
            bot: user.bot,
            system: user.system,
            mfa_enabled: user.mfa_enabled,
            locale: &user.locale,
            premium_type: user.premium_type,
            verified: user.verified,
            email: &user.email,
        }
    }
}

/// A user by id, or a placeholder "Deleted User" when the account is gone.
pub(crate) fn user_by_id(store: &Store, id: Snowflake) -> Result<Value, StoreError> {
    Ok(match store.users.get_shared(id)? {
        Some(found) => user(&found),
        None => user(&User::new(id, "Deleted User", false)),
    })
}

/// A role.
pub(crate) fn role(role: &Role) -> Value {
    let mut out = Value::Object(to_object(role));
    out["colors"] = json!({
        "primary_color": role.color,
        "secondary_color": role.colors.secondary_color,
        "tertiary_color": role.colors.tertiary_color,
    });
    out
}

/// Roles sorted by position then id, as Discord lists them.
pub(crate) fn roles(mut roles: Vec<Role>) -> Value {
    roles.sort_by_key(|r| (r.position, r.id));
    Value::Array(roles.iter().map(role).collect())
}

/// A member with its user object.
pub(crate) fn member(store: &Store, member: &Member) -> Result<Value, StoreError> {
    let mut out = to_object(member);
    out.remove("user_id");
    out.insert("user".into(), user_by_id(store, member.user_id)?);
    Ok(Value::Object(out))
}

/// A member without the user (inside a message's `member`).
pub(crate) fn member_partial(member: &Member) -> Value {
    let mut out = to_object(member);
    out.remove("user_id");
    Value::Object(out)
}

/// A channel with its resolved fields (last message, DM recipients, thread counts).
pub(crate) fn channel(store: &Store, channel: &Channel) -> Result<Value, StoreError> {
    let mut out = to_object(channel);
    if let Some(ids) = out.remove("recipient_ids") {
        let ids: Vec<Snowflake> = serde_json::from_value(ids).unwrap_or_default();
        let recipients = ids
            .iter()
            .map(|id| user_by_id(store, *id))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("recipients".into(), Value::Array(recipients));
    }
    if channel.kind == channel_type::GUILD_VOICE {
        if let Some(status) = store.extra.voice_statuses.get(channel.id)? {
            out.insert("status".into(), json!(status));
        }
    }
    if channel_type::is_textual(channel.kind) || channel.kind == channel_type::GUILD_FORUM {
        out.insert(
            "last_message_id".into(),
            json!(store.last_message_id(channel.id)?),
        );
    }
    if channel.kind == channel_type::GUILD_TEXT || channel.kind == channel_type::GUILD_ANNOUNCEMENT
    {
        out.entry("topic").or_insert(Value::Null);
        out.insert("last_pin_timestamp".into(), last_pin(store, channel.id)?);
    }
    if matches!(
        channel.kind,
        channel_type::GUILD_VOICE | channel_type::GUILD_STAGE_VOICE
    ) {
        out.entry("rtc_region").or_insert(Value::Null);
    }
    if channel.guild_id.is_some() && !channel_type::is_thread(channel.kind) {
        out.entry("parent_id").or_insert(Value::Null);
    }
    if channel_type::is_thread(channel.kind) {
        let count = store.thread_members.count(channel.id);
        out.insert("member_count".into(), json!(count.min(50)));
        let messages = store.messages.count(channel.id);
        out.insert("message_count".into(), json!(messages));
        out.insert("total_message_sent".into(), json!(messages));
    }
    Ok(Value::Object(out))
}

fn last_pin(store: &Store, channel_id: Snowflake) -> Result<Value, StoreError> {
    let latest = store.pins.values(channel_id)?.into_iter().max();
    Ok(latest.map_or(Value::Null, |ms| {
        json!(super::snowflake::iso8601_from_ms(ms))
    }))
}

/// A custom emoji (with its creator when known).
pub(crate) fn emoji(store: &Store, emoji: &Emoji) -> Result<Value, StoreError> {
    let mut out = to_object(emoji);
    out.remove("creator_id");
    if let Some(creator) = emoji.creator_id {
        out.insert("user".into(), user_by_id(store, creator)?);
    }
    Ok(Value::Object(out))
}

/// A guild in the full shape (`GET /guilds/{id}`); counts only with `with_counts`.
pub(crate) fn guild(store: &Store, guild: &Guild, with_counts: bool) -> Result<Value, StoreError> {
    let mut out = to_object(guild);
    out.insert("roles".into(), roles(store.guild_roles(guild.id)?));
    let emojis = store
        .emojis
        .values(guild.id)?
        .iter()
        .map(|e| emoji(store, e))
        .collect::<Result<Vec<_>, _>>()?;
    out.insert("emojis".into(), Value::Array(emojis));
    out.insert("stickers".into(), json!([]));
    out.insert("region".into(), json!("deprecated"));
    out.insert(
        "nsfw".into(),
        json!(guild.nsfw_level == 1 || guild.nsfw_level == 3),
    );
    out.insert("widget_enabled".into(), json!(guild.widget_enabled));
    out.insert("max_presences".into(), Value::Null);
    out.insert("max_stage_video_channel_users".into(), json!(50));
    out.insert(
        "incidents_data".into(),
        store
            .extra
            .guild_incidents
            .get(guild.id)?
            .unwrap_or(Value::Null),
    );
    out.insert("home_header".into(), Value::Null);
    out.insert("hub_type".into(), Value::Null);
    out.insert("latest_onboarding_question_id".into(), Value::Null);
    out.insert("owner_configured_content_level".into(), json!(0));
    out.insert("inventory_settings".into(), Value::Null);
    out.insert("clan".into(), Value::Null);
    if with_counts {
        let count = store.member_count(guild.id);
        out.insert("approximate_member_count".into(), json!(count));
        out.insert("approximate_presence_count".into(), json!(0));
    }
    Ok(Value::Object(out))
}

/// The guild preview shape.
pub(crate) fn guild_preview(store: &Store, guild: &Guild) -> Result<Value, StoreError> {
    let full = self::guild(store, guild, true)?;
    Ok(json!({
        "id": guild.id,
        "name": guild.name,
        "icon": guild.icon,
        "splash": guild.splash,
        "discovery_splash": guild.discovery_splash,
        "emojis": full["emojis"],
        "features": guild.features,
        "approximate_member_count": full["approximate_member_count"],
        "approximate_presence_count": 0,
        "description": guild.description,
        "home_header": null,
        "stickers": [],
    }))
}

/// Reactions on a message as the viewer sees them (`me` is the viewer's own reaction).
pub(crate) fn reactions(entries: &[ReactionEntry], viewer: Option<Snowflake>) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|entry| {
                let me = viewer.is_some_and(|v| entry.user_ids.contains(&v));
                json!({
                    "count": entry.user_ids.len(),
                    "count_details": {"burst": 0, "normal": entry.user_ids.len()},
                    "me": me,
                    "me_burst": false,
                    "burst_me": false,
                    "burst_count": 0,
                    "burst_colors": [],
                    "emoji": reaction_emoji(entry),
                })
            })
            .collect(),
    )
}

/// The emoji object of a reaction.
pub(crate) fn reaction_emoji(entry: &ReactionEntry) -> Value {
    match entry.emoji_id {
        Some(id) => json!({"id": id, "name": entry.emoji_name, "animated": entry.animated}),
        None => json!({"id": null, "name": entry.emoji_name}),
    }
}

/// A message as `viewer` sees it, with author, mentions, reactions and the replied-to message.
pub(crate) fn message(
    store: &Store,
    message: &Message,
    viewer: Option<Snowflake>,
) -> Result<Value, StoreError> {
    message_depth(store, message, viewer, true, true)
}

/// A message just created (nobody can have reacted yet: no reaction lookup).
pub(crate) fn new_message(
    store: &Store,
    message: &Message,
    viewer: Option<Snowflake>,
) -> Result<Value, StoreError> {
    message_depth(store, message, viewer, true, false)
}

fn message_depth(
    store: &Store,
    message: &Message,
    viewer: Option<Snowflake>,
    with_reference: bool,
    with_reactions: bool,
) -> Result<Value, StoreError> {
    let author = match &message.webhook {
        // Interaction responses are written by the bot user itself (webhook_id = application).
        Some(hook) if hook.interaction_metadata.is_some() => user_by_id(store, message.author_id)?,
        Some(hook) => json!({
            "id": hook.webhook_id,
            "username": hook.username,
            "discriminator": "0000",
            "avatar": hook.avatar,
            "global_name": null,
            "bot": true,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": null,
        }),
        None => user_by_id(store, message.author_id)?,
    };
    let mentions = message
        .mentions
        .iter()
        .map(|id| user_by_id(store, *id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = json!({
        "id": message.id,
        "type": message.kind,
        "channel_id": message.channel_id,
        "author": author,
        "content": message.content,
        "timestamp": message.id.iso8601(),
        "edited_timestamp": message.edited_timestamp,
        "tts": message.tts,
        "mention_everyone": message.mention_everyone,
        "mentions": mentions,
        "mention_roles": message.mention_roles,
        "attachments": message.attachments,
        "embeds": message.embeds,
        "components": numbered_components(&message.components),
        "pinned": message.pinned,
        "flags": message.flags,
    });
    if with_reactions {
        let entries = store
            .reactions
            .get((message.channel_id, message.id))?
            .unwrap_or_default();
        if !entries.is_empty() {
            out["reactions"] = reactions(&entries, viewer);
        }
    }
    if let Some(hook) = &message.webhook {
        out["webhook_id"] = json!(hook.webhook_id);
        if let Some(metadata) = &hook.interaction_metadata {
            out["interaction_metadata"] = metadata.clone();
        }
    }
    if let Some(nonce) = &message.nonce {
        out["nonce"] = nonce.clone();
    }
    if !message.sticker_items.is_empty() {
        out["sticker_items"] = json!(message.sticker_items);
    }
    if let Some(application_id) = message.application_id {
        out["application_id"] = json!(application_id);
    }
    if let Some(reference) = &message.message_reference {
        out["message_reference"] = json!(reference);
        if with_reference && message.kind == 19 {
            let referenced = match (reference.channel_id, reference.message_id) {
                (Some(channel_id), Some(message_id)) => store.message(channel_id, message_id)?,
                _ => None,
            };
            out["referenced_message"] = match referenced {
                Some(found) => message_depth(store, &found, viewer, false, true)?,
                None => Value::Null,
            };
        }
    }
    if let Some(poll) = &message.poll {
        let votes = store
            .extra
            .poll_votes
            .get((message.channel_id, message.id))?
            .unwrap_or_default();
        out["poll"] = poll.render(&votes, viewer);
    }
    if let Some(thread_id) = message.thread_id {
        if let Some(thread) = store.channel(thread_id)? {
            out["thread"] = channel(store, &thread)?;
        }
    }
    Ok(out)
}

/// A ban.
pub(crate) fn ban(store: &Store, ban: &Ban) -> Result<Value, StoreError> {
    Ok(json!({"reason": ban.reason, "user": user_by_id(store, ban.user_id)?}))
}

/// An invite with its guild, channel and inviter (counts and metadata on request).
pub(crate) fn invite(
    store: &Store,
    invite: &Invite,
    with_counts: bool,
    with_metadata: bool,
) -> Result<Value, StoreError> {
    let guild = store.guild(invite.guild_id)?;
    let channel = store.channel(invite.channel_id)?;
    let mut out = json!({
        "type": 0,
        "code": invite.code,
        "guild_id": invite.guild_id,
        "guild": guild.as_ref().map(|g| json!({
            "id": g.id, "name": g.name, "splash": g.splash, "banner": g.banner,
            "description": g.description, "icon": g.icon, "features": g.features,
            "verification_level": g.verification_level, "vanity_url_code": g.vanity_url_code,
            "nsfw_level": g.nsfw_level, "nsfw": g.nsfw_level == 1 || g.nsfw_level == 3,
            "premium_subscription_count": g.premium_subscription_count,
        })),
        "channel": channel.as_ref().map(|c| json!({"id": c.id, "name": c.name, "type": c.kind})),
        "expires_at": (invite.max_age > 0).then(|| super::snowflake::iso8601_from_ms(
            invite.created_at_ms + u64::from(invite.max_age) * 1000)),
    });
    if let Some(inviter) = invite.inviter_id {
        out["inviter"] = user_by_id(store, inviter)?;
    }
    if with_counts {
        out["approximate_member_count"] = json!(store.member_count(invite.guild_id));
        out["approximate_presence_count"] = json!(0);
    }
    if with_metadata {
        out["uses"] = json!(invite.uses);
        out["max_uses"] = json!(invite.max_uses);
        out["max_age"] = json!(invite.max_age);
        out["temporary"] = json!(invite.temporary);
        out["created_at"] = json!(super::snowflake::iso8601_from_ms(invite.created_at_ms));
    }
    Ok(out)
}

/// A webhook; the token only for callers who may manage it (or who used it).
pub(crate) fn webhook(
    store: &Store,
    hook: &Webhook,
    with_token: bool,
) -> Result<Value, StoreError> {
    let mut out = json!({
        "id": hook.id,
        "type": hook.kind,
        "guild_id": hook.guild_id,
        "channel_id": hook.channel_id,
        "name": hook.name,
        "avatar": hook.avatar,
        "application_id": hook.application_id,
    });
    if with_token {
        out["token"] = json!(hook.token);
    }
    if let Some(creator) = hook.creator_id {
        out["user"] = user_by_id(store, creator)?;
    }
    Ok(out)
}

/// An application (`applications/@me` shape).
pub(crate) fn application(store: &Store, app: &Application) -> Result<Value, StoreError> {
    Ok(json!({
        "id": app.id,
        "name": app.name,
        "icon": app.icon,
        "description": app.description,
        "summary": "",
        "type": null,
        "hook": true,
        "bot_public": app.bot_public,
        "bot_require_code_grant": app.bot_require_code_grant,
        "verify_key": app.verify_key,
        "flags": app.flags,
        "flags_new": app.flags.to_string(),
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "eligible_oauth2_scopes": ["bot", "applications.commands"],
        "owner": user_by_id(store, app.owner_id)?,
        "bot": user_by_id(store, app.bot_id)?,
        "team": null,
        "rpc_origins": [],
        "redirect_uris": [],
        "tags": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "approximate_guild_count": store.guild_ids_of(app.bot_id)?.len(),
        "integration_types_config": {"0": {}},
    }))
}

/// A thread member.
pub(crate) fn thread_member(tm: &super::store::ThreadMember) -> Value {
    json!({"id": tm.thread_id, "user_id": tm.user_id, "join_timestamp": tm.join_timestamp, "flags": tm.flags})
}

/// A message's components with Discord's `id`s: each one without an id gets its position in a
/// depth-first walk of the tree (1, 2, …), as Discord numbers them.
pub(crate) fn numbered_components(components: &[Value]) -> Value {
    fn walk(component: &mut Value, next: &mut u64) {
        *next += 1;
        if let Some(object) = component.as_object_mut() {
            if !object.contains_key("id") {
                object.insert("id".into(), json!(*next));
            }
        }
        for key in ["components", "accessory"] {
            match component.get_mut(key) {
                Some(Value::Array(children)) => {
                    for child in children {
                        walk(child, next);
                    }
                }
                Some(child @ Value::Object(_)) => walk(child, next),
                _ => {}
            }
        }
    }
    let mut out = components.to_vec();
    let mut next = 0;
    for component in &mut out {
        walk(component, &mut next);
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_user_is_the_public_user_plus_private_fields_in_order() {
        let mut someone = User::new(Snowflake(80351110224678912), "nelly", true);
        someone.email = Some("nelly@example.com".into());
        someone.flags = 1 << 16;
        someone.public_flags = 1 << 16;
        let mut expected = user(&someone);
        expected["flags"] = json!(someone.flags);
        expected["mfa_enabled"] = json!(someone.mfa_enabled);
        expected["locale"] = json!(someone.locale);
        expected["premium_type"] = json!(someone.premium_type);
        expected["verified"] = json!(someone.verified);
        expected["email"] = json!(someone.email);
        let bytes = user_private_json(&someone);
        assert_eq!(bytes, serde_json::to_vec(&expected).unwrap());
        assert_eq!(user_private(&someone), expected);
    }
}
