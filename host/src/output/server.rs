//! The `--prometheus` server (axum on the hardened loop of
//! [`super::serve`]): `/metrics` for Prometheus. It listens from before the
//! first VU starts until the run's results are final.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::prometheus::RunMetrics;
use super::serve::ServerLimits;

/// The OpenMetrics text format's content type (Prometheus negotiates it).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) async fn metrics(State(metrics): State<Arc<RunMetrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.encode())
}

/// A running server; dropped, it stops.
#[derive(Debug)]
pub struct Server {
    /// The address it listens on (the chosen port when asked for port 0).
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listen on `address` and serve `/metrics` from `run_metrics` within
/// `limits`. Fails when the address cannot be bound (in use, not this
/// machine's).
pub async fn serve_metrics(
    address: SocketAddr,
    run_metrics: Arc<RunMetrics>,
    limits: ServerLimits,
) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!(
                "--prometheus {address}: cannot listen there (is the port in use, or the \
                 address not this machine's?); choose another, or port 0 for a free one"
            )
        })?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(run_metrics);
    let task = super::serve::spawn(listener, app, limits);
    Ok(Server { address, task })
}
