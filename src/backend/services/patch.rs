//! `Option<Option<T>>` for PATCH bodies: absent (keep) vs `null` (clear) vs a value.
use serde::{Deserialize, Deserializer};

/// Deserializes a present field (even `null`) as `Some(...)`.
pub(crate) fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Replaces `field` with the body's `value` when the body gives one (absent: keep).
pub(crate) fn set_given<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// Overwrites `target` with `value` when the PATCH body carried the field (`None`: absent).
pub(crate) fn set_if_present<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

#[cfg(test)]
mod tests {
    use super::set_if_present;

    #[test]
    fn absent_fields_keep_the_stored_value() {
        let mut name = "old".to_string();
        set_if_present(&mut name, None);
        assert_eq!(name, "old");
        set_if_present(&mut name, Some("new".to_string()));
        assert_eq!(name, "new");
        let mut topic = Some("t".to_string());
        set_if_present(&mut topic, Some(None));
        assert_eq!(topic, None);
    }
}
