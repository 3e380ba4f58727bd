//! Properties: the Worker's envelope reader gives the shared parser's answer (same id, type and
//! object id, or the same kind of error) on arbitrary bytes, on mutated envelopes and on
//! generated envelopes written as JSON text: members in any order, missing or repeated, keys and
//! values spelled with escapes, unicode, lone surrogates, out-of-range numbers, extra members,
//! `data.object.id` of every JSON type.

use super::tests::{ours, reference};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Every character as a `\uXXXX` escape (surrogate pairs past the BMP).
fn escape_all(s: &str) -> String {
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

/// A JSON string literal, as text.
fn string_lit() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-z_0-9.]{0,12}".prop_map(|s| format!("\"{s}\"")),
        2 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => any::<String>().prop_map(|s| escape_all(&s)),
        1 => Just("\"\"".to_string()),
        1 => Just("\" \"".to_string()),
        1 => Just(r#""a\"b\\c\/d\n\t""#.to_string()),
        1 => Just(r#""\ud83d\ude00""#.to_string()),
        1 => Just("\"\u{e9}\u{1F600}\"".to_string()),
    ]
    .boxed()
}

/// A token `serde_json::Value` refuses where a value goes: lone surrogates, a raw control
/// character in a string, numbers out of range or misspelt, bare words.
fn not_a_value() -> BoxedStrategy<String> {
    prop::sample::select(vec![
        r#""\ud800""#,
        r#""\udc00x""#,
        "\"tab\there\"",
        "\"\\x\"",
        "1e400",
        "-1e999",
        "01",
        "1.",
        "tru",
        "NaN",
        "'single'",
    ])
    .prop_map(String::from)
    .boxed()
}

/// A scalar JSON value (or, rarely, a token that is not one), as text.
fn scalar() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just("null".to_string()),
        6 => any::<bool>().prop_map(|b| b.to_string()),
        12 => any::<i64>().prop_map(|n| n.to_string()),
        6 => any::<u64>().prop_map(|n| n.to_string()),
        6 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        3 => prop::sample::select(vec!["-0", "0.5e-3", "-1E+2", "1e308"]).prop_map(String::from),
        40 => string_lit(),
        1 => not_a_value(),
    ]
    .boxed()
}

/// A key: one the envelope knows (plain or escaped) or any other.
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"id\"",
            "\"type\"",
            "\"created_at\"",
            "\"data\"",
            "\"object\"",
            "\"api_version\"",
            "\"previous_attributes\"",
            r#""\u0069d""#,
            r#""i\u0064""#,
            r#""\u0074ype""#,
            r#""ID""#,
            r#""id ""#,
        ])
        .prop_map(String::from),
        string_lit(),
    ]
    .boxed()
}

fn object(members: Vec<(String, String)>, sep: &str) -> String {
    let inner: Vec<String> = members
        .into_iter()
        .map(|(k, v)| format!("{k}{sep}:{sep}{v}"))
        .collect();
    format!("{{{}}}", inner.join(&format!(",{sep}")))
}

/// Any JSON value (nested arrays and objects, repeated keys allowed), as text.
fn value() -> BoxedStrategy<String> {
    scalar()
        .prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(|items| format!("[{}]", items.join(","))),
                vec((key(), inner), 0..5).prop_map(|m| object(m, "")),
            ]
        })
        .boxed()
}

/// Members, some of them repeated with another value, in a random order.
fn shuffled(
    members: Vec<(String, String)>,
    repeats: Vec<(prop::sample::Index, String)>,
) -> impl Strategy<Value = Vec<(String, String)>> {
    let mut all = members;
    if !all.is_empty() {
        for (which, value) in repeats {
            let key = all[which.index(all.len())].0.clone();
            all.push((key, value));
        }
    }
    Just(all).prop_shuffle()
}

