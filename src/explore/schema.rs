//! Schema inference: every observed JSON body of a route (or gateway event) is merged into one
//! summary, turned into a JSON Schema (2020-12, as OpenAPI 3.1 and AsyncAPI 3.0 use it).
//!
//! What is kept per position: how often each JSON type was seen (so unions and nullables come
//! out), which object fields were present in how many objects (`required` = in every one), up
//! to [`MAX_ENUM`] distinct short strings / integers (a small set becomes `enum`), whether every
//! string was a snowflake or an ISO-8601 timestamp, and one merged item schema per array.
//! Memory is bounded by [`MAX_DEPTH`], [`MAX_FIELDS`] and [`MAX_ENUM`], never by the number of
//! samples. Bodies are read straight into the summary (no `serde_json::Value` in between).
//! Merging is order-independent as long as no object reaches [`MAX_FIELDS`] distinct fields
//! (past that, later fields are dropped and the object is marked truncated).
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{json, Map, Value};

use crate::store::redact::MARK;

/// Nesting below this depth is counted by type but not described.
pub const MAX_DEPTH: usize = 12;
/// Distinct fields kept per object position.
pub const MAX_FIELDS: usize = 256;
/// Distinct values kept per string / integer position before it stops being enum-like.
pub const MAX_ENUM: usize = 12;
/// Strings longer than this (or holding a `/`: paths, URLs) never count as enum members, so
/// tokens and URLs never appear in an `enum`.
const MAX_ENUM_LEN: usize = 40;

/// A bounded set of distinct values; `overflow` once more than [`MAX_ENUM`] were seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSet<T: Ord> {
    values: BTreeSet<T>,
    overflow: bool,
}

impl<T: Ord> Default for ValueSet<T> {
    fn default() -> Self {
        ValueSet {
            values: BTreeSet::new(),
            overflow: false,
        }
    }
}

impl<T: Ord + Clone> ValueSet<T> {
    fn spill(&mut self) {
        self.overflow = true;
        self.values.clear();
    }

    fn insert(&mut self, value: T) {
        if !self.overflow && self.values.insert(value) && self.values.len() > MAX_ENUM {
            self.spill();
        }
    }

    fn merge(&mut self, other: &ValueSet<T>) {
        if other.overflow {
            self.spill();
        }
        for value in &other.values {
            self.insert(value.clone());
        }
    }

    /// The distinct values, unless there were too many.
    pub fn values(&self) -> Option<&BTreeSet<T>> {
        (!self.overflow).then_some(&self.values)
    }
}

/// What was seen of strings at one position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringStats {
    /// Strings seen.
    pub count: u64,
    /// Snowflakes (17–20 digit decimal strings) among them.
    pub snowflakes: u64,
    /// ISO-8601 date-times among them.
    pub datetimes: u64,
    /// Values discord-mitm redacted.
    pub redacted: u64,
    /// Short distinct values (enum candidates); long ones overflow it.
    pub values: ValueSet<String>,
}

/// What was seen of objects at one position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectStats {
    /// Objects seen.
    pub count: u64,
    /// Fields sorted by name; a field's `seen` says in how many objects it was present.
    pub fields: Vec<(String, Schema)>,
    /// True when fields past [`MAX_FIELDS`] were dropped.
    pub truncated: bool,
    /// Where each key of the last object read here was found, in its order: objects at one
    /// position mostly repeat their key order, so the next one's keys are looked up there
    /// first (one comparison instead of a search).
    order: KeyOrder,
}

/// Lookup guesses; not part of what was seen (two summaries of the same samples are equal
/// whatever their guesses).
#[derive(Debug, Clone, Default)]
struct KeyOrder(Vec<u16>);

impl PartialEq for KeyOrder {
    fn eq(&self, _: &KeyOrder) -> bool {
        true
    }
}

impl Eq for KeyOrder {}

impl ObjectStats {
    /// The summary of field `name`, if it was seen.
    pub fn field(&self, name: &str) -> Option<&Schema> {
        self.search(name).ok().map(|index| &self.fields[index].1)
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        self.fields
            .binary_search_by(|(field, _)| field.as_str().cmp(name))
    }

    /// Where field `name` is (or would go), trying where the `position`-th key of the last
    /// object was first.
    fn find(&self, name: &str, position: usize) -> Result<usize, usize> {
        if let Some(&guess) = self.order.0.get(position) {
            if self
                .fields
                .get(usize::from(guess))
                .is_some_and(|(f, _)| f == name)
            {
                return Ok(usize::from(guess));
            }
        }
        self.search(name)
    }

    /// Notes that the `position`-th key was found at `index`.
    fn remember(&mut self, position: usize, index: usize) {
        let Ok(index) = u16::try_from(index) else {
            return;
        };
        if let Some(slot) = self.order.0.get_mut(position) {
            *slot = index;
        } else if position == self.order.0.len() && position < MAX_FIELDS {
            self.order.0.push(index);
        }
    }
}

