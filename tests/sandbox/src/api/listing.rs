//! The parts every list and get endpoint shares: `?limit=&offset=` paging, "only what the
//! caller may see", the `?organisation_id=` filter and the default newest-first order. Each
//! handler keeps its own ability check and its own extra filters and sorts, which differ per
//! resource.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::fields::{page, page_params};
use crate::model::{Alert, Enrolment, Integration, Membership, Merchant, Ruleset};
use crate::state::Store;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub type QueryParams = HashMap<String, String>;

/// A stored record a list endpoint can show: whose it is, and what orders it newest first.
pub trait Listed {
    /// Compared descending: creation time, then id so that equal times keep a stable order.
    type NewestFirstKey<'a>: Ord
    where
        Self: 'a;
    fn organisation_id(&self) -> &str;
    fn newest_first_key(&self) -> Self::NewestFirstKey<'_>;
}

macro_rules! listed_by_fields {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            type NewestFirstKey<'a> = (DateTime<Utc>, &'a str);
            fn organisation_id(&self) -> &str {
                &self.organisation_id
            }
            fn newest_first_key(&self) -> Self::NewestFirstKey<'_> {
                (self.created_at, &self.id)
            }
        }
    )*};
}
listed_by_fields!(Membership, Merchant, Integration, Enrolment, Alert, Ruleset);

/// Orders are stored as the JSON object the partner sent (plus ours), so their fields are read
/// from it; `created_at` is our own RFC 3339 text, which sorts as the time does.
impl Listed for Value {
    type NewestFirstKey<'a> = (Option<&'a str>, Option<&'a str>);
    fn organisation_id(&self) -> &str {
        self["organisation_id"].as_str().unwrap_or_default()
    }
    fn newest_first_key(&self) -> Self::NewestFirstKey<'_> {
        (self["created_at"].as_str(), self["id"].as_str())
    }
}

/// The page a list request asks for. Read before any other query check, so that a bad
/// `limit` or `offset` is the error a caller sees first.
pub struct PageRequest {
    limit: usize,
    offset: usize,
}

impl PageRequest {
    pub fn from_query(q: &QueryParams) -> ApiResult<Self> {
        let (limit, offset) = page_params(
            q.get("limit").map(String::as_str),
            q.get("offset").map(String::as_str),
        )?;
        Ok(Self { limit, offset })
    }

    /// `{"items": [...], "count": n}` with `count` the total before paging.
    pub fn of<T: Serialize>(&self, items: Vec<T>) -> Json<Value> {
        Json(page(items, self.limit, self.offset))
    }

    /// The default order of the API's lists, then this page of it.
    pub fn newest_first<T: Listed + Serialize>(&self, mut items: Vec<&T>) -> Json<Value> {
        items.sort_by(|a, b| b.newest_first_key().cmp(&a.newest_first_key()));
        self.of(items)
    }
}

/// The records the caller may see, narrowed to `?organisation_id=` when the query names one.
pub fn visible<'a, T: Listed + 'a>(
    store: &'a Store,
    caller: &'a Caller,
    q: &'a QueryParams,
    records: impl Iterator<Item = &'a T> + 'a,
) -> impl Iterator<Item = &'a T> + 'a {
    records
        .filter(move |r| caller.can_see_org_id(store, r.organisation_id()))
        .filter(move |r| {
            q.get("organisation_id")
                .is_none_or(|o| o == r.organisation_id())
        })
}

/// One record by id if the caller may see it. A record in an organisation the caller cannot
/// see is a 404 naming `what`, as if it did not exist, so ids do not leak across partners.
pub fn find_visible<'a, T: Listed>(
    store: &Store,
    caller: &Caller,
    records: &'a BTreeMap<String, T>,
    id: &str,
    what: &str,
) -> ApiResult<&'a T> {
    records
        .get(id)
        .filter(|r| caller.can_see_org_id(store, r.organisation_id()))
        .ok_or_else(|| ApiError::not_found(what))
}