/// `data.object`: mostly an object with an `id` of any shape.
fn data_object() -> BoxedStrategy<String> {
    let id = prop_oneof![4 => string_lit(), 1 => value()];
    let object = (
        option::weighted(0.85, id),
        vec((key(), value()), 0..4),
        vec((any::<prop::sample::Index>(), value()), 0..2),
    )
        .prop_flat_map(|(id, extra, repeats)| {
            let mut members: Vec<(String, String)> =
                id.map(|v| ("\"id\"".to_string(), v)).into_iter().collect();
            members.extend(extra);
            shuffled(members, repeats)
        })
        .prop_map(|m| object(m, ""));
    prop_oneof![6 => object, 1 => value()].boxed()
}

fn data() -> BoxedStrategy<String> {
    let members = (
        option::weighted(0.9, data_object()),
        option::weighted(0.3, value()),
        vec((key(), value()), 0..3),
        vec((any::<prop::sample::Index>(), value()), 0..2),
    )
        .prop_flat_map(|(object, previous, extra, repeats)| {
            let mut members = Vec::new();
            if let Some(o) = object {
                members.push(("\"object\"".to_string(), o));
            }
            if let Some(p) = previous {
                members.push(("\"previous_attributes\"".to_string(), p));
            }
            members.extend(extra);
            shuffled(members, repeats)
        })
        .prop_map(|m| object(m, ""));
    prop_oneof![8 => members, 1 => value()].boxed()
}

/// A webhook envelope as JSON text, most of the time a valid one.
fn envelope() -> BoxedStrategy<String> {
    let field = |p: f64| option::weighted(p, prop_oneof![5 => string_lit(), 1 => value()]);
    (
        (field(0.95), field(0.95), field(0.95)),
        option::weighted(0.95, data()),
        option::weighted(0.3, prop_oneof![string_lit(), value()]),
        vec((key(), value()), 0..3),
        vec((any::<prop::sample::Index>(), value()), 0..2),
        prop::sample::select(vec!["", " ", "\n\t", "\r\n  "]),
    )
        .prop_flat_map(
            |((id, kind, created), data, api_version, extra, repeats, sep)| {
                let mut members = Vec::new();
                for (k, v) in [
                    ("\"id\"", id),
                    ("\"type\"", kind),
                    ("\"created_at\"", created),
                    ("\"data\"", data),
                    ("\"api_version\"", api_version),
                ] {
                    if let Some(v) = v {
                        members.push((k.to_string(), v));
                    }
                }
                members.extend(extra);
                (shuffled(members, repeats), Just(sep))
            },
        )
        .prop_map(|(members, sep)| format!("{sep}{}{sep}", object(members, sep)))
        .boxed()
}

fn agree(body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        ours(body),
        reference(body),
        "{}",
        String::from_utf8_lossy(body)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_on_arbitrary_bytes(body in vec(any::<u8>(), 0..300)) {
        agree(&body)?;
    }

    #[test]
    fn agrees_on_generated_envelopes(text in envelope()) {
        agree(text.as_bytes())?;
    }

    /// A generated envelope with one byte changed, cut short, or with bytes spliced in.
    #[test]
    fn agrees_on_mutated_envelopes(
        text in envelope(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0..3u8,
    ) {
        let mut body = text.into_bytes();
        if !body.is_empty() {
            let i = at.index(body.len());
            match how {
                0 => body[i] ^= byte.max(1),
                1 => body.truncate(i),
                _ => body.splice(i..i, [byte, b'"', b'\\']).for_each(drop),
            }
        }
        agree(&body)?;
    }
}

/// The generator does produce what the properties are about: readable envelopes with an
/// object id, repeated keys, escapes, and refusals of both kinds.
#[test]
fn the_generated_envelopes_cover_valid_and_invalid_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = envelope();
    let (mut with_object, mut not_json, mut not_envelope, mut escaped) = (0, 0, 0, 0);
    for _ in 0..2000 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        escaped += usize::from(text.contains("\\u"));
        match reference(text.as_bytes()) {
            Ok((_, _, Some(_))) => with_object += 1,
            Ok(_) => {}
            Err(kind) if kind == "not_json" => not_json += 1,
            Err(_) => not_envelope += 1,
        }
    }
    for (what, n) in [
        ("envelopes with an object id", with_object),
        ("not JSON", not_json),
        ("not an envelope", not_envelope),
        ("escaped text", escaped),
    ] {
        assert!(n >= 50, "{what}: only {n} of 2000");
    }
}
