//! What every DynamoDB adapter of the event pipeline shares: the client, the table name, the
//! mapping of SDK errors to `StoreError` kinds, and read/write counters (the figures "DynamoDB
//! reads and writes per event" come from these).

use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Request counts of one process (or one test), shared by the adapters built with it.
#[derive(Debug, Default)]
pub struct DynamoCounters {
    reads: AtomicU64,
    writes: AtomicU64,
}

impl DynamoCounters {
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub(crate) client: aws_sdk_dynamodb::Client,
    pub(crate) name: String,
    pub(crate) counters: Arc<DynamoCounters>,
}

impl Table {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        name: impl Into<String>,
        counters: Arc<DynamoCounters>,
    ) -> Self {
        Self {
            client,
            name: name.into(),
            counters,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Classify an SDK failure. Throttling, timeouts and 5xx are transient (SQS redelivers);
    /// anything else (missing table, validation) is permanent and needs a person.
    pub(crate) fn error<E>(&self, operation: &'static str, err: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let transient = |detail: String| StoreError::Transient {
            operation,
            table: self.name.clone(),
            detail,
        };
        match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown").to_string();
                let message = service.err().message().unwrap_or_default().to_string();
                let detail = format!("{code}: {message}");
                let retryable = matches!(
                    code.as_str(),
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "ServiceUnavailable"
                        | "TransactionConflictException"
                        | "LimitExceededException"
                ) || service.raw().status().is_server_error();
                if retryable {
                    transient(detail)
                } else {
                    StoreError::Permanent {
                        operation,
                        table: self.name.clone(),
                        detail,
                    }
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => transient(format!("{err}")),
            _ => StoreError::Permanent {
                operation,
                table: self.name.clone(),
                detail: format!("{err}"),
            },
        }
    }

    pub(crate) fn bad_item(
        &self,
        operation: &'static str,
        err: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Permanent {
            operation,
            table: self.name.clone(),
            detail: format!("item does not map: {err}"),
        }
    }
}

pub(crate) type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// A condition expression with its names and values (only those it uses: DynamoDB refuses
/// unused ones with a ValidationException).
#[derive(Debug, Clone, Default)]
pub(crate) struct Condition {
    pub expression: String,
    pub names: Option<std::collections::HashMap<String, String>>,
    pub values: Option<Item>,
}

/// The optimistic write's condition: revision 1 creates (no item with this key), revision n
/// replaces revision n-1, and a smaller `version_key` never replaces a larger.
pub(crate) fn versioned_condition(key_name: &str, revision: u64, version_key: &str) -> Condition {
    use aws_sdk_dynamodb::types::AttributeValue;
    if revision <= 1 {
        Condition {
            expression: "attribute_not_exists(#pk)".into(),
            names: Some([("#pk".to_string(), key_name.to_string())].into()),
            values: None,
        }
    } else {
        Condition {
            expression: "revision = :previous AND (attribute_not_exists(version_key) OR version_key <= :version_key)".into(),
            names: None,
            values: Some(
                [
                    (":previous".to_string(), AttributeValue::N((revision - 1).to_string())),
                    (":version_key".to_string(), AttributeValue::S(version_key.to_string())),
                ]
                .into(),
            ),
        }
    }
}

/// A transaction's Put of `item` under `condition` (the item as it stood returned when the
/// condition fails).
pub(crate) fn conditional_put(
    table: &str,
    item: Item,
    condition: Condition,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
    use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names)
                .set_expression_attribute_values(condition.values)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()?,
        )
        .build())
}

/// `SET #a0 = if_not_exists(#a0, :a0), ...` for every attribute: writes an item that is not
/// there, leaves one that is exactly as it was, and never fails.
pub(crate) fn set_if_absent(
    attributes: Item,
) -> (String, std::collections::HashMap<String, String>, Item) {
    let mut names = std::collections::HashMap::new();
    let mut values = Item::new();
    let mut sets = Vec::new();
    let mut sorted: Vec<_> = attributes.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        sets.push(format!("#a{i} = if_not_exists(#a{i}, :a{i})"));
        names.insert(format!("#a{i}"), name);
        values.insert(format!(":a{i}"), value);
    }
    (format!("SET {}", sets.join(", ")), names, values)
}

