//! Reading request bodies and query values field by field, so every 422 names the offending field
//! (a derive-based parser would stop at the first problem with a message of its own).

use crate::error::{ApiError, FieldError};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Parse a body as JSON; an empty or broken body is a 422 on `body`.
pub fn parse_json(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(FieldError::new("body", "INVALID_BODY", "request body must be JSON").into());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        FieldError::new(
            "body",
            "INVALID_BODY",
            format!("request body is not valid JSON: {e}"),
        )
        .into()
    })
}

pub fn parse_object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match parse_json(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(FieldError::invalid_type("body", "a JSON object").into()),
    }
}

/// Collects field errors while a handler reads a body, then fails once with all of them.
#[derive(Default)]
pub struct Checker {
    pub errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }

    /// A present, non-empty string.
    pub fn required_str(&mut self, obj: &Map<String, Value>, field: &str) -> Option<String> {
        self.required_str_at(obj, field, field)
    }

    pub fn required_str_at(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.push(FieldError::missing(path));
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.push(FieldError::missing(path));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.push(FieldError::invalid_type(path, "a string"));
                None
            }
        }
    }

    /// An optional string (absent and null are both None).
    pub fn optional_str(&mut self, obj: &Map<String, Value>, field: &str) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.push(FieldError::invalid_type(field, "a string"));
                None
            }
        }
    }

    pub fn optional_bool(&mut self, obj: &Map<String, Value>, field: &str) -> Option<bool> {
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.push(FieldError::invalid_type(field, "a boolean"));
                None
            }
        }
    }

    pub fn required_enum(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        allowed: &[&str],
    ) -> Option<String> {
        self.required_enum_at(obj, field, field, allowed)
    }

    pub fn required_enum_at(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let value = self.required_str_at(obj, key, path)?;
        self.check_enum(path, value, allowed)
    }

    /// A value from a list the docs name by example only ("for example GENERIC"): any
    /// non-empty string, or one of `known` under the `strict` knob.
    pub fn required_listed(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        known: &[&str],
    ) -> Option<String> {
        if crate::gate::strict() {
            self.required_enum(obj, field, known)
        } else {
            self.required_str(obj, field)
        }
    }

    /// `required_listed` for an optional field.
    pub fn optional_listed(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        known: &[&str],
    ) -> Option<String> {
        if crate::gate::strict() {
            self.optional_enum(obj, field, known)
        } else {
            self.optional_str(obj, field)
                .filter(|v| !v.trim().is_empty())
        }
    }

    pub fn optional_enum(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let value = self.optional_str(obj, field)?;
        self.check_enum(field, value, allowed)
    }

    fn check_enum(&mut self, path: &str, value: String, allowed: &[&str]) -> Option<String> {
        if allowed.contains(&value.as_str()) {
            Some(value)
        } else {
            self.push(FieldError::invalid_enum(path, allowed));
            None
        }
    }

    /// A non-negative integer.
    pub fn optional_amount(&mut self, obj: &Map<String, Value>, field: &str) -> Option<i64> {
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v >= 0) => n.as_i64(),
            Some(_) => {
                self.push(FieldError::invalid_type(field, "a non-negative integer"));
                None
            }
        }
    }

    /// A non-empty array of distinct strings.
    pub fn required_id_list(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
    ) -> Option<Vec<String>> {
        let Some(value) = obj.get(field).filter(|v| !v.is_null()) else {
            self.push(FieldError::missing(field));
            return None;
        };
        let Some(items) = value.as_array() else {
            self.push(FieldError::invalid_type(field, "an array of ids"));
            return None;
        };
        if items.is_empty() {
            self.push(FieldError::new(
                field,
                "MISSING_FIELD",
                format!("{field} must not be empty"),
            ));
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) if !s.is_empty() => {
                    if out.iter().any(|o| o == s) {
                        self.push(FieldError::new(
                            format!("{field}[{i}]"),
                            "DUPLICATE_ID",
                            format!("{field} contains {s} more than once"),
                        ));
                        return None;
                    }
                    out.push(s.to_string());
                }
                _ => {
                    self.push(FieldError::invalid_type(
                        format!("{field}[{i}]"),
                        "a string id",
                    ));
                    return None;
                }
            }
        }
        Some(out)
    }
}

/// A datetime as the docs describe it: "ISO 8601". Leniently that is RFC 3339 and the other
/// common ISO 8601 forms (`+0000` offsets, no offset meaning UTC, a bare date meaning its
/// midnight UTC); under the `strict` knob RFC 3339 only.
pub fn parse_datetime(field: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    let parsed = if crate::gate::strict() {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    } else {
        parse_iso_8601(value)
    };
    parsed.ok_or_else(|| {
        FieldError::new(
            field,
            "INVALID_DATETIME",
            format!("{field} must be an ISO 8601 datetime"),
        )
    })
}

/// RFC 3339, then `2026-02-17T10:00:00+0000`, `2026-02-17T10:00:00` (UTC), `2026-02-17 10:00:00`
/// and `2026-02-17` (midnight UTC).
pub fn parse_iso_8601(value: &str) -> Option<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime};
    let value = value.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(value) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(d) = DateTime::parse_from_str(value, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(value, format) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// A 3-letter upper-case code, as ISO 4217 currencies are.
pub fn looks_like_currency(code: &str) -> bool {
    code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase())
}

/// The largest page a list answers.
pub const MAX_PAGE_SIZE: usize = 1000;

/// `limit`/`offset` query values: non-negative integers. A `limit` outside 1..=1000 is brought
/// into it (the docs give no bounds: a lenient API caps); under the `strict` knob it is a 422.
pub fn page_params(limit: Option<&str>, offset: Option<&str>) -> Result<(usize, usize), ApiError> {
    let mut errors = Vec::new();
    let strict = crate::gate::strict();
    let limit = match limit {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Ok(n) if !strict => n.clamp(1, MAX_PAGE_SIZE),
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "INVALID_VALUE",
                    "limit must be an integer from 1 to 1000",
                ));
                0
            }
        },
    };
    let offset = match offset {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                errors.push(FieldError::new(
                    "offset",
                    "INVALID_VALUE",
                    "offset must be a non-negative integer",
                ));
                0
            }
        },
    };
    if errors.is_empty() {
        Ok((limit, offset))
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `{items, count}`: `count` is the number matching the filters, before paging.
pub fn page<T: serde::Serialize>(all: Vec<T>, limit: usize, offset: usize) -> Value {
    let count = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    serde_json::json!({ "items": items, "count": count })
}
