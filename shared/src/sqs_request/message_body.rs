//! The bytes of a `SendMessage` body, and whether SQS accepts a text as a message body: both read
//! every byte of the webhook the Worker forwards (16 KiB typically), so both skip eight bytes at a
//! time while nothing in them needs attention.
//!
//! Profiled in workerd (`perf` with V8's perf map, a 16 KiB delivery): the byte-at-a-time SQS
//! character check was about 4 % of the Worker's CPU per delivery and serde_json's string escaping
//! 2 %. Both are written here by hand because no crate does either eight bytes at a time in wasm
//! without SIMD; serde_json stays the reference: the tests require the same bytes as its
//! serialisation of the same input, and the same verdict as the per-character definition.

use super::OutgoingMessage;

/// The JSON input of `SendMessage`: `QueueUrl`, `MessageBody`, `MessageAttributes` (only those with
/// a value; left out when none has one), `MessageDeduplicationId` and `MessageGroupId` when set, in
/// that order, byte for byte what serde_json writes for that struct (the tests compare the two). A
/// fixed order, so the signed bytes never depend on a map's order.
pub fn send_message_body(queue_url: &str, message: &OutgoingMessage) -> Vec<u8> {
    // Sized once for the body (the bulk of it) with room for escapes and a few attributes; a
    // larger message only grows the buffer.
    let mut out = Vec::with_capacity(queue_url.len() + message.body.len() * 9 / 8 + 1024);
    out.extend_from_slice(b"{\"QueueUrl\":");
    push_json_string(&mut out, queue_url);
    out.extend_from_slice(b",\"MessageBody\":");
    push_json_string(&mut out, &message.body);
    let mut first = true;
    for (name, value) in message.attributes.iter().filter(|(_, v)| !v.is_empty()) {
        out.extend_from_slice(if first {
            b",\"MessageAttributes\":{"
        } else {
            b","
        });
        first = false;
        push_json_string(&mut out, name);
        out.extend_from_slice(b":{\"DataType\":\"String\",\"StringValue\":");
        push_json_string(&mut out, value);
        out.push(b'}');
    }
    if !first {
        out.push(b'}');
    }
    if let Some(id) = &message.deduplication_id {
        out.extend_from_slice(b",\"MessageDeduplicationId\":");
        push_json_string(&mut out, id);
    }
    if let Some(id) = &message.group_id {
        out.extend_from_slice(b",\"MessageGroupId\":");
        push_json_string(&mut out, id);
    }
    out.push(b'}');
    out
}

/// Whether SQS accepts every character of `text` as a message body: `#x9 | #xA | #xD | #x20 to
/// #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF`. In UTF-8 the only characters outside that set
/// are the C0 controls other than tab, LF and CR (one byte each) and U+FFFE/U+FFFF (EF BF BE/BF;
/// EF is only ever a lead byte, and surrogates never appear in a `str`). A word of eight bytes with
/// no byte below 0x20 and no EF holds none of them and is skipped whole; any other word is read a
/// byte at a time.
pub fn sqs_accepts(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = word_at(bytes, i) {
            if !has_byte_below_0x20(word) && !has_byte(word, 0xef) {
                i += 8;
                continue;
            }
        }
        for at in i..(i + 8).min(bytes.len()) {
            match bytes[at] {
                b'\t' | b'\n' | b'\r' => {}
                0..=0x1f => return false,
                0xef if bytes.get(at + 1) == Some(&0xbf)
                    && matches!(bytes.get(at + 2), Some(0xbe | 0xbf)) =>
                {
                    return false
                }
                _ => {}
            }
        }
        i += 8;
    }
    true
}

