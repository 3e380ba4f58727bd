//! The webhook event envelope: `{id, type, created_at, data: {object, previous_attributes}, api_version}`.
//!
//! Only `alert.*` and `enrolment.*` are typed (see `typed`); every other type
//! (`representment.*`, `scheme_notice.*`, `lookup.*`, and whatever ChargebackStop adds next) is
//! kept as raw JSON and never an error: a 4xx would make the sender retry for two days.

use serde::{Deserialize, Serialize};

pub mod typed;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The dedupe key: the same event delivered twice has the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Kept as the sender wrote it (ISO 8601); parsed where it is compared.
    pub created_at: String,
    pub data: EventData,
    #[serde(default)]
    pub api_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
    #[serde(default)]
    pub previous_attributes: Option<serde_json::Value>,
}

/// Which part of the domain an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    Alert,
    Enrolment,
    /// Any other type: stored and acknowledged, never rejected.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    #[error("event body is not JSON: {0}")]
    NotJson(String),
    #[error("event body is JSON but not an event envelope: {0}")]
    NotAnEnvelope(String),
    #[error("event envelope has an empty id")]
    EmptyId,
}

impl WebhookEvent {
    /// Parse the raw body. Fails only when the envelope itself is unusable (not JSON, no id,
    /// no type, no data.object); an unknown `type` or extra fields are fine.
    pub fn parse(raw: &[u8]) -> Result<Self, EventParseError> {
        let value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| EventParseError::NotJson(e.to_string()))?;
        let event: WebhookEvent = serde_json::from_value(value)
            .map_err(|e| EventParseError::NotAnEnvelope(e.to_string()))?;
        if event.id.trim().is_empty() {
            return Err(EventParseError::EmptyId);
        }
        Ok(event)
    }

    pub fn category(&self) -> EventCategory {
        match self.event_type.split('.').next() {
            Some("alert") => EventCategory::Alert,
            Some("enrolment") => EventCategory::Enrolment,
            _ => EventCategory::Other,
        }
    }

    /// The id of the object the event is about (`data.object.id`), when it has one. Used as the
    /// FIFO message group so that each alert's or enrolment's events stay in order.
    pub fn object_id(&self) -> Option<&str> {
        self.data
            .object
            .get("id")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_enrolment_event_from_the_guide() {
        let raw = br#"{"id":"evt_enrolmentupdated123","type":"enrolment.updated","created_at":"2026-02-17T10:30:00Z","data":{"object":{"id":"enrl_rdr123","status":"ENABLED"},"previous_attributes":{"status":"PENDING"}},"api_version":"v2"}"#;
        let event = WebhookEvent::parse(raw).unwrap();
        assert_eq!(event.id, "evt_enrolmentupdated123");
        assert_eq!(event.category(), EventCategory::Enrolment);
        assert_eq!(event.object_id(), Some("enrl_rdr123"));
        assert_eq!(event.api_version.as_deref(), Some("v2"));
        assert_eq!(
            event.data.previous_attributes.unwrap()["status"],
            serde_json::json!("PENDING")
        );
    }

    #[test]
    fn unknown_types_are_kept_not_rejected() {
        for kind in [
            "representment.created",
            "scheme_notice.updated",
            "lookup.created",
            "brand_new.thing",
        ] {
            let raw = format!(
                r#"{{"id":"evt_1","type":"{kind}","created_at":"2026-02-17T10:30:00Z","data":{{"object":{{"id":"x_1","anything":[1,2]}}}},"extra":true}}"#
            );
            let event = WebhookEvent::parse(raw.as_bytes()).unwrap();
            assert_eq!(event.category(), EventCategory::Other, "{kind}");
            assert_eq!(event.data.object["anything"], serde_json::json!([1, 2]));
            assert_eq!(event.data.previous_attributes, None);
        }
    }

    #[test]
    fn unusable_envelopes_say_why() {
        assert!(matches!(
            WebhookEvent::parse(b"not json"),
            Err(EventParseError::NotJson(_))
        ));
        assert!(matches!(
            WebhookEvent::parse(br#"{"type":"alert.created"}"#),
            Err(EventParseError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            WebhookEvent::parse(
                br#"{"id":" ","type":"alert.created","created_at":"x","data":{"object":{}}}"#
            ),
            Err(EventParseError::EmptyId)
        ));
    }

    #[test]
    fn object_id_is_absent_when_the_object_has_none() {
        let raw =
            br#"{"id":"evt_1","type":"lookup.created","created_at":"x","data":{"object":{"n":1}}}"#;
        assert_eq!(WebhookEvent::parse(raw).unwrap().object_id(), None);
    }
}
