//! Discord-shaped API errors: status, JSON code and message, and the nested `errors` of 50035.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::store::StoreError;

/// Which kind of entity a 404 is about; each has its own Discord code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    Account,
    Application,
    Channel,
    Guild,
    Integration,
    Invite,
    Member,
    Message,
    Overwrite,
    Role,
    Token,
    User,
    Emoji,
    Webhook,
    Ban,
    Interaction,
    ApplicationCommand,
    CommandPermissions,
    ScheduledEvent,
    ScheduledEventUser,
    StageInstance,
    WebauthnAuthenticator,
}

impl Unknown {
    /// Discord's JSON error code and message for this kind.
    pub fn code_and_message(self) -> (u32, &'static str) {
        match self {
            Unknown::Account => (10001, "Unknown Account"),
            Unknown::Application => (10002, "Unknown Application"),
            Unknown::Channel => (10003, "Unknown Channel"),
            Unknown::Guild => (10004, "Unknown Guild"),
            Unknown::Integration => (10005, "Unknown Integration"),
            Unknown::Invite => (10006, "Unknown Invite"),
            Unknown::Member => (10007, "Unknown Member"),
            Unknown::Message => (10008, "Unknown Message"),
            Unknown::Overwrite => (10009, "Unknown Overwrite"),
            Unknown::Role => (10011, "Unknown Role"),
            Unknown::Token => (10012, "Unknown Token"),
            Unknown::User => (10013, "Unknown User"),
            Unknown::Emoji => (10014, "Unknown Emoji"),
            Unknown::Webhook => (10015, "Unknown Webhook"),
            Unknown::Ban => (10026, "Unknown Ban"),
            Unknown::Interaction => (10062, "Unknown interaction"),
            Unknown::ApplicationCommand => (10063, "Unknown application command"),
            Unknown::CommandPermissions => (10066, "Unknown application command permissions"),
            Unknown::ScheduledEvent => (10070, "Unknown Guild Scheduled Event"),
            Unknown::ScheduledEventUser => (10071, "Unknown Guild Scheduled Event User"),
            Unknown::StageInstance => (10067, "Unknown Stage Instance"),
            Unknown::WebauthnAuthenticator => (10093, "Unknown WebAuthn Authenticator"),
        }
    }
}

/// Everything a route can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("401: Unauthorized")]
    Unauthorized,
    #[error("{0:?} not found")]
    NotFound(Unknown),
    #[error("404: Not Found")]
    NoRoute,
    #[error("405: Method Not Allowed")]
    MethodNotAllowed,
    #[error("Missing Access")]
    MissingAccess,
    #[error("Missing Permissions")]
    MissingPermissions,
    #[error("Invalid Form Body")]
    InvalidForm(FormErrors),
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: u32,
        message: String,
    },
    #[error("Request entity too large")]
    PayloadTooLarge,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("Slowmode rate limit")]
    SlowMode { retry_after: f64 },
}

impl ApiError {
    /// A 400 with a specific Discord code (e.g. 50006 Cannot send an empty message).
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        ApiError::Coded {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// A 403 with a specific Discord code (e.g. 50007 Cannot send messages to this user).
    pub fn forbidden(code: u32, message: impl Into<String>) -> Self {
        ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
        }
    }

