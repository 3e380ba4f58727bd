//! Matching one alert to the partner's transaction: the methods in order, strongest first,
//! each one Query of the `transactions` table; the first method that finds anything decides.
//! One candidate: MATCHED. Several: the statement descriptor may single one out (MATCHED, with a
//! lower confidence); otherwise AMBIGUOUS, a result for a person, never a guess. None by every
//! method: UNMATCHED. At most four reads, whatever the number of stored transactions.

use super::keys::{arn_key, auth_key, card_key, integration_transaction_key, normalise};
use crate::models::alert::Alert;
use crate::ports::order_outbox::iso;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::matching::{
    AlertMatch, IndexBody, IndexedTransaction, MatchMethod, MatchStatus, MethodTried,
    MAX_CANDIDATES,
};
use chrono::{DateTime, Duration, Utc};

/// How far from the alert's authorisation date a BIN + last 4 + amount + currency candidate may
/// have been authorised (either side): issuers and acquirers date the same payment a day or two
/// apart.
pub const AUTHORISATION_WINDOW: Duration = Duration::days(3);

/// What confidence a descriptor tie-break costs.
const TIE_BREAK_PENALTY: u8 = 10;

/// One lookup a method makes, or why the alert does not allow it.
struct Lookup {
    method: MatchMethod,
    key: Result<String, String>,
    between: Option<(String, String)>,
}

fn lookups(alert: &Alert) -> Vec<Lookup> {
    let org = &alert.organisation_id;
    let last4 = normalise(alert.transaction_card_last4.as_deref());
    let amount = alert.transaction_amount_in_cents;
    let missing = |what: &str| Err(format!("the alert has no {what}"));
    let itid = match normalise_reference(alert.integration_transaction_id.as_deref()) {
        Some(id) => Ok(integration_transaction_key(org, &id)),
        None => missing("integration_transaction_id"),
    };
    let arn = match normalise(alert.transaction_acquirer_reference_number.as_deref()) {
        Some(arn) => Ok(arn_key(org, &arn)),
        None => missing("ARN"),
    };
    let auth = match (
        normalise(alert.transaction_authorisation_code.as_deref()),
        &last4,
        amount,
    ) {
        (Some(code), Some(last4), Some(amount)) => Ok(auth_key(org, &code, last4, amount)),
        _ => missing("authorisation code, last 4 or amount"),
    };
    let (card, between) = match (
        normalise(alert.transaction_card_bin.as_deref()),
        &last4,
        amount,
        normalise(alert.transaction_currency_code.as_deref()),
        alert.transaction_authorised_at,
    ) {
        (Some(bin), Some(last4), Some(amount), Some(currency), Some(at)) => (
            Ok(card_key(org, &bin, last4, amount, &currency)),
            Some(window(at)),
        ),
        _ => (
            missing("BIN, last 4, amount, currency or authorisation date"),
            None,
        ),
    };
    vec![
        Lookup {
            method: MatchMethod::IntegrationTransactionId,
            key: itid,
            between: None,
        },
        Lookup {
            method: MatchMethod::Arn,
            key: arn,
            between: None,
        },
        Lookup {
            method: MatchMethod::AuthCodeLast4Amount,
            key: auth,
            between: None,
        },
        Lookup {
            method: MatchMethod::BinLast4AmountWindow,
            key: card,
            between,
        },
    ]
}

/// The lookups the alert allows, to keep while it waits for a late order.
pub fn wait_keys(alert: &Alert) -> Vec<crate::records::matching::WaitKey> {
    lookups(alert)
        .into_iter()
        .filter_map(|l| {
            let lookup = l.key.ok()?;
            let (from, to) = match l.between {
                Some((a, b)) => (Some(a), Some(b)),
                None => (None, None),
            };
            Some(crate::records::matching::WaitKey { lookup, from, to })
        })
        .collect()
}

/// Transaction references are the partner's own: compared exactly, only trimmed.
fn normalise_reference(value: Option<&str>) -> Option<String> {
    let v = value?.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The `entry` range of the card partition for an alert authorised at `at`.
pub fn window(at: DateTime<Utc>) -> (String, String) {
    (
        iso(at - AUTHORISATION_WINDOW),
        format!("{}~", iso(at + AUTHORISATION_WINDOW)),
    )
}

/// Whether a candidate's descriptor fits the alert's statement descriptor (one starts with the
/// other, ignoring case and spaces: Ethoca enrols descriptors by prefix).
pub fn descriptor_fits(alert: &Alert, candidate: &IndexedTransaction) -> bool {
    match (
        normalise(alert.transaction_statement_descriptor.as_deref()),
        normalise(candidate.descriptor.as_deref()),
    ) {
        (Some(a), Some(c)) => a.starts_with(&c) || c.starts_with(&a),
        _ => false,
    }
}

/// The pure part: what one method's candidates mean.
pub fn judge(
    alert: &Alert,
    method: MatchMethod,
    candidates: Vec<IndexedTransaction>,
) -> (MatchStatus, Option<IndexedTransaction>, u8, bool) {
    match candidates.len() {
        0 => (MatchStatus::Unmatched, None, 0, false),
        1 => (
            MatchStatus::Matched,
            candidates.into_iter().next(),
            method.confidence(),
            false,
        ),
        _ => {
            let fitting: Vec<&IndexedTransaction> = candidates
                .iter()
                .filter(|c| descriptor_fits(alert, c))
                .collect();
            if fitting.len() == 1 {
                (
                    MatchStatus::Matched,
                    Some(fitting[0].clone()),
                    method.confidence().saturating_sub(TIE_BREAK_PENALTY),
                    true,
                )
            } else {
                (MatchStatus::Ambiguous, None, 0, false)
            }
        }
    }
}

/// Matches `alert` against the index: the methods in order, stopping at the first that finds
/// a candidate.
pub async fn match_alert(
    index: &dyn TransactionIndex,
    alert: &Alert,
    now: DateTime<Utc>,
) -> Result<AlertMatch, StoreError> {
    let mut tried = Vec::new();
    let mut reads = 0;
    for lookup in lookups(alert) {
        let key = match lookup.key {
            Ok(key) => key,
            Err(why) => {
                tried.push(MethodTried {
                    method: lookup.method,
                    skipped: Some(why),
                    found: 0,
                });
                continue;
            }
        };
        let between = lookup
            .between
            .as_ref()
            .map(|(a, b)| (a.as_str(), b.as_str()));
        reads += 1;
        let items = index.query(&key, between, MAX_CANDIDATES + 1).await?;
        let mut candidates: Vec<IndexedTransaction> = Vec::new();
        for item in items {
            if let IndexBody::Transaction { transaction } = item.body {
                if !candidates
                    .iter()
                    .any(|c| c.identity() == transaction.identity())
                {
                    candidates.push(transaction);
                }
            }
        }
        let found = candidates.len();
        tried.push(MethodTried {
            method: lookup.method,
            skipped: None,
            found,
        });
        if found == 0 {
            continue;
        }
        candidates.truncate(MAX_CANDIDATES);
        let (status, transaction, confidence, tie_break) =
            judge(alert, lookup.method, candidates.clone());
        return Ok(AlertMatch {
            status,
            method: Some(lookup.method),
            confidence,
            descriptor_tie_break: tie_break,
            transaction,
            candidates,
            tried,
            reads,
            matched_at: iso(now),
        });
    }
    Ok(AlertMatch {
        status: MatchStatus::Unmatched,
        method: None,
        confidence: 0,
        descriptor_tie_break: false,
        transaction: None,
        candidates: Vec::new(),
        tried,
        reads,
        matched_at: iso(now),
    })
}
