//! Typed views of `alert.*` and `enrolment.*` events over the models.
//!
//! `data.object` of an alert event matches the Alerts API response shape and that of an
//! enrolment event the v2 Enrolments response shape. If such an object does not parse, that is
//! an error the processor sends to the DLQ (something is wrong with it and a person should
//! look). Every other event type is `TypedEvent::Other` and never an error.

use crate::event::{EventCategory, WebhookEvent};
use crate::models::{Alert, Enrolment};

/// What happened to the object: the part of the type after the dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    /// A suffix this version does not know (e.g. `alert.deleted`), kept verbatim.
    Other(String),
}

impl EventKind {
    fn from_type(event_type: &str) -> Self {
        match event_type.split_once('.').map(|(_, kind)| kind) {
            Some("created") => Self::Created,
            Some("updated") => Self::Updated,
            Some(other) => Self::Other(other.to_owned()),
            None => Self::Other(String::new()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypedEvent {
    Alert {
        kind: EventKind,
        alert: Alert,
    },
    Enrolment {
        kind: EventKind,
        enrolment: Enrolment,
    },
    /// `representment.*`, `scheme_notice.*`, `lookup.*`, ...: kept as raw JSON on the envelope.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedEventError {
    #[error("event {event_id} ({event_type}): data.object is not an alert: {reason}")]
    InvalidAlert {
        event_id: String,
        event_type: String,
        reason: String,
    },
    #[error("event {event_id} ({event_type}): data.object is not an enrolment: {reason}")]
    InvalidEnrolment {
        event_id: String,
        event_type: String,
        reason: String,
    },
}

impl WebhookEvent {
    /// The typed view of this event. Fails only for an `alert.*` or `enrolment.*` event whose
    /// object does not match the model; the error names the event and the failing field.
    pub fn typed(&self) -> Result<TypedEvent, TypedEventError> {
        let kind = EventKind::from_type(&self.event_type);
        match self.category() {
            EventCategory::Alert => serde_json::from_value::<Alert>(self.data.object.clone())
                .map(|alert| TypedEvent::Alert { kind, alert })
                .map_err(|e| TypedEventError::InvalidAlert {
                    event_id: self.id.clone(),
                    event_type: self.event_type.clone(),
                    reason: e.to_string(),
                }),
            EventCategory::Enrolment => {
                serde_json::from_value::<Enrolment>(self.data.object.clone())
                    .map(|enrolment| TypedEvent::Enrolment { kind, enrolment })
                    .map_err(|e| TypedEventError::InvalidEnrolment {
                        event_id: self.id.clone(),
                        event_type: self.event_type.clone(),
                        reason: e.to_string(),
                    })
            }
            EventCategory::Other => Ok(TypedEvent::Other),
        }
    }

    /// `previous_attributes.status` as a string, when the event says the status changed.
    pub fn previous_status(&self) -> Option<&str> {
        self.data
            .previous_attributes
            .as_ref()
            .and_then(|p| p.get("status"))
            .and_then(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{AlertStatus, EnrolmentStatus};

    const ENROLMENT_UPDATED: &str = r#"{
      "id": "evt_enrolmentupdated123",
      "type": "enrolment.updated",
      "created_at": "2026-02-17T10:30:00Z",
      "data": {
        "object": {
          "id": "enrl_rdr123",
          "organisation_id": "org_abc123",
          "merchant_ids": ["mrch_abc123"],
          "type": "VERIFI_RDR",
          "status": "ENABLED",
          "verifi_rdr": {"bin": "424242", "caid": "ACMEFITCAID01", "arns": null},
          "created_at": "2026-02-17T10:04:00Z",
          "updated_at": "2026-02-17T10:30:00Z",
          "note": null
        },
        "previous_attributes": {"status": "PENDING"}
      },
      "api_version": "v2"
    }"#;

    fn alert_event(kind: &str, object: &str) -> WebhookEvent {
        let raw = format!(
            r#"{{"id":"evt_a1","type":"{kind}","created_at":"2026-02-17T10:30:00Z","data":{{"object":{object}}}}}"#
        );
        WebhookEvent::parse(raw.as_bytes()).unwrap()
    }

    const ALERT: &str = r#"{"id":"netalrt_abc123","organisation_id":"org_abc123","enrolment_type":"ETHOCA_ALERT",
        "status":"ACTION_REQUIRED","action_required_deadline":"2026-02-19T10:30:00Z"}"#;

    #[test]
    fn enrolment_updated_from_the_guide_is_typed() {
        let event = WebhookEvent::parse(ENROLMENT_UPDATED.as_bytes()).unwrap();
        match event.typed().unwrap() {
            TypedEvent::Enrolment { kind, enrolment } => {
                assert_eq!(kind, EventKind::Updated);
                assert_eq!(enrolment.status, EnrolmentStatus::Enabled);
                assert!(enrolment.is_live());
            }
            other => panic!("expected an enrolment, got {other:?}"),
        }
        assert_eq!(event.previous_status(), Some("PENDING"));
    }

    #[test]
    fn alert_created_is_typed() {
        match alert_event("alert.created", ALERT).typed().unwrap() {
            TypedEvent::Alert { kind, alert } => {
                assert_eq!(kind, EventKind::Created);
                assert_eq!(alert.status, AlertStatus::ActionRequired);
                assert!(alert.is_actionable());
            }
            other => panic!("expected an alert, got {other:?}"),
        }
    }

    #[test]
    fn unknown_suffixes_are_kept() {
        match alert_event("alert.reopened", ALERT).typed().unwrap() {
            TypedEvent::Alert { kind, .. } => assert_eq!(kind, EventKind::Other("reopened".into())),
            other => panic!("expected an alert, got {other:?}"),
        }
    }

    #[test]
    fn a_broken_alert_object_is_an_error_naming_the_event_and_field() {
        let err = alert_event("alert.updated", r#"{"id":"netalrt_1","status":"RESOLVED"}"#)
            .typed()
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, TypedEventError::InvalidAlert { .. }));
        assert!(message.contains("evt_a1"), "{message}");
        assert!(message.contains("organisation_id"), "{message}");

        let err = alert_event("enrolment.created", r#"{"id":"enrl_1","status":7}"#)
            .typed()
            .unwrap_err();
        assert!(matches!(err, TypedEventError::InvalidEnrolment { .. }));
    }

    #[test]
    fn other_types_are_never_an_error() {
        for kind in [
            "representment.created",
            "scheme_notice.updated",
            "lookup.created",
            "x",
        ] {
            assert_eq!(
                alert_event(kind, r#"{"whatever": [1]}"#).typed().unwrap(),
                TypedEvent::Other
            );
        }
    }
}
