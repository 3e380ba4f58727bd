//! Small types several objects share: links, card brands, descriptor match types, currencies.

use serde::{Deserialize, Serialize};

use super::string_enum::string_enum;

/// `{"rel": "self", "uri": "/v1/alerts/netalrt_abc123"}` as the API attaches to objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub rel: String,
    pub uri: String,
}

string_enum! {
    /// Card scheme / brand, used by order transactions (`payment_method_card_brand`), alerts
    /// (`transaction_card_scheme`) and the alert simulator (`card_scheme`).
    pub enum CardBrand {
        Visa = "VISA",
        Mastercard = "MASTERCARD",
        Amex = "AMEX",
        Discover = "DISCOVER",
        Jcb = "JCB",
        DinersClub = "DINERS_CLUB",
        UnionPay = "UNIONPAY",
    }
}

string_enum! {
    /// How a billing descriptor is matched (Ethoca enrolments and DESCRIPTOR rules).
    pub enum MatchType {
        StartsWith = "STARTS_WITH",
        ExactMatch = "EXACT_MATCH",
    }
}
