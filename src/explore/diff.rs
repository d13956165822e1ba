//! `recordings diff A B`: what changed between two recordings (or two time ranges of one):
//! routes and gateway events added and removed, and per route/event the schema changes
//! (field added, removed, type changed, became optional or required), from the same inference
//! as `routes --openapi/--asyncapi`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::gateway::GatewayInferred;
use super::openapi::Inferred;
use super::range::TimeRange;
use super::schema::{Schema, MAX_DEPTH};
use crate::store::{Store, StoreError};

/// The shapes of one side: every route's and event's body schemas, by label.
#[derive(Debug, Default)]
pub struct Shapes {
    /// `METHOD /template` → body label (`response 200 application/json`) → schema.
    pub routes: BTreeMap<String, BTreeMap<String, Schema>>,
    /// `receive MESSAGE_CREATE` / `send op 2` → `payload` → schema.
    pub events: BTreeMap<String, BTreeMap<String, Schema>>,
}

impl Shapes {
    /// The shapes of what was inferred from REST exchanges and gateway frames.
    pub fn new(rest: &Inferred, gateway: &GatewayInferred) -> Shapes {
        let mut shapes = Shapes::default();
        for (template, methods) in &rest.operations {
            for (method, op) in methods {
                let bodies = op
                    .bodies()
                    .into_iter()
                    .map(|(label, schema)| (label, schema.clone()))
                    .collect();
                shapes.routes.insert(format!("{method} {template}"), bodies);
            }
        }
        for (kind, stats) in &gateway.messages {
            let mut bodies = BTreeMap::new();
            bodies.insert("payload".to_string(), stats.payload.clone());
            shapes.events.insert(kind.label(), bodies);
        }
        shapes
    }

    /// The shapes of what `store` recorded in `range` (the same inference as
    /// `routes --openapi/--asyncapi`); `progress` hears (exchanges read, exchanges stored).
    pub fn from_store(
        store: &Store,
        range: &TimeRange,
        progress: impl FnMut(u64, u64),
    ) -> Result<Shapes, StoreError> {
        let rest = Inferred::from_store(store, None, range, progress)?;
        let gateway = GatewayInferred::from_store(store, range, |_| {})?;
        Ok(Shapes::new(&rest, &gateway))
    }
}

/// One schema change at one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Which body (`response 200 application/json`, `payload`).
    pub body: String,
    /// The field's path (`d.author.id`, `[].id`; empty for the body itself).
    pub field: String,
    /// `added`, `removed`, `type_changed`, `became_optional`, `became_required`, `body_added`,
    /// `body_removed`.
    pub change: &'static str,
    /// The types before (for `type_changed`; `|`-joined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The types after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// What changed of one route or event present on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// The route (`GET /api/v9/users/@me`) or event (`receive MESSAGE_CREATE`).
    pub name: String,
    /// Its field changes.
    pub changes: Vec<FieldChange>,
}

/// The differences of one section (routes or events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SectionDiff {
    /// Only in B.
    pub added: Vec<String>,
    /// Only in A.
    pub removed: Vec<String>,
    /// In both, with schema changes.
    pub changed: Vec<Changed>,
}

/// The whole diff of B against A.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// What A is (a path, with its range).
    pub a: String,
    /// What B is.
    pub b: String,
    /// REST routes.
    pub routes: SectionDiff,
    /// Gateway messages.
    pub events: SectionDiff,
}

impl Diff {
    /// Compares B against A.
    pub fn new(a_name: String, a: &Shapes, b_name: String, b: &Shapes) -> Diff {
        Diff {
            a: a_name,
            b: b_name,
            routes: section(&a.routes, &b.routes),
            events: section(&a.events, &b.events),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        [&self.routes, &self.events]
            .iter()
            .all(|s| s.added.is_empty() && s.removed.is_empty() && s.changed.is_empty())
    }

    /// The diff as text for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "--- A: {}\n+++ B: {}", self.a, self.b);
        for (title, section) in [("routes", &self.routes), ("gateway events", &self.events)] {
            let _ = writeln!(
                out,
                "\n{title}: {} added, {} removed, {} changed",
                section.added.len(),
                section.removed.len(),
                section.changed.len()
            );
            for name in &section.added {
                let _ = writeln!(out, "  + {name}");
            }
            for name in &section.removed {
                let _ = writeln!(out, "  - {name}");
            }
            for changed in &section.changed {
                let _ = writeln!(out, "  ~ {}", changed.name);
                for change in &changed.changes {
                    let _ = writeln!(out, "      {}", change_text(change));
                }
            }
        }
        if self.is_empty() {
            out.push_str("\nno differences\n");
        }
        out
    }
}

