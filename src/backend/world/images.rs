//! Fixture images: an avatar, banner, icon or splash given as a data URI or as a file path
//! (relative to the fixture file's folder) is checked like an upload and stored for the CDN
//! under its content hash; a bare hash (`[a_]` + 32 hex digits) is kept as it is, for fixtures
//! that only name images real Discord serves.
use std::path::Path;

use super::plan::{Plan, PlanError};
use crate::backend::error::ApiError;
use crate::backend::services::images::{
    check_bytes, content_hash, decode_data_uri, MAX_IMAGE_BYTES,
};

/// Whether `value` is an image hash rather than a file or a data URI.
fn is_hash(value: &str) -> bool {
    let hex = value.strip_prefix("a_").unwrap_or(value);
    hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why an image was refused, for the fixture error at `at`.
fn reason(err: &ApiError, what: &str) -> String {
    match err {
        ApiError::Coded { code: 50045, .. } => {
            format!("{what} is larger than {} bytes", MAX_IMAGE_BYTES)
        }
        _ => format!("{what} is not a PNG, JPEG, GIF or WebP image"),
    }
}

/// The hash `value` (at the JSON path `at`) is stored under; its bytes join the plan.
pub(super) fn plan_image(
    plan: &mut Plan,
    base: &Path,
    at: String,
    value: Option<&String>,
) -> Result<Option<String>, PlanError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if is_hash(value) {
        return Ok(Some(value.clone()));
    }
    let (bytes, format) = if value.starts_with("data:") {
        decode_data_uri(value, "", MAX_IMAGE_BYTES)
            .map_err(|err| (at.clone(), reason(&err, "the data URI")))?
    } else {
        let path = base.join(value);
        let bytes = std::fs::read(&path)
            .map_err(|err| (at.clone(), format!("cannot read {}: {err}", path.display())))?;
        let format = check_bytes(&bytes, "", MAX_IMAGE_BYTES)
            .map_err(|err| (at.clone(), reason(&err, &path.display().to_string())))?;
        (bytes, format)
    };
    let hash = content_hash(&bytes, format);
    plan.images.push((hash.clone(), bytes));
    Ok(Some(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_told_from_paths() {
        assert!(is_hash("0123456789abcdef0123456789abcdef"));
        assert!(is_hash("a_0123456789abcdef0123456789abcdef"));
        assert!(!is_hash("avatars/alice.png"));
        assert!(!is_hash("0123456789abcdef0123456789abcdeg"));
    }
}
