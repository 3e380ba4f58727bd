//! The three things the Worker needs from a verified body: the event `id`, its `type` and
//! `data.object.id`, read in one pass without building the whole event.
//!
//! `shared::event::WebhookEvent::parse` (what the processor runs) decides what an envelope is;
//! this must agree with it on every input. The fast path deserialises the same shape with
//! borrowed strings and everything else skipped (each skipped value still parsed as strictly as a
//! `serde_json::Value` would be: strings validated, numbers in range, same depth limit), so when
//! it succeeds the full parse succeeds with the same values. When it fails for any reason (not
//! JSON, not an envelope, or only a repeated key, which serde's derive refuses where
//! `serde_json::Value` keeps the last), the full parse runs and its answer is returned: errors and
//! odd inputs get exactly the shared parser's result. Tests compare the two on awkward inputs, and
//! property tests (`envelope/props.rs`) on arbitrary bytes and generated envelopes.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use shared::event::{EventParseError, WebhookEvent};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    /// `data.object.id` when it is a non-empty string.
    pub object_id: Option<Cow<'a, str>>,
}

pub fn read(body: &[u8]) -> Result<Envelope<'_>, EventParseError> {
    match serde_json::from_slice::<Fast<'_>>(body) {
        Ok(fast) if !fast.id.trim().is_empty() => Ok(Envelope {
            id: fast.id,
            event_type: fast.event_type,
            object_id: fast.object_id.filter(|id| !id.is_empty()),
        }),
        // A blank id, or anything the fast path does not take: the shared parser's answer.
        _ => {
            let event = WebhookEvent::parse(body)?;
            let object_id = event.object_id().map(|id| Cow::Owned(id.to_string()));
            Ok(Envelope {
                id: Cow::Owned(event.id),
                event_type: Cow::Owned(event.event_type),
                object_id,
            })
        }
    }
}

/// `WebhookEvent`'s shape, with only what we keep: an object with `id`, `type`, `created_at`
/// (strings), `data` (an object with `object`), an optional `api_version` (string or null),
/// each once. Every other member is parsed as `serde_json::Value` would parse it ([`Skip`]) and
/// dropped; serde's derive would skip those unchecked (a lone surrogate or `1e400` in a member
/// the envelope does not name is not JSON to the shared parser). No array form: the shared
/// parser's answer is used for it.
struct Fast<'a> {
    id: Cow<'a, str>,
    event_type: Cow<'a, str>,
    object_id: Option<Cow<'a, str>>,
}

