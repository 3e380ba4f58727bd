//! Validation used before anything is sent to ChargebackStop or stored, with field-level
//! messages: a caller gets every problem at once, each naming the JSON path of the field
//! (`orders[2].transactions[0].currency`), so an operator or a customer can fix them in one go
//! instead of discovering them one 422 at a time.
//!
//! The rules come from the seeds (orders guide, partner guide, alerts reference): required
//! `COMPLETE` order and transaction fields, ISO 4217 currencies, RDR enrolments with bin+caid
//! together or at least one ARN, Ethoca descriptors with STARTS_WITH or EXACT_MATCH, RDR
//! ruleset limits, and `alert_received_at_gte <= alert_received_at_lte`.
//!
//! Wasm-safe: no I/O, no clock.

use std::fmt;

mod alerts;
mod enrolments;
mod orders;
mod rulesets;

pub use alerts::{validate_alert_query, validate_update_alert};
pub use enrolments::{validate_create_enrolment, validate_ethoca_descriptors};
pub use orders::{validate_complete_order, validate_order_batch, validate_transaction};
pub use rulesets::{validate_create_ruleset, validate_patch_rule, validate_rule};

/// At most this many orders per `POST /v1/orders/`.
pub const MAX_ORDERS_PER_REQUEST: usize = 100;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `transactions[0].currency`.
    pub field: String,
    /// Machine-readable: `MISSING_FIELD`, `INVALID_CURRENCY`, `INVALID_VALUE`,
    /// `INVALID_COMBINATION`, `TOO_MANY`, `INVALID_DATE_RANGE`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub const MISSING_FIELD: &str = "MISSING_FIELD";
pub const INVALID_CURRENCY: &str = "INVALID_CURRENCY";
pub const INVALID_VALUE: &str = "INVALID_VALUE";
pub const INVALID_COMBINATION: &str = "INVALID_COMBINATION";
pub const TOO_MANY: &str = "TOO_MANY";
pub const INVALID_DATE_RANGE: &str = "INVALID_DATE_RANGE";

/// Every problem found, in field order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// The problems with one field (exact path).
    pub fn for_field(&self, field: &str) -> Vec<&FieldError> {
        self.0.iter().filter(|e| e.field == field).collect()
    }

    pub fn has(&self, field: &str, code: &str) -> bool {
        self.0.iter().any(|e| e.field == field && e.code == code)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects problems under a path prefix.
#[derive(Default)]
struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    fn push(&mut self, field: String, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field,
            code,
            message: message.into(),
        });
    }

    fn missing(&mut self, field: String) {
        self.push(field, MISSING_FIELD, "is required");
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}

fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// Active ISO 4217 currency codes (list one, 2024-2025 amendments included), funds and
/// precious metals left out. Hand-kept rather than a crate: a short static table that must
/// build for wasm32 (the Worker) and changes a few times a decade.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// An active ISO 4217 alphabetic code, upper case as the API writes it (`usd` is refused: the
/// API matches case-sensitively).
pub fn is_iso_4217(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

fn currency(c: &mut Collector, field: String, value: &Option<String>) {
    match value.as_deref() {
        None => c.missing(field),
        Some(v) if v.trim().is_empty() => c.missing(field),
        Some(v) if !is_iso_4217(v) => c.push(
            field,
            INVALID_CURRENCY,
            format!("{v:?} is not an ISO 4217 currency code (e.g. USD, EUR)"),
        ),
        Some(_) => {}
    }
}

fn non_negative(c: &mut Collector, field: String, value: Option<i64>) {
    match value {
        None => c.missing(field),
        Some(v) if v < 0 => c.push(
            field,
            INVALID_VALUE,
            format!("must be 0 or more cents, not {v}"),
        ),
        Some(_) => {}
    }
}

fn digits(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests;
