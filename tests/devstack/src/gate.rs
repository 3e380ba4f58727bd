//! A TCP gate: a small proxy in front of the AWS emulator that can be closed (every open
//! connection cut, new ones refused at once, as when a network path or the service is down) and
//! opened again. The Worker reaches SQS through one gate, the functions reach DynamoDB through
//! another, so "SQS unreachable at the edge" and "DynamoDB unreachable" are faults of the real
//! binaries' real network calls.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Gate {
    pub name: String,
    addr: SocketAddr,
    upstream: Arc<OnceLock<SocketAddr>>,
    open: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<GateStats>>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GateStats {
    /// How many times the gate was closed.
    pub closed: u64,
    pub connections: u64,
    pub refused: u64,
    pub cut: u64,
}

impl Gate {
    /// Listens on a free loopback port; forwards once [`Gate::set_upstream`] names the target.
    pub async fn bind(name: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
        let (open, _) = watch::channel(true);
        let stats = Arc::new(Mutex::new(GateStats::default()));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            open.clone(),
            stats.clone(),
        ));
        Ok(Self {
            name: name.to_string(),
            addr,
            upstream,
            open,
            task,
            stats,
        })
    }

    /// `http://127.0.0.1:<port>`: the endpoint to hand to the parts behind the gate.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where to forward (`http://127.0.0.1:<port>` of the emulator); the first call wins.
    pub fn set_upstream(&self, endpoint: &str) -> anyhow::Result<()> {
        let host_port = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let addr: SocketAddr = host_port.parse()?;
        let _ = self.upstream.set(addr);
        Ok(())
    }

    pub fn close(&self) {
        tracing::info!(gate = %self.name, "gate closed");
        if let Ok(mut s) = self.stats.lock() {
            s.closed += 1;
        }
        // send_replace: the value changes even when no connection is open to be told.
        self.open.send_replace(false);
    }

    pub fn open(&self) {
        tracing::info!(gate = %self.name, "gate open");
        self.open.send_replace(true);
    }

    pub fn stats(&self) -> GateStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(url: &str) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(url.trim_start_matches("http://")).await?;
        s.write_all(b"ping").await?;
        let mut buf = vec![0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn a_closed_gate_refuses_and_cuts_then_opens_again() {
        let upstream = echo_server().await;
        let gate = Gate::bind("test").await.unwrap();
        gate.set_upstream(&format!("http://{upstream}")).unwrap();
        assert_eq!(round_trip(&gate.url()).await.unwrap(), b"ping");

        // A connection open before the gate closes is cut.
        let mut open = TcpStream::connect(gate.addr).await.unwrap();
        open.write_all(b"a").await.unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.unwrap();
        gate.close();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let cut = open.read(&mut one).await;
        assert!(matches!(cut, Ok(0) | Err(_)), "{cut:?}");
        assert!(round_trip(&gate.url()).await.is_err());

        gate.open();
        assert_eq!(round_trip(&gate.url()).await.unwrap(), b"ping");
        let stats = gate.stats();
        assert!(stats.refused >= 1 && stats.cut >= 1, "{stats:?}");
    }

    /// Closing when no connection is open (no one to tell) must still close the gate.
    #[tokio::test]
    async fn closing_with_no_connection_open_still_refuses() {
        let upstream = echo_server().await;
        let gate = Gate::bind("test").await.unwrap();
        gate.set_upstream(&format!("http://{upstream}")).unwrap();
        gate.close();
        assert!(round_trip(&gate.url()).await.is_err());
        gate.open();
        assert_eq!(round_trip(&gate.url()).await.unwrap(), b"ping");
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<OnceLock<SocketAddr>>,
    open: watch::Sender<bool>,
    stats: Arc<Mutex<GateStats>>,
) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let count = |f: fn(&mut GateStats)| {
            if let Ok(mut s) = stats.lock() {
                f(&mut s)
            }
        };
        let target = upstream.get().copied();
        if !*open.borrow() || target.is_none() {
            count(|s| s.refused += 1);
            // Reset, not a clean close: the caller sees the connection fail at once.
            let _ = inbound.set_zero_linger();
            drop(inbound);
            continue;
        }
        count(|s| s.connections += 1);
        let mut closed = open.subscribe();
        let stats = stats.clone();
        tokio::spawn(async move {
            let Some(target) = target else { return };
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let mut inbound = inbound;
            let mut outbound = outbound;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = closed.wait_for(|open| !*open) => {
                    if let Ok(mut s) = stats.lock() {
                        s.cut += 1;
                    }
                    let _ = inbound.set_zero_linger();
                }
            }
        });
    }
}
