//! `Option<Option<T>>` for PATCH bodies: absent (keep) vs `null` (clear) vs a value.
use serde::{Deserialize, Deserializer};

/// Deserializes a present field (even `null`) as `Some(...)`.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Replaces `field` with the body's `value` when the body gives one (absent: keep).
pub fn set_given<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}