/// `text` as a JSON string, escaped as serde_json escapes it: `"` and `\` with a backslash, the
/// C0 controls as `\b \t \n \f \r` or `\u00xx` (lowercase hex), everything else as it is. Runs
/// needing no escape are copied whole, found eight bytes at a time.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = word_at(bytes, i) {
            if !has_byte_below_0x20(word) && !has_byte(word, b'"') && !has_byte(word, b'\\') {
                i += 8;
                continue;
            }
        }
        for at in i..(i + 8).min(bytes.len()) {
            let byte = bytes[at];
            let short = match byte {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                0..=0x1f => b'u',
                _ => continue,
            };
            out.extend_from_slice(&bytes[copied..at]);
            copied = at + 1;
            out.push(b'\\');
            out.push(short);
            if short == b'u' {
                out.extend_from_slice(b"00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        i += 8;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The eight bytes from `at`, when there are eight.
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let word: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(word))
}

/// Whether any byte of `word` is below 0x20. Exact: a borrow only carries out of a byte that is
/// itself below 0x20, and bytes of 0x80 and up are masked out by `!word`.
fn has_byte_below_0x20(word: u64) -> bool {
    word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0
}

/// Whether any byte of `word` is `byte`: a zero byte of `word ^ byte..byte`, exact in the same way.
fn has_byte(word: u64, byte: u8) -> bool {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    /// serde_json's serialisation of the same input: what `send_message_body` wrote before it
    /// skipped eight bytes at a time, and must still write.
    fn reference(queue_url: &str, message: &OutgoingMessage) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct SendMessageInput<'a> {
            queue_url: &'a str,
            message_body: &'a str,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            message_attributes: BTreeMap<&'a str, StringAttribute<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message_deduplication_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message_group_id: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct StringAttribute<'a> {
            #[serde(rename = "DataType")]
            data_type: &'static str,
            #[serde(rename = "StringValue")]
            string_value: &'a str,
        }
        let message_attributes = message
            .attributes
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                let value = StringAttribute {
                    data_type: "String",
                    string_value: v,
                };
                (k.as_str(), value)
            })
            .collect();
        serde_json::to_vec(&SendMessageInput {
            queue_url,
            message_body: &message.body,
            message_attributes,
            message_deduplication_id: message.deduplication_id.as_deref(),
            message_group_id: message.group_id.as_deref(),
        })
        .unwrap()
    }

    /// The characters SQS accepts in a message body, one at a time.
    fn sqs_allows(c: char) -> bool {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    }

    /// Mostly plain text, with the characters either scan stops at (controls, `"`, `\`, DEL, EF-led
    /// U+Fxxx, U+FFFE/U+FFFF) and anything else among it, so they land at every offset of a word.
    fn awkward_text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            6 => proptest::char::range('a', 'z'),
            1 => proptest::char::range('\u{0}', '\u{22}'),
            1 => prop_oneof![Just('\\'), Just('\u{7f}'), Just('/')],
            1 => proptest::char::range('\u{fff0}', '\u{ffff}'),
            1 => proptest::char::range('\u{f000}', '\u{f0ff}'),
            1 => any::<char>(),
        ];
        proptest::collection::vec(c, 0..48).prop_map(|chars| chars.into_iter().collect())
    }

    fn message_of(body: String, attributes: Vec<(String, String)>, ids: bool) -> OutgoingMessage {
        OutgoingMessage {
            deduplication_id: ids.then(|| format!("d{body}")),
            group_id: ids.then(|| format!("g{body}")),
            body,
            attributes: attributes.into_iter().collect(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn the_body_is_serde_jsons_byte_for_byte(
            url in awkward_text(),
            body in awkward_text(),
            attributes in proptest::collection::vec((awkward_text(), awkward_text()), 0..4),
            ids in any::<bool>(),
        ) {
            let message = message_of(body, attributes, ids);
            let ours = send_message_body(&url, &message);
            let theirs = reference(&url, &message);
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }

        #[test]
        fn the_sqs_check_agrees_with_the_character_set(text in awkward_text()) {
            prop_assert_eq!(sqs_accepts(&text), text.chars().all(sqs_allows), "{:?}", text);
        }

        #[test]
        fn the_word_tests_are_exact(bytes in any::<[u8; 8]>(), byte in any::<u8>()) {
            let word = u64::from_le_bytes(bytes);
            prop_assert_eq!(has_byte_below_0x20(word), bytes.iter().any(|&b| b < 0x20));
            prop_assert_eq!(has_byte(word, byte), bytes.contains(&byte));
        }
    }

    /// Every character alone and between others: the scan says what the per-character definition
    /// says, and every one is escaped as serde_json escapes it.
    #[test]
    fn every_character_alone_and_framed() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            let alone = c.encode_utf8(&mut buf);
            assert_eq!(sqs_accepts(alone), sqs_allows(c), "{c:?}");
            let framed = format!("a\u{fffd}{c}\u{efbf}z{c}");
            assert_eq!(
                sqs_accepts(&framed),
                framed.chars().all(sqs_allows),
                "{c:?}"
            );
            if c < '\u{100}' {
                let mut ours = Vec::new();
                push_json_string(&mut ours, &framed);
                assert_eq!(ours, serde_json::to_vec(&framed).unwrap(), "{c:?}");
            }
        }
        assert!(sqs_accepts(""));
        assert!(!sqs_accepts("ok\u{ffff}"));
        assert!(!sqs_accepts("ok\u{fffe}ok"));
        assert!(sqs_accepts("\u{fffd}\u{ffbf}\u{10ffff}\t\r\n"));
    }

    /// A refused or escaped character at each offset of a text longer than a few words.
    #[test]
    fn one_character_at_each_offset_of_a_long_text() {
        let clean = "x".repeat(40);
        let at_each = |c: &str| -> Vec<String> {
            (0..=clean.len())
                .map(|at| format!("{}{c}{}", &clean[..at], &clean[at..]))
                .collect()
        };
        for refused in ["\u{0}", "\u{1f}", "\u{fffe}", "\u{ffff}"] {
            assert!(
                at_each(refused).iter().all(|t| !sqs_accepts(t)),
                "{refused:?}"
            );
        }
        for accepted in ["\t", "\n", "\r", "\u{fffd}", "\u{efbf}", "\u{10ffff}", "\""] {
            assert!(
                at_each(accepted).iter().all(|t| sqs_accepts(t)),
                "{accepted:?}"
            );
        }
        for escaped in ["\"", "\\", "\u{0}", "\u{1f}", "\n", "\u{7f}", "\u{ffff}"] {
            for text in at_each(escaped) {
                let mut ours = Vec::new();
                push_json_string(&mut ours, &text);
                assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
            }
        }
    }
}
