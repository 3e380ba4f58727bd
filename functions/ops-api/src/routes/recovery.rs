//! Recovery from the page and scripts: replay one archived event through the processor
//! (`POST /api/events/{event_id}/replay`, the same `shared::domain::recovery::replay` as
//! `cbs events replay`) and the dead-letter queue's depth and reasons (`GET /api/dlq`, shown by
//! `assets/dlq.js`). Both behind the operator key.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use shared::domain::recovery::dlq::{self, DeadLetterView};
use shared::domain::recovery::refused::{refused_counts, RefusedCounts};
use shared::domain::recovery::replay::{ReplayItem, ReplayOptions, ReplaySelection, Replayer};
use shared::ports::dead_letters::DeadLetterQueue;
use std::sync::Arc;

const DLQ_JS: &str = include_str!("../../assets/dlq.js");
/// Messages the page lists (the depth is exact-ish; the list is a sample).
const DLQ_PAGE: u32 = 50;
/// How long a replayed event's claim lasts if the function dies mid-way.
const CLAIM_SECS: i64 = 30;

/// What the recovery routes need; absent where the stack does not provide it.
#[derive(Clone)]
pub struct Recovery {
    pub replayer: Replayer,
    pub dlq: Option<Arc<dyn DeadLetterQueue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub reprocess: bool,
    #[serde(default)]
    pub dry_run: bool,
}

fn recovery(state: &AppState) -> ApiResult<&Recovery> {
    state.recovery.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "recovery is not configured on this stack",
        )
    })
}

pub async fn replay(
    State(state): State<AppState>,
    axum::extract::Extension(operator): axum::extract::Extension<crate::auth::Operator>,
    Path(event_id): Path<String>,
    body: Option<Json<ReplayRequest>>,
) -> ApiResult<Json<ReplayItem>> {
    let recovery = recovery(&state)?;
    let request = body.map(|Json(b)| b).unwrap_or_default();
    let selected = recovery
        .replayer
        .select(&ReplaySelection {
            event_ids: vec![event_id.clone()],
            ..Default::default()
        })
        .await?;
    let Some(delivery) = selected.deliveries.first() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_archived",
            format!("no archived delivery of event {event_id}"),
        ));
    };
    tracing::info!(event_id = %event_id, operator = %operator.0, reprocess = request.reprocess, dry_run = request.dry_run, "replay requested");
    let item = recovery
        .replayer
        .replay_one(
            delivery,
            ReplayOptions {
                dry_run: request.dry_run,
                reprocess: request.reprocess,
            },
            state.clock.now() + chrono::Duration::seconds(CLAIM_SECS),
        )
        .await;
    Ok(Json(item))
}

#[derive(Debug, Serialize)]
pub struct DlqSummary {
    pub depth: u64,
    pub messages: Vec<DeadLetterView>,
    /// Messages per reason among those listed.
    pub reasons: Vec<(String, usize)>,
    /// Deliveries the edge refused for their signature, archived and not processed, today and
    /// yesterday (UTC); null when the archive could not be read.
    pub refused_at_edge: Option<RefusedCounts>,
}

pub async fn dlq_summary(State(state): State<AppState>) -> ApiResult<Json<DlqSummary>> {
    let queue = recovery(&state)?.dlq.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "EDGE_DLQ_URL is not set for the ops API",
        )
    })?;
    let unavailable = |e: shared::ports::dead_letters::QueueError| {
        ApiError::new(StatusCode::BAD_GATEWAY, "queue_unavailable", e.to_string())
    };
    let depth = queue.depth().await.map_err(unavailable)?;
    let mut messages = dlq::list(&*queue, DLQ_PAGE).await.map_err(unavailable)?;
    for m in &mut messages {
        // The page shows ids and reasons, never bodies.
        m.body.clear();
    }
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for m in &messages {
        *reasons.entry(m.reason.clone()).or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1));
    let archive = &recovery(&state)?.replayer.archive;
    let refused_at_edge = match refused_counts(&**archive, state.clock.now()).await {
        Ok(counts) => Some(counts),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the refused-delivery counters");
            None
        }
    };
    Ok(Json(DlqSummary {
        depth,
        messages,
        reasons,
        refused_at_edge,
    }))
}

pub async fn dlq_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        DLQ_JS,
    )
        .into_response()
}