/// A member name of the envelope or of `data`, matched without allocating.
enum Key {
    Id,
    Type,
    CreatedAt,
    Data,
    ApiVersion,
    Object,
    PreviousAttributes,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "id" => Key::Id,
                    "type" => Key::Type,
                    "created_at" => Key::CreatedAt,
                    "data" => Key::Data,
                    "api_version" => Key::ApiVersion,
                    "object" => Key::Object,
                    "previous_attributes" => Key::PreviousAttributes,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Takes a member's value once; a repeated member is an error (the shared parser's answer is
/// used then: `serde_json::Value` keeps the last, which its derive then reads).
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(serde::de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de: 'a, 'a> Deserialize<'de> for Fast<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fast<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a webhook envelope")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fast<'de>, A::Error> {
                use serde::de::Error;
                let (mut id, mut event_type, mut created_at, mut data, mut api_version) =
                    (None, None, None, None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => once::<_, Text<'de>>(&mut id, &mut map, "id")?,
                        Key::Type => once::<_, Text<'de>>(&mut event_type, &mut map, "type")?,
                        Key::CreatedAt => {
                            once::<_, AnyString>(&mut created_at, &mut map, "created_at")?
                        }
                        Key::Data => once::<_, FastData<'de>>(&mut data, &mut map, "data")?,
                        Key::ApiVersion => {
                            once::<_, Option<AnyString>>(&mut api_version, &mut map, "api_version")?
                        }
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                created_at.ok_or_else(|| A::Error::missing_field("created_at"))?;
                Ok(Fast {
                    id: id.ok_or_else(|| A::Error::missing_field("id"))?.0,
                    event_type: event_type.ok_or_else(|| A::Error::missing_field("type"))?.0,
                    object_id: data.ok_or_else(|| A::Error::missing_field("data"))?.0,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// `data`: an object with `object` (any value; its `id` kept) and an optional
/// `previous_attributes`, each once; other members checked and dropped.
struct FastData<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for FastData<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FastData<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with `object`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastData<'de>, A::Error> {
                let (mut object, mut previous) = (None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Object => once::<_, ObjectId<'de>>(&mut object, &mut map, "object")?,
                        Key::PreviousAttributes => {
                            once::<_, Skip>(&mut previous, &mut map, "previous_attributes")?
                        }
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                let object: ObjectId<'de> =
                    object.ok_or_else(|| serde::de::Error::missing_field("object"))?;
                Ok(FastData(object.0))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON string, borrowed from the body when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, checked as `serde_json::Value` would check it, and dropped.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    // Strings arrive here only after serde_json validated them (UTF-8, escapes, surrogates).
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// A JSON string (validated), dropped: `created_at` and `api_version` must be strings.
struct AnyString;

impl<'de> Deserialize<'de> for AnyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, _: &str) -> Result<AnyString, E> {
                Ok(AnyString)
            }
        }
        d.deserialize_str(V)
    }
}

/// `data.object`: any JSON value; keeps its `id` when it is an object whose last `id` key holds
/// a string (as `serde_json::Value`'s map keeps the last of repeated keys).
struct ObjectId<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for ObjectId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectId<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectId<'de>, A::Error> {
                let mut id = None;
                while let Some(key) = map.next_key::<MaybeString<'de>>()? {
                    if key.0.as_deref() == Some("id") {
                        id = map.next_value::<MaybeString<'de>>()?.0;
                    } else {
                        map.next_value::<Skip>()?;
                    }
                }
                Ok(ObjectId(id))
            }
            fn visit_bool<E>(self, _: bool) -> Result<ObjectId<'de>, E> {
                Ok(ObjectId(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<ObjectId<'de>, E> {
                Ok(ObjectId(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<ObjectId<'de>, E> {
                Ok(ObjectId(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<ObjectId<'de>, E> {
                Ok(ObjectId(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<ObjectId<'de>, E> {
                Ok(ObjectId(None))
            }
            fn visit_unit<E>(self) -> Result<ObjectId<'de>, E> {
                Ok(ObjectId(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ObjectId<'de>, A::Error> {
                SkipVisitor.visit_seq(seq).map(|_| ObjectId(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any JSON value; `Some` when it is a string.
struct MaybeString<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeString<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString<'de>, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeString<'de>, A::Error> {
                SkipVisitor.visit_seq(seq).map(|_| MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeString<'de>, A::Error> {
                SkipVisitor.visit_map(map).map(|_| MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    /// What the shared parser says, in the same terms.
    pub(super) fn reference(body: &[u8]) -> Result<(String, String, Option<String>), String> {
        match WebhookEvent::parse(body) {
            Ok(e) => Ok((
                e.id.clone(),
                e.event_type.clone(),
                e.object_id().map(String::from),
            )),
            Err(EventParseError::NotJson(_)) => Err("not_json".into()),
            Err(EventParseError::NotAnEnvelope(_)) => Err("not_an_envelope".into()),
            Err(EventParseError::EmptyId) => Err("empty_id".into()),
        }
    }

    pub(super) fn ours(body: &[u8]) -> Result<(String, String, Option<String>), String> {
        match read(body) {
            Ok(e) => Ok((
                e.id.into(),
                e.event_type.into(),
                e.object_id.map(Into::into),
            )),
            Err(EventParseError::NotJson(_)) => Err("not_json".into()),
            Err(EventParseError::NotAnEnvelope(_)) => Err("not_an_envelope".into()),
            Err(EventParseError::EmptyId) => Err("empty_id".into()),
        }
    }

    #[test]
    fn agrees_with_the_shared_parser_on_awkward_inputs() {
        let big = format!(
            r#"{{"id":"evt_big","type":"alert.created","created_at":"x","data":{{"object":{{"id":"netalrt_1","description":"{}"}}}}}}"#,
            "a".repeat(20_000)
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep_object = format!(
            r#"{{"id":"e","type":"t","created_at":"x","data":{{"object":{}1{}}}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        let cases: Vec<Vec<u8>> = [
            r#"{"id":"evt_1","type":"alert.created","created_at":"2026-02-17T10:30:00Z","data":{"object":{"id":"netalrt_9"}},"api_version":"v1"}"#,
            r#"{"id":"evt_1","type":"alert.created","created_at":"x","data":{"object":{"id":"netalrt_9"},"previous_attributes":{"status":"A"}}}"#,
            r#"{"id":"evt_1","type":"lookup.created","created_at":"x","data":{"object":{"n":1}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":null}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":[{"id":"no"}]}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"id":5}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"id":""}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"id":"a","id":"b"}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"id":"a","id":7}}}"#,
            r#"{"id":"evt_1","id":"evt_2","type":"t","created_at":"x","data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{},"object":{"id":"o2"}}}"#,
            r#"{"\u0069d":"evt_esc","type":"a\"b","created_at":"x","data":{"object":{"i\u0064":"o\u00e9"}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"s":"\ud800"}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"s":"\ud83d\ude00"}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"n":1e400}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"n":-12.5e-3}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":5,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}},"api_version":2}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}},"api_version":null}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{},"previous_attributes":null}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x"}"#,
            r#"{"id":" ","type":"t","created_at":"x","data":{"object":{}}}"#,
            r#"{"id":"","type":"t","created_at":"x","data":{"object":{}}}"#,
            r#"{"id":7,"type":"t","created_at":"x","data":{"object":{}}}"#,
            r#"{"type":"alert.created"}"#,
            r#"["evt_1","t","x",{"object":{"id":"o"}}]"#,
            r#"["evt_1","t","x",[{"id":"o"}],"v1"]"#,
            r#"["evt_1","t","x",[{"id":"o"}],"v1",1]"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}}} trailing"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}}}   "#,
            r#"{"id":5, oops"#,
            // Members the envelope does not name, holding what `serde_json::Value` refuses.
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}},"zz":"\udc00"}"#,
            r#"{"id":"","type":"t","created_at":"x","data":{"object":{}},"zz":"\udc00"}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{},"zz":"\ud800"}}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}},"zz":1e400}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{}},"zz":[1e400]}"#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"zz":{"a":-1e999},"object":{}}}"#,
            r#"{"id":"","type":"t","created_at":"x","data":{"object":{}}} x"#,
            r#"{"id":" ","type":"t","created_at":"x","data":[{"id":"o"}],"zz":["\udc00x"]}"#,
            r#"["evt_1","t","x",[{"id":"o"}],"v1"] "#,
            r#"{"id":"evt_1","type":"t","created_at":"x","data":{"object":{"a":tru}}}"#,
            "not json",
            "",
            "null",
            "[]",
            "\"evt\"",
            "{}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            big.into_bytes(),
            deep.into_bytes(),
            deep_object.into_bytes(),
            b"{\"id\":\"evt_1\",\"type\":\"t\",\"created_at\":\"x\",\"data\":{\"object\":{\"s\":\"\xff\"}}}".to_vec(),
            b"{\"id\":\"evt_1\",\"type\":\"t\",\"created_at\":\"x\",\"data\":{\"object\":{\"s\":\"a\x01b\"}}}".to_vec(),
        ])
        .collect();
        let disagreements: Vec<String> = cases
            .iter()
            .filter(|body| ours(body) != reference(body))
            .map(|body| {
                format!(
                    "{}: ours {:?}, shared {:?}",
                    String::from_utf8_lossy(body),
                    ours(body),
                    reference(body)
                )
            })
            .collect();
        assert!(disagreements.is_empty(), "{disagreements:#?}");
    }

    #[test]
    fn a_plain_envelope_borrows_from_the_body() {
        let body = br#"{"id":"evt_1","type":"alert.created","created_at":"x","data":{"object":{"id":"netalrt_9"}}}"#;
        let e = read(body).unwrap();
        assert!(matches!(e.id, Cow::Borrowed("evt_1")));
        assert!(matches!(e.object_id, Some(Cow::Borrowed("netalrt_9"))));
    }
}
