use super::*;
use proptest::prelude::*;
use serde_json::json;

fn infer(samples: &[Value]) -> Value {
    let mut schema = Schema::default();
    for sample in samples {
        schema.observe_json(sample.to_string().as_bytes()).unwrap();
    }
    schema.to_json_schema()
}

#[test]
fn required_optional_nullable_and_unions() {
    let schema = infer(&[
        json!({"id": "80351110224678912", "name": "a", "bio": null, "n": 1}),
        json!({"id": "80351110224678913", "name": "b", "bio": "hi", "n": "x"}),
        json!({"id": "80351110224678914", "name": "c", "n": 2.5, "extra": true}),
    ]);
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["id", "n", "name"]));
    assert_eq!(
        schema["properties"]["bio"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(
        schema["properties"]["n"]["type"],
        json!(["string", "number"])
    );
    assert_eq!(schema["properties"]["extra"]["type"], "boolean");
    assert_eq!(schema["properties"]["id"]["format"], "snowflake");
}

#[test]
fn small_value_sets_become_enums_and_large_ones_do_not() {
    let mut samples: Vec<Value> = ["online", "idle", "online", "dnd", "idle"]
        .iter()
        .map(|s| json!({"status": s, "type": 1, "content": format!("message {s}")}))
        .collect();
    samples.push(json!({"status": "online", "type": 2, "content": "other"}));
    let schema = infer(&samples);
    assert_eq!(
        schema["properties"]["status"]["enum"],
        json!(["dnd", "idle", "online"])
    );
    assert_eq!(schema["properties"]["type"]["enum"], json!([1, 2]));
    let many: Vec<Value> = (0..40)
        .map(|i| json!({"k": format!("v{}", i % 20)}))
        .collect();
    assert!(infer(&many)["properties"]["k"].get("enum").is_none());
}

#[test]
fn formats_arrays_and_nesting() {
    let schema = infer(&[
        json!({"at": "2024-01-02T03:04:05.123000+00:00", "list": [{"id": "1300000000000000001", "roles": ["1", "2"]}]}),
        json!({"at": "2024-05-06T07:08:09Z", "list": [{"id": "1300000000000000002", "roles": [], "x": 1}, {"id": "1300000000000000003"}]}),
    ]);
    assert_eq!(schema["properties"]["at"]["format"], "date-time");
    let items = &schema["properties"]["list"]["items"];
    assert_eq!(items["required"], json!(["id"]));
    assert_eq!(items["properties"]["roles"]["items"]["type"], "string");
    assert_eq!(items["properties"]["id"]["format"], "snowflake");
}

#[test]
fn redacted_values_never_become_enum_members() {
    let token = format!("{MARK} sha256:0011aabb]");
    let schema = infer(&[
        json!({"token": token}),
        json!({"token": token}),
        json!({"token": token}),
    ]);
    assert!(!schema.to_string().contains("redacted"));
    assert!(schema["properties"]["token"].get("enum").is_none());
}

#[test]
fn depth_and_width_are_bounded() {
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ "a": deep });
    }
    let mut schema = Schema::default();
    schema.observe_value(&deep);
    let text = schema.to_json_schema().to_string();
    assert!(text.matches("properties").count() <= MAX_DEPTH + 1);
    let wide: Map<String, Value> = (0..1000).map(|i| (format!("f{i}"), json!(i))).collect();
    let mut schema = Schema::default();
    schema.observe_value(&Value::Object(wide));
    let object = schema.object.as_ref().unwrap();
    assert_eq!(object.fields.len(), MAX_FIELDS);
    assert!(object.truncated);
}

#[test]
fn bad_json_is_an_error_not_a_panic() {
    let mut schema = Schema::default();
    assert!(schema.observe_json(b"{\"a\": ").is_err());
    assert!(schema.observe_json(b"[1] trailing").is_err());
}

#[test]
fn datetime_and_snowflake_shapes() {
    assert!(is_datetime("2021-06-01T00:00:00+00:00"));
    assert!(is_datetime("2021-06-01T00:00:00.5Z"));
    assert!(!is_datetime("2021-06-01"));
    assert!(!is_datetime("2021-06-01T00:00:00.Z"));
    assert!(is_snowflake("80351110224678912"));
    assert!(!is_snowflake("1234"));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..5).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec!["a", "b", "80351110224678912", "2024-01-02T03:04:05Z"])
            .prop_map(|s| json!(s)),
        "[a-z]{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-e]", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn merging_is_order_independent(
        samples in prop::collection::vec(json_value(), 1..12),
        split in 0usize..12,
        seed in any::<u64>(),
    ) {
        let mut forward = Schema::default();
        for s in &samples {
            forward.observe_value(s);
        }
        // Another order.
        let mut shuffled = samples.clone();
        let n = shuffled.len();
        for i in 0..n {
            shuffled.swap(i, (seed as usize).wrapping_add(i * 7) % n);
        }
        let mut other = Schema::default();
        for s in shuffled.iter().rev() {
            other.observe_value(s);
        }
        prop_assert_eq!(&forward, &other);
        // Two halves summarised apart, then merged either way round.
        let split = split.min(n);
        let (mut left, mut right) = (Schema::default(), Schema::default());
        for s in &samples[..split] {
            left.observe_value(s);
        }
        for s in &samples[split..] {
            right.observe_value(s);
        }
        let mut lr = left.clone();
        lr.merge(&right);
        let mut rl = right.clone();
        rl.merge(&left);
        prop_assert_eq!(&lr, &forward);
        prop_assert_eq!(&rl, &forward);
        prop_assert_eq!(lr.to_json_schema(), forward.to_json_schema());
    }
}
