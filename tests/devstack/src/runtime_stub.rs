//! A Lambda runtime API stub for watching a function binary's init: it notes the function's
//! first `GET /2018-06-01/runtime/invocation/next` (the moment Lambda ends the init phase) and
//! never answers it. Used by `cbs-bench init` and the e2e `init_key_read`.
//!
//! A few lines over a `TcpListener` rather than an HTTP server crate: it only has to notice one
//! request line and hold the connection.

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

pub struct RuntimeApiStub {
    listener: TcpListener,
}

impl RuntimeApiStub {
    /// A stub on a free loopback port.
    pub async fn bind() -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind("127.0.0.1:0").await?,
        })
    }

    /// What Lambda sets for a function `name` talking to this stub (256 MB, `$LATEST`).
    pub fn lambda_env(&self, name: &str) -> std::io::Result<Vec<(String, String)>> {
        let port = self.listener.local_addr()?.port();
        Ok([
            ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
    }

    /// Waits for the function's first poll for an invocation. The connection comes back open
    /// and unanswered: keep it until the function is stopped.
    pub async fn first_poll(&self) -> std::io::Result<TcpStream> {
        loop {
            let (mut conn, _) = self.listener.accept().await?;
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).await?;
            let head = String::from_utf8_lossy(&buf[..n]);
            if head.starts_with("GET ") && head.contains("/runtime/invocation/next") {
                return Ok(conn);
            }
        }
    }
}