/// Whether an SDK error is DynamoDB's ConditionalCheckFailedException.
pub(crate) fn is_condition_failed<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    matches!(err, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}

impl Table {
    /// Consistent GetItem by a string partition key, mapped with serde_dynamo.
    pub(crate) async fn get_by_key<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        key_name: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.counters.read();
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(
                key_name,
                aws_sdk_dynamodb::types::AttributeValue::S(key.to_string()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error(operation, e))?;
        out.item
            .map(|item| serde_dynamo::from_item(item).map_err(|e| self.bad_item(operation, e)))
            .transpose()
    }

    /// The optimistic write shared by the alert and enrolment stores: revision 1 creates,
    /// revision n replaces revision n-1, and a smaller `version_key` never replaces a larger.
    /// `item` is the record as JSON; nulls are dropped (a GSI key may not be NULL, and absent
    /// is what an unset optional field means). `journal` (the record's bookkeeping journal
    /// write, `journal::DynamoBookkeepingJournal`) goes in the same request: one
    /// `TransactWriteItems` of the conditional record Put and the journal item, so the journal
    /// is written exactly when the record is. A lost race is `StoreError::Conflict`, as a
    /// plain conditional Put's ConditionalCheckFailed was; any other cancellation is transient
    /// (a conflicting transaction, throttling), but a malformed request, which is permanent.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn put_versioned(
        &self,
        operation: &'static str,
        key_name: &str,
        key: &str,
        item: serde_json::Value,
        revision: u64,
        version_key: &str,
        journal: aws_sdk_dynamodb::types::TransactWriteItem,
    ) -> Result<(), StoreError> {
        let item = self.versioned_item(operation, item)?;
        let condition = versioned_condition(key_name, revision, version_key);
        let record = conditional_put(&self.name, item, condition)
            .map_err(|e| self.bad_item(operation, e))?;
        self.counters.write();
        let result = self
            .client
            .transact_write_items()
            .transact_items(record)
            .transact_items(journal)
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let codes: Vec<String> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
            _ => return Err(self.error(operation, err)),
        };
        // The reasons come in the order of the items: the record's first.
        if codes.first().map(String::as_str) == Some("ConditionalCheckFailed") {
            return Err(StoreError::Conflict {
                operation,
                table: self.name.clone(),
                key: key.to_string(),
            });
        }
        let refused: Vec<&str> = codes
            .iter()
            .map(String::as_str)
            .filter(|c| *c != "None")
            .collect();
        let detail = format!("transaction cancelled: {}", refused.join(", "));
        Err(if refused.contains(&"ValidationError") {
            StoreError::Permanent {
                operation,
                table: self.name.clone(),
                detail,
            }
        } else {
            StoreError::Transient {
                operation,
                table: self.name.clone(),
                detail,
            }
        })
    }

    /// The item of a versioned record: the JSON record with its nulls dropped (a GSI key may not
    /// be NULL, and absent is what an unset optional field means).
    pub(crate) fn versioned_item(
        &self,
        operation: &'static str,
        mut item: serde_json::Value,
    ) -> Result<Item, StoreError> {
        if let Some(map) = item.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        serde_dynamo::to_item(item).map_err(|e| self.bad_item(operation, e))
    }

    /// Query an index by a string partition key (and an optional `sk <= value` bound), every
    /// page up to `limit` items.
    /// Every item a Query of this table returns, all pages (each page one read request).
    /// `shape` sets the key condition and its values on the request.
    pub(crate) async fn query_all(
        &self,
        operation: &'static str,
        shape: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<
        Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
        StoreError,
    > {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            self.counters.read();
            let request = self
                .client
                .query()
                .table_name(&self.name)
                .set_exclusive_start_key(start.take());
            let out = shape(request)
                .send()
                .await
                .map_err(|e| self.error(operation, e))?;
            found.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(found),
            }
        }
    }

    pub(crate) async fn query_index<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        index: &str,
        pk: (&str, &str),
        sk_at_most: Option<(&str, &str)>,
        newest_first: bool,
        limit: Option<i32>,
    ) -> Result<Vec<T>, StoreError> {
        self.query_index_items(operation, index, pk, sk_at_most, newest_first, limit)
            .await?
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(|e| self.bad_item(operation, e)))
            .collect()
    }

    /// [`Table::query_index`] without decoding: the raw items.
    async fn query_index_items(
        &self,
        operation: &'static str,
        index: &str,
        pk: (&str, &str),
        sk_at_most: Option<(&str, &str)>,
        newest_first: bool,
        limit: Option<i32>,
    ) -> Result<
        Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
        StoreError,
    > {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.name)
                .index_name(index)
                .expression_attribute_names("#pk", pk.0)
                .expression_attribute_values(":pk", AttributeValue::S(pk.1.to_string()))
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take());
            request = match sk_at_most {
                Some((sk, bound)) => request
                    .key_condition_expression("#pk = :pk AND #sk <= :sk")
                    .expression_attribute_names("#sk", sk)
                    .expression_attribute_values(":sk", AttributeValue::S(bound.to_string())),
                None => request.key_condition_expression("#pk = :pk"),
            };
            if let Some(limit) = limit {
                request = request.limit((limit - found.len() as i32).max(1));
            }
            self.counters.read();
            let out = request.send().await.map_err(|e| self.error(operation, e))?;
            found.extend(out.items.unwrap_or_default());
            let full = limit.is_some_and(|l| found.len() as i32 >= l);
            match out.last_evaluated_key {
                Some(key) if !full => start = Some(key),
                _ => return Ok(found),
            }
        }
    }
}

