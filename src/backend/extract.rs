//! Request extractors that answer in Discord's error shapes: the caller (`Auth`), path ids
//! (`Ids`), JSON bodies with size and depth limits (`Body`), query strings (`Q`), the
//! `X-Audit-Log-Reason` header (`Reason`), and the access a route declares (`InGuild`,
//! `InChannel`, `InGuildChannel`, `InThread`, `OwnApplication`).
//!
//! # Declared access
//!
//! A handler states what it needs in its signature instead of calling the access checks itself:
//! `InGuild<{ bits::MANAGE_ROLES }>` resolves the route's `guild_id` path parameter and requires
//! the caller to be a member holding every bit; `InChannel<{ bits::SEND_MESSAGES }>` does the same
//! for `channel_id` (visibility always required). `NEED = 0` (the default, `InGuild` alone) asks
//! for membership or visibility only; `InGuildChannel` is `InChannel` that also refuses DM
//! channels (50003) before the bits. Errors come in Discord's order: 401, path 50035, then
//! 10004/10003 unknown, 50001 missing access, 50013 missing permissions.
//!
//! Without a body (`InGuild<NEED>`) the extractor works on the request head and may sit anywhere
//! among the arguments; the check runs where it sits. With one (`InGuild<NEED, Body<T>>`) it
//! reads the body first and checks afterwards, because that is the order the handlers always had
//! (a malformed body answers 50035/50109 even to a caller who may not use the route). Keep
//! `auth: Auth` and `Ids(..)` as the first arguments: they fix the 401-first and path-first
//! order, and the guard reuses the caller that `Auth` found.
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FormErrors};
use super::model::{channel_type, Application, User};
use super::params;
use super::snowflake::Snowflake;
use super::state::{AppState, ChannelAccess, GuildAccess};

/// The authenticated caller: `Authorization: Bot <token>` for bots, the bare token for users.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub user: Arc<User>,
}

impl Auth {
    /// The caller's id.
    pub(crate) fn id(&self) -> Snowflake {
        self.user.id
    }
}

/// Resolves an Authorization header value to its user, enforcing the bot/user prefix rule.
pub(crate) fn authenticate(state: &AppState, value: &str) -> Result<Arc<User>, ApiError> {
    let (token, wants_bot) = match value.strip_prefix("Bot ") {
        Some(token) => (token.trim(), true),
        None => (value.trim(), false),
    };
    if token.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let user = state
        .store
        .user_by_token_shared(token)?
        .ok_or(ApiError::Unauthorized)?;
    if user.bot != wants_bot {
        return Err(ApiError::Unauthorized);
    }
    Ok(user)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        Ok(Auth {
            user: authenticate(state, value)?,
        })
    }
}

/// The caller if an Authorization header is present and valid; `None` when absent.
#[derive(Debug, Clone)]
pub(crate) struct MaybeAuth(pub Option<Arc<User>>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match parts.headers.get(header::AUTHORIZATION) {
            None => Ok(MaybeAuth(None)),
            Some(value) => {
                let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
                Ok(MaybeAuth(Some(authenticate(state, value)?)))
            }
        }
    }
}

/// Path parameters; a malformed snowflake answers 50035 NUMBER_TYPE_COERCE at its name.
#[derive(Debug)]
pub(crate) struct Ids<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Ids(value)),
            Err(rejection) => {
                let errors = match RawPathParams::from_request_parts(parts, state).await {
                    Ok(raw) => snowflake_errors(&raw),
                    Err(_) => FormErrors::default(),
                };
                if errors.is_empty() {
                    let detail = match rejection {
                        PathRejection::FailedToDeserializePathParams(e) => e.body_text(),
                        other => other.body_text(),
                    };
                    tracing::debug!(%detail, "path parameters did not parse");
                    return Err(ApiError::NoRoute);
                }
                Err(ApiError::InvalidForm(errors))
            }
        }
    }
}