    /// 50035 with one error at `path` (dotted, e.g. `embeds.0.title`).
    pub fn invalid_field(path: &str, code: &str, message: impl Into<String>) -> Self {
        let mut errors = FormErrors::default();
        errors.add(path, code, message);
        ApiError::InvalidForm(errors)
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingAccess | ApiError::MissingPermissions => StatusCode::FORBIDDEN,
            ApiError::InvalidForm(_) => StatusCode::BAD_REQUEST,
            ApiError::Coded { status, .. } => *status,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::SlowMode { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The JSON body Discord sends for this error.
    pub fn body(&self) -> Value {
        match self {
            ApiError::Unauthorized => json!({"message": "401: Unauthorized", "code": 0}),
            ApiError::NotFound(kind) => {
                let (code, message) = kind.code_and_message();
                json!({"message": message, "code": code})
            }
            ApiError::NoRoute => json!({"message": "404: Not Found", "code": 0}),
            ApiError::MethodNotAllowed => {
                json!({"message": "405: Method Not Allowed", "code": 0})
            }
            ApiError::MissingAccess => json!({"message": "Missing Access", "code": 50001}),
            ApiError::MissingPermissions => {
                json!({"message": "Missing Permissions", "code": 50013})
            }
            ApiError::InvalidForm(errors) => json!({
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": errors.to_value(),
            }),
            ApiError::Coded { code, message, .. } => json!({"message": message, "code": code}),
            ApiError::PayloadTooLarge => {
                json!({"message": "Request entity too large", "code": 40005})
            }
            ApiError::Internal(_) => json!({"message": "500: Internal Server Error", "code": 0}),
            ApiError::SlowMode { retry_after } => json!({
                "message": "Slowmode rate limit",
                "code": 20016,
                "retry_after": (retry_after * 1000.0).ceil() / 1000.0,
                "global": false,
            }),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Internal(err.to_string())
    }
}

/// Load-or-404 for lookups: a present value, or Discord's 404 for that kind of object.
pub(crate) trait OrUnknown<V> {
    /// The value; absent answers 404 `what`, a failed lookup passes its error on.
    fn or_unknown(self, what: Unknown) -> Result<V, ApiError>;
}

impl<V, E: Into<ApiError>> OrUnknown<V> for Result<Option<V>, E> {
    fn or_unknown(self, what: Unknown) -> Result<V, ApiError> {
        self.map_err(Into::into)?.ok_or(ApiError::NotFound(what))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error while serving a request");
        }
        json_response(self.status(), &self.body())
    }
}

/// A JSON response with `Content-Type: application/json` exactly (no charset: discord.py checks).
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    json_bytes_response(
        status,
        serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

/// Like [`json_response`] for a body already serialized.
pub(crate) fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The nested `errors` object of a 50035 answer: `{"field": {"0": {"_errors": [...]}}}`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FormErrors {
    root: Map<String, Value>,
}

impl FormErrors {
    /// Adds one error at a dotted path; numeric segments stay string keys, as Discord sends them.
    pub fn add(&mut self, path: &str, code: &str, message: impl Into<String>) {
        let mut node = &mut self.root;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let entry = node
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = match entry.as_object_mut() {
                Some(map) => map,
                None => return,
            };
        }
        let list = node
            .entry("_errors".to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(items) = list.as_array_mut() {
            items.push(json!({"code": code, "message": message.into()}));
        }
    }

    /// The first error as (dotted path, message), for reports outside HTTP (fixtures).
    pub fn first(&self) -> Option<(String, String)> {
        fn walk(map: &Map<String, Value>, path: &mut Vec<String>) -> Option<(String, String)> {
            for (key, value) in map {
                if key == "_errors" {
                    let message = value[0]["message"].as_str().unwrap_or_default();
                    return Some((path.join("."), message.to_string()));
                }
                if let Value::Object(inner) = value {
                    path.push(key.clone());
                    if let Some(found) = walk(inner, path) {
                        return Some(found);
                    }
                    path.pop();
                }
            }
            None
        }
        walk(&self.root, &mut Vec::new())
    }

    /// True when no error was added.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// The `errors` object.
    pub fn to_value(&self) -> Value {
        Value::Object(self.root.clone())
    }

    /// `Err(InvalidForm)` when anything was added.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidForm(self))
        }
    }
}

/// Collects field checks for a request body, producing one 50035 with every problem.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    errors: FormErrors,
}

