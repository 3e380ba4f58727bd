//! Property tests for the webhook event envelope (`shared::event`): whatever a signed body holds,
//! reading it never panics, and an event of a type this version does not know is kept as it came
//! (raw JSON), never refused: a 4xx or a dead letter for it would lose a real event.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use shared::event::typed::TypedEvent;
use shared::event::{EventCategory, WebhookEvent};

/// Any JSON value, nested a few levels, with keys that sometimes are the envelope's own.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            Just("id".to_string()),
            Just("type".to_string()),
            Just("created_at".to_string()),
            Just("data".to_string()),
            Just("object".to_string()),
            Just("previous_attributes".to_string()),
            Just("status".to_string()),
            any::<String>(),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A type whose first segment is neither `alert` nor `enrolment`.
fn unknown_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("representment.created".to_string()),
        Just("scheme_notice.updated".to_string()),
        Just("lookup.created".to_string()),
        Just("fraud_notification.created".to_string()),
        "[a-z_]{1,20}(\\.[a-z_]{1,12}){0,2}",
        any::<String>(),
    ]
    .prop_filter("a known category", |t| {
        !matches!(t.split('.').next(), Some("alert" | "enrolment"))
    })
}

fn reread(value: &Value) -> Value {
    serde_json::from_slice(&serde_json::to_vec(value).unwrap()).unwrap()
}

/// Everything a caller does with a parsed event, so a panic anywhere in it shows.
fn read_all(event: &WebhookEvent) {
    let _ = event.category();
    let _ = event.object_id();
    let _ = event.typed();
    let _ = event.previous_status();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(event) = WebhookEvent::parse(&raw) {
            read_all(&event);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let raw = serde_json::to_vec(&value).unwrap();
        if let Ok(event) = WebhookEvent::parse(&raw) {
            prop_assert!(!event.id.trim().is_empty());
            read_all(&event);
        }
    }

    /// Known categories with arbitrary objects: an error is allowed (it goes to the DLQ with its
    /// reason), a panic is not.
    #[test]
    fn alert_and_enrolment_events_with_arbitrary_objects_never_panic(
        kind in prop_oneof![Just("alert"), Just("enrolment")],
        suffix in prop_oneof![Just("created".to_string()), Just("updated".to_string()), any::<String>()],
        object in any_json(),
        previous in any_json(),
    ) {
        let raw = serde_json::to_vec(&json!({
            "id": "evt_p",
            "type": format!("{kind}.{suffix}"),
            "created_at": "2026-02-17T10:30:00Z",
            "data": {"object": object, "previous_attributes": previous},
        }))
        .unwrap();
        let event = WebhookEvent::parse(&raw).unwrap();
        read_all(&event);
    }

    #[test]
    fn unknown_types_are_kept_raw(
        id in "[A-Za-z0-9_]{1,40}",
        event_type in unknown_type(),
        object in any_json(),
        previous in proptest::option::of(any_json()),
        extra in any_json(),
        api_version in proptest::option::of("v[0-9]"),
    ) {
        let mut data = Map::new();
        data.insert("object".into(), object.clone());
        if let Some(previous) = &previous {
            data.insert("previous_attributes".into(), previous.clone());
        }
        let mut envelope = Map::new();
        envelope.insert("id".into(), json!(id));
        envelope.insert("type".into(), json!(event_type));
        envelope.insert("created_at".into(), json!("2026-02-17T10:30:00Z"));
        envelope.insert("data".into(), Value::Object(data));
        if let Some(v) = &api_version {
            envelope.insert("api_version".into(), json!(v));
        }
        // A field this version does not know, as a later API version might add.
        envelope.insert("added_later".into(), extra);
        let raw = serde_json::to_vec(&Value::Object(envelope)).unwrap();

        let event = WebhookEvent::parse(&raw).unwrap();
        prop_assert_eq!(&event.id, &id);
        prop_assert_eq!(&event.event_type, &event_type);
        prop_assert_eq!(event.category(), EventCategory::Other);
        prop_assert_eq!(event.typed(), Ok(TypedEvent::Other));
        // Compared with the same JSON text read on its own: serde_json (without its
        // `float_roundtrip` feature) may read a subnormal float's last digit differently from
        // the f64 it was written from; the event must hold what that text says, nothing else.
        prop_assert_eq!(&event.data.object, &reread(&object));
        // `previous_attributes: null` and an absent one read the same.
        prop_assert_eq!(
            event.data.previous_attributes,
            previous.filter(|p| !p.is_null()).map(|p| reread(&p))
        );
        prop_assert_eq!(event.api_version, api_version);
    }

    #[test]
    fn an_envelope_without_a_usable_id_is_an_error_not_a_panic(
        id in prop_oneof![Just(Value::Null), Just(json!("")), Just(json!("   ")), any_json()],
        event_type in unknown_type(),
    ) {
        let raw = serde_json::to_vec(&json!({
            "id": id,
            "type": event_type,
            "created_at": "x",
            "data": {"object": {}},
        }))
        .unwrap();
        match WebhookEvent::parse(&raw) {
            Ok(event) => prop_assert!(id.as_str().is_some_and(|s| !s.trim().is_empty()) && event.id == id.as_str().unwrap()),
            Err(_) => prop_assert!(!id.as_str().is_some_and(|s| !s.trim().is_empty())),
        }
    }
}