fn change_text(change: &FieldChange) -> String {
    let field = if change.field.is_empty() {
        "(body)".to_string()
    } else {
        change.field.clone()
    };
    let what = match change.change {
        "type_changed" => format!(
            "type changed: {} -> {}",
            change.from.as_deref().unwrap_or("?"),
            change.to.as_deref().unwrap_or("?")
        ),
        "became_optional" => "became optional".into(),
        "became_required" => "became required".into(),
        "body_added" => "body added".into(),
        "body_removed" => "body removed".into(),
        other => format!(
            "field {other}{}",
            change
                .to
                .as_deref()
                .or(change.from.as_deref())
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
    };
    format!("{}: {field} {what}", change.body)
}

fn section(
    a: &BTreeMap<String, BTreeMap<String, Schema>>,
    b: &BTreeMap<String, BTreeMap<String, Schema>>,
) -> SectionDiff {
    let mut out = SectionDiff::default();
    for name in b.keys().filter(|k| !a.contains_key(*k)) {
        out.added.push(name.clone());
    }
    for name in a.keys().filter(|k| !b.contains_key(*k)) {
        out.removed.push(name.clone());
    }
    for (name, a_bodies) in a {
        let Some(b_bodies) = b.get(name) else {
            continue;
        };
        let changes = bodies_changes(a_bodies, b_bodies);
        if !changes.is_empty() {
            out.changed.push(Changed {
                name: name.clone(),
                changes,
            });
        }
    }
    out
}

fn bodies_changes(a: &BTreeMap<String, Schema>, b: &BTreeMap<String, Schema>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let labels: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for label in labels {
        let change = |change: &'static str| FieldChange {
            body: label.clone(),
            field: String::new(),
            change,
            from: None,
            to: None,
        };
        match (a.get(label), b.get(label)) {
            (Some(_), None) => out.push(change("body_removed")),
            (None, Some(_)) => out.push(change("body_added")),
            (Some(a), Some(b)) => field_changes(label, a, b, &mut out),
            (None, None) => {}
        }
    }
    out
}

/// One field of a flattened schema: its types and whether every parent object had it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldInfo {
    types: String,
    required: bool,
}

fn field_changes(label: &str, a: &Schema, b: &Schema, out: &mut Vec<FieldChange>) {
    let mut a_fields = BTreeMap::new();
    flatten(a, String::new(), true, 0, &mut a_fields);
    let mut b_fields = BTreeMap::new();
    flatten(b, String::new(), true, 0, &mut b_fields);
    let paths: BTreeSet<&String> = a_fields.keys().chain(b_fields.keys()).collect();
    for path in paths {
        let make =
            |change: &'static str, from: Option<&FieldInfo>, to: Option<&FieldInfo>| FieldChange {
                body: label.to_string(),
                field: path.clone(),
                change,
                from: from.map(|f| f.types.clone()),
                to: to.map(|f| f.types.clone()),
            };
        match (a_fields.get(path), b_fields.get(path)) {
            (None, Some(b)) => out.push(make("added", None, Some(b))),
            (Some(a), None) => out.push(make("removed", Some(a), None)),
            (Some(a), Some(b)) => {
                if a.types != b.types && !a.types.is_empty() && !b.types.is_empty() {
                    out.push(make("type_changed", Some(a), Some(b)));
                }
                if a.required && !b.required {
                    out.push(make("became_optional", None, None));
                } else if !a.required && b.required {
                    out.push(make("became_required", None, None));
                }
            }
            (None, None) => {}
        }
    }
}

/// Every field path of a schema (`a.b`, `a[].c`) with its types and whether it was required.
fn flatten(
    schema: &Schema,
    path: String,
    required: bool,
    depth: usize,
    out: &mut BTreeMap<String, FieldInfo>,
) {
    out.insert(
        path.clone(),
        FieldInfo {
            types: schema.type_names().join("|"),
            required,
        },
    );
    if depth >= MAX_DEPTH {
        return;
    }
    if let Some(object) = &schema.object {
        for (name, field) in &object.fields {
            let here = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            flatten(field, here, field.seen >= object.count, depth + 1, out);
        }
    }
    if let Some(array) = &schema.array {
        if array.items.seen > 0 {
            flatten(&array.items, format!("{path}[]"), true, depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(samples: &[&str]) -> Schema {
        let mut schema = Schema::default();
        for sample in samples {
            let mut one = Schema::default();
            one.observe_json(sample.as_bytes()).unwrap();
            schema.merge(&one);
        }
        schema
    }

    fn shapes(routes: &[(&str, &[&str])]) -> Shapes {
        let mut shapes = Shapes::default();
        for (name, samples) in routes {
            let mut bodies = BTreeMap::new();
            bodies.insert("response 200 application/json".to_string(), schema(samples));
            shapes.routes.insert(name.to_string(), bodies);
        }
        shapes
    }

    #[test]
    fn routes_and_fields_added_removed_changed() {
        let a = shapes(&[
            ("GET /a", &[r#"{"id":"1","n":1,"tags":[{"x":1}]}"#]),
            ("GET /gone", &["{}"]),
        ]);
        let b = shapes(&[
            (
                "GET /a",
                &[
                    r#"{"id":"1","n":"one","new":true,"tags":[{"x":1}]}"#,
                    r#"{"n":"two","tags":[]}"#,
                ],
            ),
            ("GET /new", &["{}"]),
        ]);
        let diff = Diff::new("a".into(), &a, "b".into(), &b);
        assert_eq!(diff.routes.added, ["GET /new"]);
        assert_eq!(diff.routes.removed, ["GET /gone"]);
        let changes: Vec<(String, &str)> = diff.routes.changed[0]
            .changes
            .iter()
            .map(|c| (c.field.clone(), c.change))
            .collect();
        assert_eq!(
            changes,
            [
                ("id".to_string(), "became_optional"),
                ("n".to_string(), "type_changed"),
                ("new".to_string(), "added"),
            ]
        );
        let text = diff.text();
        assert!(text.contains("n type changed: integer -> string"), "{text}");
        assert!(text.contains("+ GET /new") && text.contains("- GET /gone"));
        assert!(Diff::new("a".into(), &a, "a".into(), &a).is_empty());
    }
}
