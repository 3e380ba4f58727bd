//! The API's error body. The reference pages collapse their examples, so this reads the common
//! shapes leniently: `{"detail": "..."}`, `{"detail": "...", "code": "..."}`,
//! `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}` (schema validation) and
//! `{"errors": [{"code": "...", "field": "...", "message": "..."}]}`.
//! The sandbox writes `{"detail": <text>, "code": <CODE>, "errors": [...]}`.

use serde::{Deserialize, Serialize};

use super::string_enum::nullable::default_if_null;

/// One field-level problem in an error body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorItem {
    #[serde(default, alias = "type", skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, alias = "msg", skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Schema validators give the field as a path (`["body", "action"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc: Option<Vec<serde_json::Value>>,
}

impl ApiErrorItem {
    /// `field`, or `loc` joined with dots.
    pub fn field_path(&self) -> Option<String> {
        self.field.clone().or_else(|| {
            self.loc.as_ref().map(|loc| {
                loc.iter()
                    .map(|p| match p {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// A sentence, or a list of field problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub errors: Vec<ApiErrorItem>,
}

impl ApiErrorBody {
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            detail: Some(serde_json::Value::String(detail.into())),
            code: Some(code.into()),
            message: None,
            errors: Vec::new(),
        }
    }

    pub fn with_error(mut self, item: ApiErrorItem) -> Self {
        self.errors.push(item);
        self
    }

    /// Every field-level item, whether under `errors` or a list-shaped `detail`.
    pub fn items(&self) -> Vec<ApiErrorItem> {
        let mut items = self.errors.clone();
        if let Some(serde_json::Value::Array(list)) = &self.detail {
            items.extend(
                list.iter()
                    .filter_map(|v| serde_json::from_value::<ApiErrorItem>(v.clone()).ok()),
            );
        }
        items
    }

    /// A one-line human summary (for error messages and logs; the API never echoes keys).
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match &self.detail {
            Some(serde_json::Value::String(s)) => parts.push(s.clone()),
            Some(serde_json::Value::Null) | None => {}
            Some(serde_json::Value::Array(_)) => {}
            Some(other) => parts.push(other.to_string()),
        }
        if let Some(message) = &self.message {
            parts.push(message.clone());
        }
        for item in self.items() {
            let text = match (item.field_path(), item.message) {
                (Some(field), Some(message)) => format!("{field}: {message}"),
                (Some(field), None) => field,
                (None, Some(message)) => message,
                (None, None) => continue,
            };
            parts.push(text);
        }
        parts.join("; ")
    }

    /// Every machine-readable code: the top-level `code` first, then each item's.
    pub fn codes(&self) -> Vec<String> {
        let mut codes: Vec<String> = self.code.iter().cloned().collect();
        for item in self.items() {
            if let Some(code) = item.code {
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
        }
        codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    #[test]
    fn reads_a_plain_detail() {
        let body: ApiErrorBody = serde_json::from_str(r#"{"detail": "Not found."}"#).unwrap();
        assert_eq!(body.summary(), "Not found.");
        assert!(body.codes().is_empty());
    }

    #[test]
    fn reads_schema_validation_lists() {
        let body: ApiErrorBody = serde_json::from_str(
            r#"{"detail": [{"type": "enum", "loc": ["body", "action"], "msg": "Input should be 'REFUND', 'CANCEL'"}]}"#,
        )
        .unwrap();
        assert_eq!(body.codes(), vec!["enum".to_string()]);
        assert_eq!(
            body.summary(),
            "body.action: Input should be 'REFUND', 'CANCEL'"
        );
    }

    #[test]
    fn reads_the_sandbox_shape_and_round_trips() {
        let body = ApiErrorBody::new(
            "ALERT_ALREADY_RESOLVED",
            "Alert is resolved and cannot be actioned.",
        )
        .with_error(ApiErrorItem {
            code: Some("INVALID".into()),
            field: Some("action".into()),
            message: Some("no".into()),
            loc: None,
        });
        let back = assert_round_trips(&body);
        assert_eq!(
            back.codes(),
            vec!["ALERT_ALREADY_RESOLVED".to_string(), "INVALID".to_string()]
        );
        assert_eq!(
            back.summary(),
            "Alert is resolved and cannot be actioned.; action: no"
        );
    }

    #[test]
    fn tolerates_odd_shapes() {
        let body: ApiErrorBody =
            serde_json::from_str(r#"{"detail": {"x": 1}, "errors": null, "other": 2}"#).unwrap();
        assert_eq!(body.summary(), r#"{"x":1}"#);
        let body: ApiErrorBody = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(body.summary(), "");
    }
}
