//! PATCH bodies: copying the fields a request carried onto the stored value.

/// Overwrites `target` with `value` when the PATCH body carried the field (`None`: absent).
pub fn set_if_present<T>(target: &mut T, value: Option<T>) {
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