impl Table {
    /// Decodes one item, or names it (by `key_name`) with the reason it does not decode.
    pub(crate) fn decode_item<T: serde::de::DeserializeOwned>(
        &self,
        item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
        key_name: &str,
    ) -> Result<T, crate::ports::store_error::UndecodableItem> {
        let key = match item.get(key_name) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(k)) => k.clone(),
            Some(other) => format!("{other:?}"),
            None => "(no key)".to_string(),
        };
        serde_dynamo::from_item(item).map_err(|e| crate::ports::store_error::UndecodableItem {
            table: self.name.clone(),
            key,
            reason: e.to_string(),
        })
    }

    /// [`Table::query_index`], decoding item by item: items that do not decode are returned
    /// apart (named by `key_name`) instead of failing the whole query.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn query_index_each<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        index: &str,
        pk: (&str, &str),
        sk_at_most: Option<(&str, &str)>,
        newest_first: bool,
        limit: Option<i32>,
        key_name: &str,
    ) -> Result<(Vec<T>, Vec<crate::ports::store_error::UndecodableItem>), StoreError> {
        let items = self
            .query_index_items(operation, index, pk, sk_at_most, newest_first, limit)
            .await?;
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        for item in items {
            match self.decode_item(item, key_name) {
                Ok(record) => found.push(record),
                Err(s) => skipped.push(s),
            }
        }
        Ok((found, skipped))
    }
}

/// Rewrite the named top-level timestamps in the one ISO format of the tables, so that index
/// sort keys compare correctly as strings (`...T10:00:00Z` would sort after `...T10:00:00.500Z`).
pub(crate) fn normalise_timestamps(item: &mut serde_json::Value, fields: &[&str]) {
    let Some(map) = item.as_object_mut() else {
        return;
    };
    for field in fields {
        if let Some(serde_json::Value::String(raw)) = map.get(*field) {
            if let Ok(at) = raw.parse::<chrono::DateTime<chrono::Utc>>() {
                map.insert(
                    (*field).to_string(),
                    serde_json::Value::String(crate::ports::event_log::iso(at)),
                );
            }
        }
    }
}