/// 50035 NUMBER_TYPE_COERCE for every `*_id` path parameter that is not a snowflake.
fn snowflake_errors(raw: &RawPathParams) -> FormErrors {
    let mut errors = FormErrors::default();
    for (name, value) in raw.iter() {
        if name.ends_with("_id") && Snowflake::parse(value).is_none() {
            errors.add(
                name,
                "NUMBER_TYPE_COERCE",
                format!("Value \"{value}\" is not snowflake."),
            );
        }
    }
    errors
}

/// The caller (401 without valid credentials). A route that also takes `Auth` looks the token
/// up twice; both hit the in-memory token and user caches, which costs less per request than
/// carrying the user in the request's extensions on every authenticated route.
async fn caller(parts: &mut Parts, state: &AppState) -> Result<Arc<User>, ApiError> {
    Ok(Auth::from_request_parts(parts, state).await?.user)
}

/// The snowflake in path parameter `name`; 50035 (as [`Ids`] answers) for malformed ids.
async fn path_id(parts: &mut Parts, state: &AppState, name: &str) -> Result<Snowflake, ApiError> {
    let raw = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::NoRoute)?;
    let errors = snowflake_errors(&raw);
    if !errors.is_empty() {
        return Err(ApiError::InvalidForm(errors));
    }
    raw.iter()
        .find(|(param, _)| *param == name)
        .and_then(|(_, value)| Snowflake::parse(value))
        .ok_or_else(|| ApiError::Internal(format!("route has no `{name}` path parameter")))
}

/// One kind of declared access: which path parameter names the target and how it is checked.
trait Scope {
    /// The path parameter holding the target's id.
    const PARAM: &'static str;
    /// What a successful check yields.
    type Access;
    /// Loads the target and checks the caller holds every bit of `need` there.
    fn check(
        state: &AppState,
        user: &User,
        id: Snowflake,
        need: u64,
    ) -> Result<Self::Access, ApiError>;
}

/// Guild membership plus guild-level permissions.
struct GuildScope;

impl Scope for GuildScope {
    const PARAM: &'static str = "guild_id";
    type Access = GuildAccess;

    fn check(
        state: &AppState,
        user: &User,
        id: Snowflake,
        need: u64,
    ) -> Result<GuildAccess, ApiError> {
        state.guild_access_requiring(id, user.id, need)
    }
}

/// A rule a channel route puts on the channel's type, answered before the permission bits.
trait ChannelRule {
    /// The error for a channel the route does not act on; `None` lets it through.
    fn refuse(access: &ChannelAccess) -> Option<ApiError>;
}

/// Any visible channel.
struct AnyChannel;

impl ChannelRule for AnyChannel {
    fn refuse(_: &ChannelAccess) -> Option<ApiError> {
        None
    }
}

/// Threads only; other channel types answer 50024.
struct ThreadsOnly;

impl ChannelRule for ThreadsOnly {
    fn refuse(access: &ChannelAccess) -> Option<ApiError> {
        let thread = channel_type::is_thread(access.channel.kind);
        (!thread)
            .then(|| ApiError::bad_request(50024, "Cannot execute action on this channel type"))
    }
}

/// Channel visibility, the channel-type rule `R`, then channel-level permissions.
struct ChannelScope<R>(PhantomData<R>);

impl<R: ChannelRule> Scope for ChannelScope<R> {
    const PARAM: &'static str = "channel_id";
    type Access = ChannelAccess;

    fn check(
        state: &AppState,
        user: &User,
        id: Snowflake,
        need: u64,
    ) -> Result<ChannelAccess, ApiError> {
        channel_where(state, user, id, need, R::refuse)
    }
}

/// A guild channel's visibility plus channel-level permissions; DM channels answer 50003.
struct GuildChannelScope;

impl Scope for GuildChannelScope {
    const PARAM: &'static str = "channel_id";
    type Access = (ChannelAccess, Snowflake);

    fn check(
        state: &AppState,
        user: &User,
        id: Snowflake,
        need: u64,
    ) -> Result<(ChannelAccess, Snowflake), ApiError> {
        let dm_channel = || ApiError::forbidden(50003, "Cannot execute action on a DM channel");
        let access = channel_where(state, user, id, need, |access| {
            access.guild_id().is_none().then(dm_channel)
        })?;
        let guild_id = access.guild_id().ok_or_else(dm_channel)?;
        Ok((access, guild_id))
    }
}

