//! A customer that sends its orders, onboarded straight at the sandbox: an organisation, a
//! merchant, an ENABLED Custom Orders integration and an ENABLED Ethoca enrolment for
//! `ACMEFIT*`; and the card orders the matching tests upload for it.

use crate::sandbox_client::SandboxClient;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Value};

pub struct OrdersCustomer {
    pub org: String,
    pub integration: String,
    pub enrolment: String,
}

impl OrdersCustomer {
    pub async fn onboard(cbs: &SandboxClient, name: &str) -> Self {
        let post = |path: &'static str, body: Value| async move {
            cbs.api(Method::POST, path, body).await
        };
        let org = post("/v1/organisations/", json!({ "name": name })).await;
        let org = org["id"].as_str().expect("organisation id").to_string();
        let merchant = post(
            "/v1/merchants/",
            json!({"organisation_id": org, "name": "store", "type": "GENERIC", "external_id": "mid-1"}),
        )
        .await;
        let merchant = merchant["id"].as_str().expect("merchant id").to_string();
        let integration = post(
            "/v1/integrations/",
            json!({"organisation_id": org, "name": "orders", "type": "CUSTOM_ORDERS",
                   "status": "ENABLED", "merchant_ids": [merchant]}),
        )
        .await;
        let enrolment = post(
            "/v2/enrolments/",
            json!({"merchant_ids": [merchant], "type": "ETHOCA_ALERT",
                   "ethoca_alert": {"descriptors": [{"descriptor": "ACMEFIT", "match_type": "STARTS_WITH"}]}}),
        )
        .await;
        let enrolment = enrolment["id"].as_str().expect("enrolment id").to_string();
        cbs.api(
            Method::PATCH,
            &format!("/v1/simulate/enrolments/{enrolment}"),
            json!({"status": "ENABLED"}),
        )
        .await;
        Self {
            org,
            integration: integration["id"]
                .as_str()
                .expect("integration id")
                .to_string(),
            enrolment,
        }
    }

    /// A COMPLETE order with one VISA card transaction (BIN 424242, last 4 4242) authorised at
    /// `authorised_at`; `arn` may be empty (none sent); `refunded`: fully refunded an hour later.
    pub fn card_order(
        &self,
        reference: &str,
        arn: &str,
        amount: i64,
        refunded: bool,
        authorised_at: DateTime<Utc>,
    ) -> Value {
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut t = json!({
            "reference_id": format!("txn-{reference}"), "amount_in_cents": amount, "currency": "USD",
            "payment_method_type": "CARD", "authorisation_status": "SETTLED",
            "payment_method_reference_id": format!("pay-{reference}"),
            "authorised_at": iso(authorised_at),
            "payment_method_card_brand": "VISA", "payment_method_card_last_4": "4242",
            "payment_method_card_bin": "424242"
        });
        if !arn.is_empty() {
            t["acquirer_reference_number"] = json!(arn);
        }
        let mut o = json!({
            "type": "COMPLETE", "organisation_id": self.org, "integration_id": self.integration,
            "reference_id": reference, "order_datetime": iso(authorised_at),
            "order_number": reference, "order_subtotal_amount_in_cents": amount,
            "order_currency": "USD", "order_total_amount_in_cents": amount,
            "order_status": "CLOSED_COMPLETE", "customer_email": format!("{reference}@example.com"),
            "transactions": [t]
        });
        if refunded {
            o["refunds"] = json!([{"reference_id": format!("rf-{reference}"), "amount_in_cents": amount,
                "currency": "USD", "status": "SUCCEEDED",
                "original_transaction_reference_id": format!("txn-{reference}"),
                "refund_datetime": iso(authorised_at + Duration::hours(1))}]);
        }
        o
    }
}
