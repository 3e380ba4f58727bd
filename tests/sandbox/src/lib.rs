//! A local, offline stand-in for the ChargebackStop API and its webhooks, so the whole system
//! runs and is tested with no account and no network.
//!
//! Start it in-process with [`Sandbox::start`] (tests) or as the `cbs-sandbox` binary.

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod expiry;
pub mod fields;
pub mod gate;
pub mod matching;
pub mod model;
pub mod state;
pub mod webhooks;

use crate::error::ApiError;
use crate::model::{ApiKey, KeyScope, Mode, ALL_ABILITIES};
use crate::state::{App, Settings, SharedApp, Store};
pub use crate::state::{Faults, Profile};
use anyhow::Context;
use axum::response::IntoResponse;
use shared::secret::Secret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The webhook secret when none is configured (tests and the devstack pass their own).
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_sandbox";

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// An admin partner-group key of a TEST partner, with every ability.
    pub partner_key: Option<Secret>,
    /// The same for a LIVE partner.
    pub live_partner_key: Option<Secret>,
    pub webhook_urls: Vec<String>,
    pub webhook_secret: Secret,
    /// Scales the webhook retry schedule (0.001: 60 ms, 300 ms, ...).
    pub time_factor: f64,
    /// Requests per window per endpoint per organisation (or partner group): 100 per minute as
    /// documented; tests shorten the window to reach a fresh one quickly.
    pub rate_limit: u32,
    /// What "per endpoint" counts, where the docs are silent: `false`, a method and a path
    /// (GET and POST of `/v1/orders/` each have their own limit); `true`, the path alone.
    pub rate_limit_per_path: bool,
    pub rate_window: Duration,
    pub state_file: Option<PathBuf>,
    /// `Profile::Realistic`: every run starts (and every reset returns) with the realistic
    /// profile's faults, seeded with `seed`, so a whole test suite can be run under it.
    pub profile: Profile,
    pub seed: Option<u64>,
}

impl Config {
    /// The knobs the sandbox starts with and returns to on reset.
    pub fn start_faults(&self) -> Faults {
        let normal = Faults {
            seed: self.seed,
            ..Faults::normal()
        };
        match self.profile {
            Profile::None => normal,
            Profile::Realistic => normal.realistic(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            partner_key: None,
            live_partner_key: None,
            webhook_urls: Vec::new(),
            webhook_secret: Secret::new(DEFAULT_WEBHOOK_SECRET),
            time_factor: 1.0,
            rate_limit: 100,
            rate_limit_per_path: false,
            rate_window: Duration::from_secs(60),
            state_file: None,
            profile: Profile::None,
            seed: None,
        }
    }
}

/// A running sandbox. Dropping it stops the server without a final state save; prefer `stop`.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub app: SharedApp,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sandbox {
    pub async fn start(config: Config) -> anyhow::Result<Sandbox> {
        let mut store = match &config.state_file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading state file {}", path.display()))?;
                serde_json::from_str::<Store>(&text)
                    .with_context(|| format!("parsing state file {}", path.display()))?
            }
            _ => Store::default(),
        };
        store.rebuild_indexes();
        for (key, mode) in [
            (&config.partner_key, Mode::Test),
            (&config.live_partner_key, Mode::Live),
        ] {
            if let Some(key) = key.as_ref().filter(|k| !k.is_empty()) {
                if !store.keys.iter().any(|k| k.key == key.expose()) {
                    store.keys.push(admin_partner_key(key.expose(), mode));
                }
            }
        }
        for url in &config.webhook_urls {
            if !store.webhook_endpoints.contains(url) {
                store.webhook_endpoints.push(url.clone());
            }
        }

        let (tx, rx) = mpsc::unbounded_channel();
        let settings = Settings {
            webhook_secret: config.webhook_secret.clone(),
            time_factor: config.time_factor,
            rate_limit: config.rate_limit,
            rate_limit_per_path: config.rate_limit_per_path,
            rate_window: config.rate_window,
            state_file: config.state_file.clone(),
            start_faults: config.start_faults(),
        };
        let app: SharedApp = Arc::new(App::new(store, settings, tx));

        let mut tasks = vec![
            tokio::spawn(webhooks::dispatch(app.clone(), rx)),
            tokio::spawn(expiry::ticker(app.clone())),
        ];
        if let Some(path) = config.state_file.clone() {
            save_state(&app, &path);
            tasks.push(tokio::spawn(save_on_change(app.clone(), path)));
        }

        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        let router = router(app.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let result = axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "sandbox server stopped with an error");
            }
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            addr,
            app,
            shutdown: Some(shutdown),
            server: Some(server),
            tasks,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving, save the state file one last time, stop webhook delivery.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        if let Some(path) = &self.app.settings.state_file {
            save_state(&self.app, path);
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn admin_partner_key(key: &str, mode: Mode) -> ApiKey {
    ApiKey {
        id: model::new_id("key"),
        key: key.to_string(),
        scope: KeyScope::Partner {
            mode,
            admin: true,
            organisation_ids: Vec::new(),
            group_id: format!("{}-admin", mode.as_str().to_lowercase()),
        },
        abilities: ALL_ABILITIES.iter().map(|a| a.to_string()).collect(),
        expires_at: None,
    }
}

pub fn router(app: SharedApp) -> axum::Router {
    axum::Router::new()
        .merge(api::router(app.clone()))
        .merge(admin::router())
        .fallback(|| async { ApiError::not_found("Route").into_response() })
        .with_state(app)
}

/// Write the state file whenever something changed, at most every 50 ms.
async fn save_on_change(app: SharedApp, path: PathBuf) {
    loop {
        app.save.notified().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        save_state(&app, &path);
    }
}

fn save_state(app: &SharedApp, path: &PathBuf) {
    let text = match serde_json::to_string_pretty(&*app.store()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not serialise the sandbox state");
            return;
        }
    };
    let tmp = path.with_extension("tmp");
    let result = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        tracing::error!(error = %e, path = %path.display(), "could not write the sandbox state file");
    }
}

/// Run until Ctrl-C or SIGTERM; `on_listening` gets the bound address first.
pub async fn serve(config: Config, on_listening: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(config).await?;
    on_listening(sandbox.addr);
    shutdown_signal().await;
    tracing::info!("sandbox stopping");
    sandbox.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