/// Channel visibility, then `refuse` (a channel-type rule, answered before the bits), then
/// every bit of `need` in the channel.
fn channel_where(
    state: &AppState,
    user: &User,
    id: Snowflake,
    need: u64,
    refuse: impl FnOnce(&ChannelAccess) -> Option<ApiError>,
) -> Result<ChannelAccess, ApiError> {
    let access = state.channel_access(id, user)?;
    if let Some(error) = refuse(&access) {
        return Err(error);
    }
    access.require(need)?;
    Ok(access)
}

/// An application the caller runs as its bot or owns; no permission bits apply.
struct ApplicationScope;

impl Scope for ApplicationScope {
    const PARAM: &'static str = "application_id";
    type Access = Application;

    fn check(
        state: &AppState,
        user: &User,
        id: Snowflake,
        _need: u64,
    ) -> Result<Application, ApiError> {
        state.own_application(id, user)
    }
}

/// Caller, then path id, then the check: the order of a handler's first statement.
async fn access_from_parts<S: Scope>(
    parts: &mut Parts,
    state: &AppState,
    need: u64,
) -> Result<S::Access, ApiError> {
    let user = caller(parts, state).await?;
    let id = path_id(parts, state, S::PARAM).await?;
    S::check(state, &user, id, need)
}

/// Caller, then the body, then path id and the check (handlers read bodies before checking).
async fn access_after_body<S: Scope, B: FromRequest<AppState>>(
    request: Request,
    state: &AppState,
    need: u64,
) -> Result<(S::Access, B), ApiError>
where
    ApiError: From<B::Rejection>,
{
    let (mut parts, body) = request.into_parts();
    let user = caller(&mut parts, state).await?;
    let id = path_id(&mut parts, state, S::PARAM).await;
    let body = B::from_request(Request::from_parts(parts, body), state).await?;
    let access = S::check(state, &user, id?, need)?;
    Ok((access, body))
}

/// Implements both extractor forms of one declared-access type over its [`Scope`]: on the
/// request head alone (`B = ()`), or reading the body `B` first (see the module doc).
/// `without_bits` is for scopes that take no permission bits (no `NEED` parameter).
macro_rules! declared_access {
    ($name:ident, $scope:ty, without_bits) => {
        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let access = access_from_parts::<$scope>(parts, state, 0).await?;
                Ok($name(access, ()))
            }
        }

        impl<B> FromRequest<AppState> for $name<B>
        where
            B: FromRequest<AppState>,
            ApiError: From<B::Rejection>,
        {
            type Rejection = ApiError;

            async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
                let (access, body) = access_after_body::<$scope, B>(request, state, 0).await?;
                Ok($name(access, body))
            }
        }
    };
    ($name:ident, $scope:ty) => {
        impl<const NEED: u64> FromRequestParts<AppState> for $name<NEED> {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let access = access_from_parts::<$scope>(parts, state, NEED).await?;
                Ok($name(access, ()))
            }
        }

        impl<const NEED: u64, B> FromRequest<AppState> for $name<NEED, B>
        where
            B: FromRequest<AppState>,
            ApiError: From<B::Rejection>,
        {
            type Rejection = ApiError;

            async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
                let (access, body) = access_after_body::<$scope, B>(request, state, NEED).await?;
                Ok($name(access, body))
            }
        }
    };
}

/// The caller's membership in the route's guild (`guild_id`), holding every bit of `NEED`
/// (0: membership only), plus the request body `B` when there is one (see the module doc):
/// `InGuild(access, Body(body)): InGuild<{ bits::MANAGE_ROLES }, Body<RoleBody>>`.
#[derive(Debug)]
pub(crate) struct InGuild<const NEED: u64 = 0, B = ()>(pub GuildAccess, pub B);

declared_access!(InGuild, GuildScope);