/// What was seen of arrays at one position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArrayStats {
    /// Arrays seen.
    pub count: u64,
    /// All their elements merged.
    pub items: Schema,
}

/// The merged summary of every value seen at one position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Values seen here, of any type.
    pub seen: u64,
    /// `null`s.
    pub nulls: u64,
    /// Booleans.
    pub bools: u64,
    /// Integers.
    pub integers: u64,
    /// Non-integral numbers.
    pub floats: u64,
    /// Distinct integers (enum candidates).
    pub int_values: ValueSet<i64>,
    /// Strings.
    pub strings: Option<Box<StringStats>>,
    /// Arrays.
    pub array: Option<Box<ArrayStats>>,
    /// Objects.
    pub object: Option<Box<ObjectStats>>,
}

/// A body that is not JSON.
#[derive(Debug, thiserror::Error)]
#[error("not JSON: {0}")]
pub struct NotJson(#[from] serde_json::Error);

impl Schema {
    /// Merges one JSON document (bytes) into the summary. On a parse error the summary may hold
    /// part of the document; callers that care check JSON-ness first (or ignore the error).
    pub fn observe_json(&mut self, bytes: &[u8]) -> Result<(), NotJson> {
        // One UTF-8 check of the whole body is much cheaper than serde_json's one per string.
        let text = std::str::from_utf8(bytes)
            .map_err(|_| NotJson(serde::de::Error::custom("invalid UTF-8")))?;
        let mut de = serde_json::Deserializer::from_str(text);
        Observe {
            node: self,
            depth: 0,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(())
    }

    /// Merges an already parsed value.
    pub fn observe_value(&mut self, value: &Value) {
        // `Value` is a `Deserializer` too; the same visitor reads it.
        let _ = Observe {
            node: self,
            depth: 0,
        }
        .deserialize(value);
    }

    /// Merges another summary into this one (same result as observing its samples here).
    pub fn merge(&mut self, other: &Schema) {
        self.seen += other.seen;
        self.nulls += other.nulls;
        self.bools += other.bools;
        self.integers += other.integers;
        self.floats += other.floats;
        self.int_values.merge(&other.int_values);
        if let Some(theirs) = &other.strings {
            let mine = self.strings.get_or_insert_with(Default::default);
            mine.count += theirs.count;
            mine.snowflakes += theirs.snowflakes;
            mine.datetimes += theirs.datetimes;
            mine.redacted += theirs.redacted;
            mine.values.merge(&theirs.values);
        }
        if let Some(theirs) = &other.array {
            let mine = self.array.get_or_insert_with(Default::default);
            mine.count += theirs.count;
            mine.items.merge(&theirs.items);
        }
        if let Some(theirs) = &other.object {
            let mine = self.object.get_or_insert_with(Default::default);
            mine.count += theirs.count;
            mine.truncated |= theirs.truncated;
            for (name, field) in &theirs.fields {
                match mine.search(name) {
                    Ok(index) => mine.fields[index].1.merge(field),
                    Err(index) if mine.fields.len() < MAX_FIELDS => {
                        mine.fields.insert(index, (name.clone(), field.clone()));
                    }
                    Err(_) => mine.truncated = true,
                }
            }
        }
    }

    /// Whether any string here was a redacted secret.
    pub fn has_redacted(&self) -> bool {
        self.strings.as_ref().is_some_and(|s| s.redacted > 0)
    }

    /// The JSON type names seen here, in JSON Schema spelling.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut types = Vec::new();
        if self.object.is_some() {
            types.push("object");
        }
        if self.array.is_some() {
            types.push("array");
        }
        if self.strings.is_some() {
            types.push("string");
        }
        if self.floats > 0 {
            types.push("number");
        } else if self.integers > 0 {
            types.push("integer");
        }
        if self.bools > 0 {
            types.push("boolean");
        }
        if self.nulls > 0 {
            types.push("null");
        }
        types
    }

    /// The JSON Schema describing everything seen.
    pub fn to_json_schema(&self) -> Value {
        let mut out = Map::new();
        let types = self.type_names();
        match types.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".into(), json!(one));
            }
            many => {
                out.insert("type".into(), json!(many));
            }
        }
        self.string_keywords(&types, &mut out);
        self.integer_keywords(&types, &mut out);
        if let Some(array) = &self.array {
            if array.items.seen > 0 {
                out.insert("items".into(), array.items.to_json_schema());
            }
        }
        if let Some(object) = &self.object {
            object_keywords(object, &mut out);
        }
        Value::Object(out)
    }

    fn string_keywords(&self, types: &[&str], out: &mut Map<String, Value>) {
        let Some(strings) = &self.strings else { return };
        if strings.count > 0 && strings.snowflakes == strings.count {
            out.insert("format".into(), json!("snowflake"));
            out.insert("pattern".into(), json!("^(0|[1-9][0-9]{0,19})$"));
        } else if strings.count > 0 && strings.datetimes == strings.count {
            out.insert("format".into(), json!("date-time"));
        } else if strings.redacted == 0 && only(types, "string") {
            if let Some(values) = strings.values.values().filter(|v| {
                // Enum-like: a few values that repeat.
                !v.is_empty() && strings.count >= 3 && (v.len() as u64) < strings.count
            }) {
                let mut members: Vec<Value> = values.iter().map(|v| json!(v)).collect();
                if self.nulls > 0 {
                    members.push(Value::Null);
                }
                out.insert("enum".into(), Value::Array(members));
            }
        }
    }

    fn integer_keywords(&self, types: &[&str], out: &mut Map<String, Value>) {
        if self.integers < 3 || self.floats > 0 || !only(types, "integer") {
            return;
        }
        if let Some(values) = self
            .int_values
            .values()
            .filter(|v| !v.is_empty() && (v.len() as u64) < self.integers)
        {
            let mut members: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            if self.nulls > 0 {
                members.push(Value::Null);
            }
            out.insert("enum".into(), Value::Array(members));
        }
    }
}

