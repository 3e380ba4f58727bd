//! In-memory archive and dead-letter queue, for unit tests only. Each can fail as the real
//! service does: refuse without storing, store and then answer with an error (a timeout after
//! the write), a delete that fails after the send went through.

use crate::ports::dead_letters::{DeadLetterMessage, DeadLetterQueue, MoveTaskStatus, QueueError};
use crate::ports::event_archive::{ArchivedDelivery, EventArchive};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryArchive {
    items: Mutex<BTreeMap<(String, String), ArchivedDelivery>>,
    counters: Mutex<HashMap<String, u64>>,
    /// The next N puts fail without storing (throttled).
    pub refuse_puts: Mutex<u32>,
    /// The next N puts store, then fail (a timeout after the write).
    pub fail_after_put: Mutex<u32>,
    /// Counters fail (the table is unreachable).
    pub counters_down: Mutex<bool>,
}

fn transient(op: &'static str) -> StoreError {
    StoreError::Transient {
        operation: op,
        table: "archive".into(),
        detail: "injected".into(),
    }
}

/// Spends one of `n` injected failures; false when none is left (also used by `memory_commit`).
pub(crate) fn take(n: &Mutex<u32>) -> bool {
    let mut n = n.lock().unwrap();
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

impl MemoryArchive {
    pub fn all(&self) -> Vec<ArchivedDelivery> {
        self.items.lock().unwrap().values().cloned().collect()
    }

    /// Whether the next write is refused (`refuse_puts`), counting it down.
    pub(crate) fn refuses_next(&self) -> bool {
        take(&self.refuse_puts)
    }

    /// Keeps `d` unless its event id and delivery id are kept already.
    pub(crate) fn keep_if_absent(&self, d: &ArchivedDelivery) {
        self.items
            .lock()
            .unwrap()
            .entry((d.event_id.clone(), d.delivery_id.clone()))
            .or_insert_with(|| d.clone());
    }
}

#[async_trait::async_trait]
impl EventArchive for MemoryArchive {
    async fn put(&self, d: &ArchivedDelivery) -> Result<bool, StoreError> {
        if take(&self.refuse_puts) {
            return Err(transient("archive delivery"));
        }
        let key = (d.event_id.clone(), d.delivery_id.clone());
        let stored = {
            let mut items = self.items.lock().unwrap();
            if items.contains_key(&key) {
                false
            } else {
                items.insert(key, d.clone());
                true
            }
        };
        if take(&self.fail_after_put) {
            return Err(transient("archive delivery"));
        }
        Ok(stored)
    }

    async fn deliveries_of(&self, event_id: &str) -> Result<Vec<ArchivedDelivery>, StoreError> {
        let mut out: Vec<_> = self
            .all()
            .into_iter()
            .filter(|d| d.event_id == event_id)
            .collect();
        out.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        Ok(out)
    }

    async fn received_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<ArchivedDelivery>, StoreError> {
        let (from, to) = (
            crate::ports::event_log::iso(since),
            crate::ports::event_log::iso(until),
        );
        let mut out: Vec<_> = self
            .all()
            .into_iter()
            .filter(|d| d.received_at >= from && d.received_at < to)
            .collect();
        out.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        Ok(out)
    }

    async fn count_dead_letter(&self, kind: &str) -> Result<u64, StoreError> {
        if *self.counters_down.lock().unwrap() {
            return Err(transient("count dead letter"));
        }
        let mut c = self.counters.lock().unwrap();
        let n = c.entry(kind.to_string()).or_default();
        *n += 1;
        Ok(*n)
    }

    async fn dead_letter_count(&self, kind: &str) -> Result<u64, StoreError> {
        if *self.counters_down.lock().unwrap() {
            return Err(transient("read dead-letter counter"));
        }
        Ok(self
            .counters
            .lock()
            .unwrap()
            .get(kind)
            .copied()
            .unwrap_or(0))
    }

    async fn reset_dead_letter_counts(&self) -> Result<(), StoreError> {
        self.counters.lock().unwrap().retain(|kind, _| {
            kind.starts_with(crate::ports::event_archive::REFUSED_COUNTER_PREFIX)
        });
        Ok(())
    }
}

/// A FIFO dead-letter queue and its source queue. Receiving hides a message for `hide_secs`
/// (on a step clock: `tick` moves time), deduplication on the source drops a second send with
/// the same id (as SQS does within five minutes).
#[derive(Debug, Default)]
pub struct MemoryDeadLetterQueue {
    state: Mutex<DlqState>,
    /// The next N deletes fail after... nothing: the send before them went through.
    pub fail_deletes: Mutex<u32>,
    /// The next N sends fail (the source queue refused).
    pub fail_sends: Mutex<u32>,
    /// Runs SQS move tasks (StartMessageMoveTask), as real SQS does; off: as the emulator.
    pub runs_move_tasks: Mutex<bool>,
    /// A move task stops FAILED after moving this many.
    pub move_task_fails_after: Mutex<Option<u64>>,
}

#[derive(Debug, Default)]
struct DlqState {
    now: u64,
    /// (message, visible again at, receipt counter)
    dlq: Vec<(DeadLetterMessage, u64)>,
    receipts: u64,
    source: Vec<DeadLetterMessage>,
    dedup_ids: Vec<String>,
    /// The move task started, and where it stands.
    task: Option<(String, MoveTaskStatus)>,
}

impl MemoryDeadLetterQueue {
    pub fn push(&self, m: DeadLetterMessage) {
        self.state.lock().unwrap().dlq.push((m, 0));
    }
    /// Lets `secs` pass: hidden messages come back.
    pub fn tick(&self, secs: u64) {
        self.state.lock().unwrap().now += secs;
    }
    pub fn source(&self) -> Vec<DeadLetterMessage> {
        self.state.lock().unwrap().source.clone()
    }
    pub fn remaining(&self) -> usize {
        self.state.lock().unwrap().dlq.len()
    }
}

fn qerr(op: &'static str) -> QueueError {
    QueueError::Failed {
        operation: op,
        queue: "dlq".into(),
        detail: "injected".into(),
    }
}

#[async_trait::async_trait]
impl DeadLetterQueue for MemoryDeadLetterQueue {
    async fn start_move_task(&self) -> Result<Option<String>, QueueError> {
        if !*self.runs_move_tasks.lock().unwrap() {
            return Ok(None);
        }
        let mut s = self.state.lock().unwrap();
        let to_move = s.dlq.len() as u64;
        let handle = format!("task-{}", s.receipts);
        s.task = Some((
            handle.clone(),
            MoveTaskStatus {
                status: "RUNNING".into(),
                moved: 0,
                to_move: Some(to_move),
                failure_reason: None,
            },
        ));
        Ok(Some(handle))
    }

    /// The task moves everything (or stops FAILED after `move_task_fails_after`) by the time
    /// it is first asked about; a second look sees it finished.
    async fn move_task_status(&self, task: &str) -> Result<MoveTaskStatus, QueueError> {
        let fail_after = *self.move_task_fails_after.lock().unwrap();
        let mut s = self.state.lock().unwrap();
        let Some((handle, status)) = s.task.clone() else {
            return Err(qerr("ListMessageMoveTasks"));
        };
        if handle != task {
            return Err(qerr("ListMessageMoveTasks"));
        }
        if !status.is_running() {
            return Ok(status);
        }
        let mut moved = 0;
        while !s.dlq.is_empty() && fail_after.is_none_or(|n| moved < n) {
            let (m, _) = s.dlq.remove(0);
            s.source.push(m);
            moved += 1;
        }
        let done = MoveTaskStatus {
            status: if s.dlq.is_empty() {
                "COMPLETED"
            } else {
                "FAILED"
            }
            .into(),
            moved,
            to_move: status.to_move,
            failure_reason: (!s.dlq.is_empty()).then(|| "AWS.SimpleQueueService.Injected".into()),
        };
        s.task = Some((handle, done.clone()));
        Ok(MoveTaskStatus {
            status: "RUNNING".into(),
            ..done
        })
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.state.lock().unwrap().dlq.len() as u64)
    }

    async fn receive(
        &self,
        max: u32,
        hide_secs: u32,
    ) -> Result<Vec<DeadLetterMessage>, QueueError> {
        let mut s = self.state.lock().unwrap();
        let now = s.now;
        let mut out = Vec::new();
        let mut receipts = s.receipts;
        for (m, visible_at) in s.dlq.iter_mut() {
            if out.len() as u32 >= max {
                break;
            }
            if *visible_at <= now {
                receipts += 1;
                m.receive_count += 1;
                m.receipt_handle = format!("{}#{}", m.message_id, receipts);
                *visible_at = now + u64::from(hide_secs);
                out.push(m.clone());
            }
        }
        s.receipts = receipts;
        Ok(out)
    }

    async fn send_to_source(&self, m: &DeadLetterMessage, dedup: &str) -> Result<(), QueueError> {
        if take(&self.fail_sends) {
            return Err(qerr("SendMessage"));
        }
        let mut s = self.state.lock().unwrap();
        if !s.dedup_ids.iter().any(|d| d == dedup) {
            s.dedup_ids.push(dedup.to_string());
            s.source.push(m.clone());
        }
        Ok(())
    }

    async fn release(&self, m: &DeadLetterMessage) -> Result<(), QueueError> {
        let mut s = self.state.lock().unwrap();
        let now = s.now;
        for (x, visible_at) in s.dlq.iter_mut() {
            if x.receipt_handle == m.receipt_handle {
                *visible_at = now;
            }
        }
        Ok(())
    }

    async fn delete(&self, m: &DeadLetterMessage) -> Result<(), QueueError> {
        if take(&self.fail_deletes) {
            return Err(qerr("DeleteMessage"));
        }
        let mut s = self.state.lock().unwrap();
        // Only the latest receipt deletes, as in SQS.
        s.dlq.retain(|(x, _)| x.receipt_handle != m.receipt_handle);
        Ok(())
    }
}