/// The caller's view of the route's channel (`channel_id`), visible and holding every bit of
/// `NEED` there, plus the request body `B` when there is one (see the module doc):
/// `InChannel(access, _): InChannel<{ bits::SEND_MESSAGES }>`.
#[derive(Debug)]
pub(crate) struct InChannel<const NEED: u64 = 0, B = ()>(pub ChannelAccess, pub B);

declared_access!(InChannel, ChannelScope<AnyChannel>);

/// [`InChannel`] for routes that only act in guild channels, with the channel's guild id: a
/// visible DM channel answers 50003 "Cannot execute action on a DM channel" before `NEED`:
/// `InGuildChannel((access, guild_id), _): InGuildChannel<{ bits::MANAGE_MESSAGES }>`.
#[derive(Debug)]
pub(crate) struct InGuildChannel<const NEED: u64 = 0, B = ()>(
    pub (ChannelAccess, Snowflake),
    pub B,
);

declared_access!(InGuildChannel, GuildChannelScope);

/// [`InChannel`] for routes that only act on threads: any other visible channel answers 50024
/// "Cannot execute action on this channel type" before `NEED`:
/// `InThread(access, _): InThread`.
#[derive(Debug)]
pub(crate) struct InThread<const NEED: u64 = 0, B = ()>(pub ChannelAccess, pub B);

declared_access!(InThread, ChannelScope<ThreadsOnly>);

/// The route's application (`application_id`) when the caller is its bot or its owner (10002
/// unknown, 50001 otherwise), plus the request body `B` when there is one (see the module doc):
/// `OwnApplication(app, Body(body)): OwnApplication<Body<EmojiBody>>`.
#[derive(Debug)]
pub(crate) struct OwnApplication<B = ()>(pub Application, pub B);

declared_access!(OwnApplication, ApplicationScope, without_bits);

/// Query parameters read as Discord reads them (see [`params`]); bad values answer 50035 at
/// the parameter's name.
#[derive(Debug)]
pub(crate) struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        params::parse(query.as_bytes())
            .map(Q)
            .map_err(|(path, err)| ApiError::invalid_field(&path, err.code, err.message))
    }
}

/// `embeds[0].title` (serde_path_to_error) → `embeds.0.title` (Discord's error nesting).
fn dotted(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.replace('[', ".")
        .replace(']', "")
        .trim_start_matches('.')
        .to_string()
}

fn clean_serde_message(err: &dyn std::fmt::Display) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// A JSON request body. Too large → 413 (40005); too deep → 50035; malformed → 50109;
/// wrong types → 50035 at the offending field. An empty body reads as `{}`.
#[derive(Debug)]
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let payload = Payload::<T>::from_request(request, state).await?;
        Ok(Body(payload.body))
    }
}

/// A file sent in a `multipart/form-data` request (`files[N]`).
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    /// The form field name (`files[0]`, `file`...).
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub data: axum::body::Bytes,
}