/// Whether `types` is just `want`, possibly with `null`.
fn only(types: &[&str], want: &str) -> bool {
    types.iter().all(|t| *t == want || *t == "null")
}

fn object_keywords(object: &ObjectStats, out: &mut Map<String, Value>) {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, field) in &object.fields {
        properties.insert(name.clone(), field.to_json_schema());
        if field.seen >= object.count {
            required.push(json!(name));
        }
    }
    if !properties.is_empty() {
        out.insert("properties".into(), Value::Object(properties));
    }
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    if object.truncated {
        out.insert("x-fields-truncated".into(), json!(true));
    }
}

/// Discord snowflakes as strings: 17 to 20 decimal digits (ids since 2015).
pub fn is_snowflake(s: &str) -> bool {
    (17..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// ISO-8601 / RFC 3339 date-times as Discord writes them: `2024-01-02T03:04:05(.fff)(+00:00|Z)`.
pub fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let date_time = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return false;
        }
        rest = &fraction[end..];
    }
    rest == "Z" || (rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')))
}

/// Reads one value into a [`Schema`] node.
struct Observe<'a> {
    node: &'a mut Schema,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Observe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Observe<'_> {
    fn string(self, s: &str) {
        self.node.seen += 1;
        let strings = self.node.strings.get_or_insert_with(Default::default);
        strings.count += 1;
        if s.starts_with(MARK) {
            strings.redacted += 1;
            strings.values.spill();
            return;
        }
        if is_snowflake(s) {
            strings.snowflakes += 1;
        } else if is_datetime(s) {
            strings.datetimes += 1;
        }
        if strings.values.overflow {
            return;
        }
        if s.len() > MAX_ENUM_LEN || s.contains('/') {
            strings.values.spill();
        } else if !strings.values.overflow && !strings.values.values.contains(s) {
            strings.values.insert(s.to_string());
        }
    }

    fn integer(self, value: Option<i64>) {
        self.node.seen += 1;
        self.node.integers += 1;
        match value {
            Some(v) => self.node.int_values.insert(v),
            None => self.node.int_values.spill(),
        }
    }
}

impl<'de> Visitor<'de> for Observe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.node.seen += 1;
        self.node.bools += 1;
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.integer(Some(v));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.integer(i64::try_from(v).ok());
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            // serde_json reads `1.0` as a float; JSON Schema calls it an integer too.
            self.integer(Some(v as i64));
        } else {
            self.node.seen += 1;
            self.node.floats += 1;
        }
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.string(v);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.node.seen += 1;
        self.node.nulls += 1;
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.node.seen += 1;
        self.node.nulls += 1;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.node.seen += 1;
        let array = self.node.array.get_or_insert_with(Default::default);
        array.count += 1;
        if self.depth >= MAX_DEPTH {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while seq
            .next_element_seed(Observe {
                node: &mut array.items,
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.node.seen += 1;
        let object = self.node.object.get_or_insert_with(Default::default);
        object.count += 1;
        if self.depth >= MAX_DEPTH {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let depth = self.depth + 1;
        let mut position = 0;
        while let Some(key) = map.next_key_seed(Key)? {
            let index = match object.find(&key, position) {
                Ok(index) => Some(index),
                Err(index) if object.fields.len() < MAX_FIELDS => {
                    object
                        .fields
                        .insert(index, (key.into_owned(), Schema::default()));
                    Some(index)
                }
                Err(_) => None,
            };
            match index {
                Some(index) => {
                    object.remember(position, index);
                    let node = &mut object.fields[index].1;
                    map.next_value_seed(Observe { node, depth })?;
                }
                None => {
                    object.truncated = true;
                    map.next_value::<IgnoredAny>()?;
                }
            }
            position += 1;
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