impl Validator {
    /// Checks a string's length in characters is within `min..=max`.
    pub(crate) fn length(&mut self, path: &str, value: Option<&str>, min: usize, max: usize) {
        let Some(value) = value else { return };
        let count = value.chars().count();
        if count < min || count > max {
            self.errors.add(
                path,
                "BASE_TYPE_BAD_LENGTH",
                format!("Must be between {min} and {max} in length."),
            );
        }
    }

    /// Marks a required field that is missing.
    pub(crate) fn required<T>(&mut self, path: &str, value: Option<&T>) {
        if value.is_none() {
            self.errors
                .add(path, "BASE_TYPE_REQUIRED", "This field is required");
        }
    }

    /// Checks an integer is within `min..=max`.
    pub(crate) fn range(&mut self, path: &str, value: Option<i64>, min: i64, max: i64) {
        if let Some(value) = value {
            if value < min || value > max {
                self.errors.add(
                    path,
                    "NUMBER_TYPE_OUT_OF_RANGE",
                    format!("int value should be between {min} and {max}."),
                );
            }
        }
    }

    /// Adds an arbitrary error.
    pub(crate) fn add(&mut self, path: &str, code: &str, message: impl Into<String>) {
        self.errors.add(path, code, message);
    }

    /// `Err(50035)` if any check failed.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        self.errors.into_result()
    }
}

/// A 404 with one of the Discord codes `error::Unknown` does not list (10060 Unknown Sticker...).
pub(crate) fn not_found(code: u32, message: &str) -> ApiError {
    ApiError::Coded {
        status: StatusCode::NOT_FOUND,
        code,
        message: message.to_string(),
    }
}

/// Discord's codes for the unknown entities of these families.
pub(crate) mod unknown {
    pub(crate) const STICKER: (u32, &str) = (10060, "Unknown Sticker");
    pub(crate) const STICKER_PACK: (u32, &str) = (10061, "Unknown Sticker Pack");
    pub(crate) const GUILD_TEMPLATE: (u32, &str) = (10057, "Unknown Guild Template");
    pub(crate) const SOUNDBOARD_SOUND: (u32, &str) = (10097, "Unknown Soundboard Sound");
    pub(crate) const ENTITLEMENT: (u32, &str) = (10029, "Unknown Entitlement");
}

/// `not_found` for one of the `unknown` pairs.
pub(crate) fn unknown((code, message): (u32, &str)) -> ApiError {
    not_found(code, message)
}

/// Marks answers produced by the no-route fallback (used by the coverage report).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unrouted;

/// The 404 for paths no route serves, marked [`Unrouted`].
pub(crate) fn unrouted() -> Response {
    let mut response = ApiError::NoRoute.into_response();
    response.extensions_mut().insert(Unrouted);
    response
}

/// The handler for paths no route serves (also mounted explicitly where a path would otherwise
/// be captured by a parameter, e.g. `messages/@original`).
pub(crate) async fn no_route_handler(_request: axum::extract::Request) -> Response {
    unrouted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_errors_have_discords_shape() {
        let mut errors = FormErrors::default();
        errors.add(
            "embeds.0.title",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 256 or fewer in length.",
        );
        errors.add(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        );
        let body = ApiError::InvalidForm(errors).body();
        assert_eq!(
            body,
            json!({
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {
                    "embeds": {"0": {"title": {"_errors": [
                        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]}}},
                    "content": {"_errors": [
                        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}
                }
            })
        );
    }

    #[test]
    fn unknown_codes_match_discord() {
        assert_eq!(
            ApiError::NotFound(Unknown::Channel).body(),
            json!({"message": "Unknown Channel", "code": 10003})
        );
        assert_eq!(
            ApiError::NotFound(Unknown::Interaction).code_and_status(),
            (10062, StatusCode::NOT_FOUND)
        );
        assert_eq!(
            ApiError::Unauthorized.body(),
            json!({"message": "401: Unauthorized", "code": 0})
        );
    }

    impl ApiError {
        fn code_and_status(&self) -> (u64, StatusCode) {
            (self.body()["code"].as_u64().unwrap(), self.status())
        }
    }
}