impl Upload {
    /// The N of a `files[N]` field, used to match `attachments[].id` in the JSON payload.
    pub(crate) fn index(&self) -> Option<u64> {
        self.field
            .strip_prefix("files[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
            .or_else(|| self.field.strip_prefix("file").and_then(|n| n.parse().ok()))
    }
}

/// Largest file one upload may carry: Discord's default per-file limit (10 MiB).
pub(crate) const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// A JSON body plus any uploaded files: plain JSON, or `multipart/form-data` with the JSON in
/// `payload_json` (what libraries send with attachments).
#[derive(Debug)]
pub(crate) struct Payload<T> {
    pub body: T,
    pub files: Vec<Upload>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Payload<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config.max_body_bytes;
        if let Some(length) = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
        {
            if length > limit {
                drain(request.into_body(), limit.saturating_mul(4)).await;
                return Err(ApiError::PayloadTooLarge);
            }
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if !content_type.starts_with("multipart/form-data") {
            let bytes = axum::body::to_bytes(request.into_body(), limit)
                .await
                .map_err(|_| ApiError::PayloadTooLarge)?;
            let body = if content_type.starts_with("application/x-www-form-urlencoded") {
                form_body(state, &bytes)?
            } else {
                parse_json_body(&bytes, state.config.max_json_depth)?
            };
            return Ok(Payload {
                body,
                files: Vec::new(),
            });
        }
        let multipart_error = |err: axum::extract::multipart::MultipartError| {
            if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid_field("", "MULTIPART_INVALID", err.body_text())
            }
        };
        let mut multipart = axum::extract::Multipart::from_request(request, state)
            .await
            .map_err(|err| ApiError::invalid_field("", "MULTIPART_INVALID", err.body_text()))?;
        let mut json: Option<axum::body::Bytes> = None;
        let mut fields = Vec::new();
        let mut files = Vec::new();
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_string();
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let data = field.bytes().await.map_err(multipart_error)?;
            // Discord's per-file upload limit answers like its request limit: 413, 40005.
            if filename.is_some() && data.len() > MAX_ATTACHMENT_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            match filename {
                Some(filename) => files.push(Upload {
                    field: name,
                    filename,
                    content_type,
                    data,
                }),
                None if name == "payload_json" => json = Some(data),
                None => fields.push((name, String::from_utf8_lossy(&data).into_owned())),
            }
        }
        if files.len() > 10 {
            return Err(ApiError::invalid_field(
                "files",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 10 or fewer in length.",
            ));
        }
        let body = match json {
            Some(json) => parse_json_body(&json, state.config.max_json_depth)?,
            // Without `payload_json`, the text fields are the body (`content=...`).
            None => params::parse_fields(fields).map_err(form_error)?,
        };
        Ok(Payload { body, files })
    }
}

/// An `application/x-www-form-urlencoded` body: its `payload_json` field when it has one, else
/// its fields read as Discord reads query strings (`tts=True`, `flags="4"`).
fn form_body<T: DeserializeOwned>(state: &AppState, bytes: &[u8]) -> Result<T, ApiError> {
    let payload_json = form_urlencoded::parse(bytes).find(|(name, _)| name == "payload_json");
    match payload_json {
        Some((_, json)) => parse_json_body(json.as_bytes(), state.config.max_json_depth),
        None => params::parse(bytes).map_err(form_error),
    }
}

fn form_error((path, err): (String, params::ParamError)) -> ApiError {
    ApiError::invalid_field(&path, err.code, err.message)
}

/// Reads and discards up to `budget` bytes so the client gets to read our 413 instead of a
/// reset connection (bodies beyond the budget are cut off).
async fn drain(body: axum::body::Body, budget: usize) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len());
        if seen > budget {
            break;
        }
    }
}

/// Parses a JSON body with the depth limit and Discord's error mapping.
pub(crate) fn parse_json_body<T: DeserializeOwned>(
    bytes: &[u8],
    max_depth: usize,
) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    if json_depth(bytes) > max_depth {
        return Err(ApiError::invalid_field(
            "",
            "JSON_TOO_DEEP",
            format!("The JSON is nested more than {max_depth} levels deep."),
        ));
    }
    let invalid_json = || ApiError::bad_request(50109, "The request body contains invalid JSON.");
    // One pass straight into `T`. A data error only counts once the whole body is known to be
    // JSON (otherwise malformed JSON that also has a wrong type early on would answer 50035).
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|_| invalid_json())?;
            return Ok(value);
        }
        Err(err) => err,
    };
    if !err.inner().is_data() || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(invalid_json());
    }
    let path = dotted(&err.path().to_string());
    let message = clean_serde_message(err.inner());
    let code = if message.starts_with("missing field") {
        "BASE_TYPE_REQUIRED"
    } else {
        "BASE_TYPE_INVALID"
    };
    let (path, message) = match message.strip_prefix("missing field `") {
        Some(rest) => {
            let field = rest.trim_end_matches('`');
            let full = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            (full, "This field is required".to_string())
        }
        None => (path, message),
    };
    Err(ApiError::invalid_field(&path, code, message))
}

