//! Polling until a part is ready: parts are "up" when they answer, never after a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `probe` every `interval` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}

/// Calls `probe` until it returns `Ok`; `Err(n)` is the work done so far. Fails only when `n`
/// has not grown for `stall`: for long work whose pace is the machine's (a backfill through the
/// emulator), where a fixed timeout is either flaky on a slow machine or slow to fail on a stuck
/// run.
pub async fn until_done_or_stalled<T, F, Fut>(
    what: &str,
    stall: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, u64>>,
{
    let mut best = 0u64;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        match probe().await {
            Ok(v) => return Ok(v),
            Err(n) if n > best => {
                best = n;
                last_progress = tokio::time::Instant::now();
            }
            Err(_) if last_progress.elapsed() >= stall => {
                anyhow::bail!("no progress for {stall:?} waiting for {what} (at {best})")
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A free 127.0.0.1 port (bound then released; the window for a clash is tiny).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// True once something answers HTTP at `url` (any status).
pub async fn http_answers(url: &str) -> bool {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(start_paused = true)]
    async fn slow_progress_is_waited_for_and_a_stall_fails() {
        // One unit every 10 s: a minute in all, three times the 20 s limit, waited through
        // because no gap between units reaches it.
        let n = AtomicU64::new(0);
        let started = tokio::time::Instant::now();
        let done = until_done_or_stalled("six units", Duration::from_secs(20), || {
            let now = started.elapsed().as_secs() / 10;
            n.store(now, Ordering::Relaxed);
            async move {
                if now >= 6 {
                    Ok(now)
                } else {
                    Err(now)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(done, 6);
        // Stuck at 2: fails 20 s after the last progress, naming what it waited for (an hour's
        // bound, so a wait that never gives up fails here instead of hanging).
        let started = tokio::time::Instant::now();
        let stuck = until_done_or_stalled("six units", Duration::from_secs(20), || {
            let now = (started.elapsed().as_secs() / 10).min(2);
            async move { Err::<u64, _>(now) }
        });
        let err = tokio::time::timeout(Duration::from_secs(3600), stuck)
            .await
            .expect("a stalled wait gives up")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no progress for 20s waiting for six units (at 2)"),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_secs(40));
        assert!(started.elapsed() < Duration::from_secs(41));
    }
}
