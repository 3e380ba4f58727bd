//! Where reconciliation keeps its place per organisation between runs (the `cursors` table).

use super::store_error::StoreError;
use crate::records::reconcile::ReconcileCursor;

#[async_trait::async_trait]
pub trait CursorStore: Send + Sync {
    /// Every stored reconciliation cursor (one small item per organisation). Items that do not
    /// decode are skipped (logged): the organisation then starts a fresh pass.
    async fn reconcile_cursors(&self) -> Result<Vec<ReconcileCursor>, StoreError>;

    /// Saves one cursor (last write wins: a cursor is a place to resume from, and reading a
    /// page twice is harmless).
    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError>;
}