/// Maximum nesting of arrays/objects, ignoring brackets inside strings.
pub(crate) fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The `X-Audit-Log-Reason` header, percent-decoded (Discord expects it URL-encoded).
#[derive(Debug, Clone, Default)]
pub(crate) struct Reason(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Reason {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("x-audit-log-reason") else {
            return Ok(Reason(None));
        };
        let raw = String::from_utf8_lossy(value.as_bytes()).to_string();
        let decoded = percent_decode(&raw);
        if decoded.chars().count() > 512 {
            return Err(ApiError::invalid_field(
                "reason",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 512 or fewer in length.",
            ));
        }
        Ok(Reason((!decoded.is_empty()).then_some(decoded)))
    }
}

/// Decodes `%XX` escapes (invalid escapes are kept as written).
pub(crate) fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a": "[[[[{{{"}"#), 1);
        assert_eq!(json_depth(br#"[[[1]], {"b": [2]}]"#), 3);
        assert_eq!(json_depth(br#"{"a": "\"[", "b": []}"#), 2);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        title: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        content: Option<String>,
        embeds: Option<Vec<Inner>>,
    }

    #[test]
    fn type_errors_point_at_the_field() {
        let err = parse_json_body::<Outer>(br#"{"embeds": [{"title": 5}]}"#, 32).unwrap_err();
        let body = err.body();
        assert_eq!(body["code"], 50035);
        assert!(
            body["errors"]["embeds"]["0"]["title"]["_errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("invalid type")
        );
        let missing = parse_json_body::<Outer>(br#"{"embeds": [{}]}"#, 32).unwrap_err();
        assert_eq!(
            missing.body()["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"],
            "BASE_TYPE_REQUIRED"
        );
        let invalid = parse_json_body::<Outer>(b"{nope", 32).unwrap_err();
        assert_eq!(invalid.body()["code"], 50109);
        let deep = parse_json_body::<serde_json::Value>(&[b'['; 40], 32).unwrap_err();
        assert_eq!(deep.body()["code"], 50035);
        assert!(parse_json_body::<Outer>(b"  ", 32).is_ok());
    }

    mod access {
        use axum::body::Body as HttpBody;
        use axum::http::Request as HttpRequest;
        use axum::routing::get;
        use axum::Router;
        use serde_json::Value;
        use tower::ServiceExt;

        use crate::backend::extract::{Auth, Body, InChannel, InGuild};
        use crate::backend::permissions::bits;
        use crate::backend::state::{AppState, Config};
        use crate::backend::store::Store;
        use crate::backend::world::load_fixture_bytes;

        const FIXTURE: &str = r#"{"users": [
          {"id": "11", "username": "owner", "token": "owner"},
          {"id": "13", "username": "member", "token": "member"},
          {"id": "14", "username": "admin", "token": "admin"},
          {"id": "15", "username": "stranger", "token": "stranger"}],
         "guilds": [{"id": "100", "name": "Guild", "owner_id": "11",
           "roles": [{"id": "101", "name": "Admins", "permissions": "8", "position": 2}],
           "channels": [{"id": "110", "name": "general", "type": 0},
             {"id": "111", "name": "hidden", "type": 0,
              "permission_overwrites": [{"id": "100", "type": 0, "deny": "1024"}]}],
           "members": [{"user_id": "11"}, {"user_id": "13"},
             {"user_id": "14", "roles": ["101"]}]}]}"#;

        #[derive(serde::Deserialize)]
        struct Named {
            #[allow(dead_code)]
            name: String,
        }

        fn app() -> Router {
            let store = Store::temporary().unwrap();
            load_fixture_bytes(&store, FIXTURE.as_bytes(), "fixture").unwrap();
            let state = AppState::new(store, Config::default());
            Router::new()
                .route(
                    "/guilds/{guild_id}/member",
                    get(|_: Auth, InGuild(access, _): InGuild| async move {
                        access.guild.id.to_string()
                    }),
                )
                .route(
                    "/guilds/{guild_id}/roles",
                    get(|_: Auth, _: InGuild<{ bits::MANAGE_ROLES }>| async { "ok" }).post(
                        |_: Auth, _: InGuild<{ bits::MANAGE_ROLES }, Body<Named>>| async { "ok" },
                    ),
                )
                .route(
                    "/channels/{channel_id}/send",
                    get(|_: Auth, _: InChannel<{ bits::SEND_MESSAGES }>| async { "ok" }),
                )
                .route(
                    "/channels/{channel_id}/manage",
                    get(|_: Auth, _: InChannel<{ bits::MANAGE_CHANNELS }>| async { "ok" }),
                )
                .with_state(state)
        }

        /// Status and Discord error code (0 for a success) of one request.
        async fn call(method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, i64) {
            let mut request = HttpRequest::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json");
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            let request = request.body(HttpBody::from(body.to_string())).unwrap();
            let (head, answer) = app().oneshot(request).await.unwrap().into_parts();
            let bytes = axum::body::to_bytes(answer, usize::MAX).await.unwrap();
            let code = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|value| value["code"].as_i64());
            (head.status.as_u16(), code.unwrap_or(0))
        }

        /// Each GET of (path, caller) answers its (status, code).
        async fn expect_gets(cases: &[(&str, Option<&str>, (u16, i64))]) {
            for &(path, token, answer) in cases {
                let got = call("GET", path, token, "").await;
                assert_eq!(got, answer, "GET {path} as {token:?}");
            }
        }

        #[tokio::test]
        async fn members_pass_membership_and_strangers_do_not() {
            expect_gets(&[
                ("/guilds/100/member", Some("member"), (200, 0)),
                ("/guilds/100/member", Some("stranger"), (403, 50001)),
                ("/guilds/999/member", Some("member"), (404, 10004)),
                ("/guilds/100/member", None, (401, 0)),
                ("/guilds/1x/member", Some("member"), (400, 50035)),
                // 401 comes before the malformed id.
                ("/guilds/1x/member", None, (401, 0)),
            ])
            .await;
        }

        #[tokio::test]
        async fn permission_bits_are_required_unless_owner_or_administrator() {
            let path = "/guilds/100/roles";
            assert_eq!(call("GET", path, Some("member"), "").await, (403, 50013));
            assert_eq!(call("GET", path, Some("admin"), "").await, (200, 0));
            assert_eq!(call("GET", path, Some("owner"), "").await, (200, 0));
            assert_eq!(call("GET", path, Some("stranger"), "").await, (403, 50001));
        }

        #[tokio::test]
        async fn a_body_is_read_before_the_check() {
            let path = "/guilds/100/roles";
            let good = r#"{"name": "x"}"#;
            assert_eq!(call("POST", path, Some("owner"), good).await, (200, 0));
            assert_eq!(call("POST", path, Some("member"), good).await, (403, 50013));
            // A malformed body answers first, as when handlers checked after extraction.
            assert_eq!(call("POST", path, Some("member"), "{").await, (400, 50109));
            assert_eq!(
                call("POST", path, Some("stranger"), r#"{"name": 5}"#).await,
                (400, 50035)
            );
            assert_eq!(
                call("POST", "/guilds/999/roles", Some("member"), good).await,
                (404, 10004)
            );
            assert_eq!(
                call("POST", "/guilds/x/roles", Some("member"), good).await,
                (400, 50035)
            );
            assert_eq!(call("POST", path, None, "{").await, (401, 0));
        }

        #[tokio::test]
        async fn channels_need_visibility_then_bits() {
            expect_gets(&[
                ("/channels/110/send", Some("member"), (200, 0)),
                ("/channels/110/manage", Some("member"), (403, 50013)),
                ("/channels/110/manage", Some("admin"), (200, 0)),
                ("/channels/111/send", Some("member"), (403, 50001)),
                ("/channels/111/manage", Some("owner"), (200, 0)),
                ("/channels/110/send", Some("stranger"), (403, 50001)),
                ("/channels/999/send", Some("member"), (404, 10003)),
                ("/channels/abc/send", Some("member"), (400, 50035)),
            ])
            .await;
        }
    }

    #[test]
    fn reasons_are_percent_decoded() {
        assert_eq!(percent_decode("spam%20and%20abuse"), "spam and abuse");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }
}
