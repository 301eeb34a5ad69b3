//! The live web UI (`--web`), served by axum: the report page, fed once a
//! second by server-sent events (`/events`), with Locust's controls —
//! change users and spawn rate (closed model) or the arrival rate (open
//! model), stop, reset statistics — and downloads of the report and the
//! CSV files, plus `/metrics`. Every control needs the run's token (the
//! printed URL carries it, the page sends it), must come as JSON from the
//! page's own origin (no cross-site form can post one) and stays within
//! what the run was sized for ([`live::Bounds`]); on loopback (the default)
//! the read-only pages need no token, on any other address every request
//! does. Served by the hardened loop of [`super::serve`].

pub mod live;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;

use super::prometheus::RunMetrics;
use super::serve::ServerLimits;
use crate::schedule::LoadChange;
use live::{LoadState, Published};

/// The state every handler shares.
#[derive(Clone)]
struct App {
    published: Arc<Published>,
    token: Arc<str>,
    /// Bound to a loopback address: the read-only pages need no token.
    open_reads: bool,
    metrics: Arc<RunMetrics>,
    change: Arc<watch::Sender<Option<LoadChange>>>,
}

/// A running web UI; dropped, it stops.
#[derive(Debug)]
pub struct WebServer {
    pub address: SocketAddr,
    /// The address to open, with the token (`?token=...`).
    pub url: String,
    pub published: Arc<Published>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Refusal = (StatusCode, String);

/// The slowest spawn or arrival rate a control takes (one in 1000 s).
const MIN_SPAWN_RATE: f64 = 0.001;
/// The fastest spawn rate a control takes.
const MAX_SPAWN_RATE: f64 = 1_000_000.0;

/// True when the request names this machine's loopback address as its
/// Host (`127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT`): a page whose own
/// DNS name was rebound to 127.0.0.1 sends its own name, and is refused.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Refusal {
    (status, why.into())
}

/// A random token for the web UI: 32 letters and digits.
pub fn random_token() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect()
}

/// `given == token`, in a time that does not depend on where they differ.
fn same_token(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Every request: the token, except a read-only one on loopback; a
/// control: JSON, and from the page's own origin.
async fn guard(
    State(app): State<App>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let given = query
        .get("token")
        .map(String::as_str)
        .or_else(|| headers.get("x-horde-token").and_then(|v| v.to_str().ok()));
    let authorized = given.is_some_and(|given| same_token(given, &app.token));
    let read = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !authorized {
        if !app.open_reads {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "this Horde web UI listens beyond loopback, so every request needs its token: \
                 open the URL `horde` printed at the start (it ends in ?token=...)",
            )
            .into_response();
        }
        if !loopback_host(headers) {
            return refuse(
                StatusCode::FORBIDDEN,
                "without its token this web UI answers only requests to its loopback address \
                 (http://127.0.0.1:PORT or http://localhost:PORT); open the URL `horde` printed \
                 at the start (it ends in ?token=...)",
            )
            .into_response();
        }
        if !read {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the controls of this Horde web UI need its token: open the URL `horde` printed \
                 at the start (it ends in ?token=...), or send the token in an X-Horde-Token \
                 header (--web-token or HORDE_WEB_TOKEN sets your own)",
            )
            .into_response();
        }
    }
    if !read && let Err(refusal) = same_origin_json(headers) {
        return refusal.into_response();
    }
    next.run(request).await
}

fn same_origin_json(headers: &HeaderMap) -> Result<(), Refusal> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "controls take a JSON body (Content-Type: application/json)",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_host != host {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!("a control from another origin ({origin}) is refused"),
            ));
        }
    }
    Ok(())
}

async fn page() -> Html<String> {
    Html(super::html::render(
        &serde_json::json!({"live_page": true}),
        true,
    ))
}

async fn events(State(app): State<App>) -> impl IntoResponse {
    let stream = WatchStream::new(app.published.document.subscribe())
        .map(|document| Ok::<_, Infallible>(Event::default().data(&*document)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn latest(app: &App) -> Result<live::Latest, Refusal> {
    app.published
        .latest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the run has not reported its first second yet; try again in a moment",
            )
        })
}

fn attachment(content_type: &str, name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn report_html(State(app): State<App>) -> Result<Response, Refusal> {
    let mut document = (*latest(&app)?.document).clone();
    if let Some(object) = document.as_object_mut() {
        object.remove("live");
    }
    let page = super::html::render(&document, false);
    Ok(attachment(
        "text/html; charset=utf-8",
        "horde-report.html",
        page.into_bytes(),
    ))
}

async fn csv_file(app: &App, which: &str) -> Result<Response, Refusal> {
    let latest = latest(app)?;
    let report = &latest.report;
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = match which {
        "stats" => super::csv::write_stats(&mut out, report),
        "failures" => super::csv::write_failures(&mut out, report, &latest.seen),
        _ => super::csv::write_exceptions(&mut out, report),
    };
    let body = written
        .and_then(|()| out.into_inner().map_err(|e| anyhow::anyhow!("{e}")))
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(attachment(
        "text/csv; charset=utf-8",
        &format!("horde_{which}.csv"),
        body,
    ))
}

fn running(app: &App) -> Result<Arc<crate::vu::RunContext>, Refusal> {
    let run = app
        .published
        .run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| refuse(StatusCode::SERVICE_UNAVAILABLE, "the run is still starting"))?;
    if run.stopping() {
        return Err(refuse(StatusCode::CONFLICT, "the run has ended"));
    }
    Ok(run)
}

#[derive(Debug, Deserialize)]
struct UsersChange {
    users: u32,
    spawn_rate: f64,
}

#[derive(Debug, Deserialize)]
struct RateChange {
    rate: f64,
}

fn apply(app: &App, change: LoadChange) {
    let mut load = app.published.load.lock().unwrap_or_else(|e| e.into_inner());
    *load = load.changed(change);
    app.change.send_replace(Some(change));
}

async fn change_users(
    State(app): State<App>,
    axum::Json(change): axum::Json<UsersChange>,
) -> Result<StatusCode, Refusal> {
    running(&app)?;
    if matches!(
        app.published.load.lock().map(|l| *l),
        Ok(LoadState::Open { .. })
    ) {
        return Err(refuse(
            StatusCode::CONFLICT,
            "this run uses the open model: change its arrival rate instead",
        ));
    }
    let bounds = app.published.bounds();
    if change.users > bounds.users {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "users must be at most {} in this run ({}); the run's users stay as they are",
                bounds.users, bounds.users_reason
            ),
        ));
    }
    if !(change.spawn_rate.is_finite()
        && (MIN_SPAWN_RATE..=MAX_SPAWN_RATE).contains(&change.spawn_rate))
    {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "spawn_rate must be between {MIN_SPAWN_RATE} and {MAX_SPAWN_RATE} users per \
                 second, e.g. 10"
            ),
        ));
    }
    apply(
        &app,
        LoadChange::Users {
            users: change.users,
            spawn_rate: change.spawn_rate,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn change_rate(
    State(app): State<App>,
    axum::Json(change): axum::Json<RateChange>,
) -> Result<StatusCode, Refusal> {
    running(&app)?;
    if !matches!(
        app.published.load.lock().map(|l| *l),
        Ok(LoadState::Open { .. })
    ) {
        return Err(refuse(
            StatusCode::CONFLICT,
            "this run uses the closed model: change its users instead",
        ));
    }
    if !(change.rate.is_finite()
        && (MIN_SPAWN_RATE..=crate::cli::MAX_ARRIVAL_RATE).contains(&change.rate))
    {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "rate must be between {MIN_SPAWN_RATE} and {} iterations per second, e.g. 50",
                crate::cli::MAX_ARRIVAL_RATE
            ),
        ));
    }
    let bounds = app.published.bounds();
    if change.rate > bounds.rate {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "rate must be at most {} iterations per second in this run ({}); the run's rate \
                 stays as it is",
                bounds.rate, bounds.rate_reason
            ),
        ));
    }
    apply(&app, LoadChange::Rate { rate: change.rate });
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(State(app): State<App>) -> Result<StatusCode, Refusal> {
    running(&app)?.request_stop("stopped from the web UI".into());
    Ok(StatusCode::NO_CONTENT)
}

/// Start the live view's figures over; the run's report still covers the
/// whole run.
async fn reset(State(app): State<App>) -> Result<StatusCode, Refusal> {
    running(&app)?.stats.reset();
    Ok(StatusCode::NO_CONTENT)
}

/// Listen on `address` and serve the web UI within `limits`; `token` (a
/// random one when `None`) is needed by the controls, and off loopback by
/// every request; `change` carries the controls to the executors.
pub async fn serve(
    address: SocketAddr,
    token: Option<String>,
    load: LoadState,
    metrics: Arc<RunMetrics>,
    change: watch::Sender<Option<LoadChange>>,
    limits: ServerLimits,
) -> Result<WebServer> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!(
                "--web={address}: cannot listen there (is the port in use, or the address not \
                 this machine's?); choose another, e.g. --web=127.0.0.1:0 for a free port"
            )
        })?;
    let address = listener.local_addr()?;
    let published = Published::new(load);
    let token = token.unwrap_or_else(random_token);
    let app = App {
        published: published.clone(),
        token: Arc::from(token.as_str()),
        open_reads: address.ip().is_loopback(),
        metrics,
        change: Arc::new(change),
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/report.html", get(report_html))
        .route(
            "/stats.csv",
            get(|State(app): State<App>| async move { csv_file(&app, "stats").await }),
        )
        .route(
            "/failures.csv",
            get(|State(app): State<App>| async move { csv_file(&app, "failures").await }),
        )
        .route(
            "/exceptions.csv",
            get(|State(app): State<App>| async move { csv_file(&app, "exceptions").await }),
        )
        .route(
            "/metrics",
            get(|State(app): State<App>| async move {
                super::server::metrics(State(app.metrics.clone())).await
            }),
        )
        .route("/api/users", post(change_users))
        .route("/api/rate", post(change_rate))
        .route("/api/stop", post(stop))
        .route("/api/reset", post(reset))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app);
    let task = super::serve::spawn(listener, router, limits);
    let shown = if address.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), address.port())
    } else {
        address
    };
    let url = format!("http://{shown}/?token={token}");
    Ok(WebServer {
        address,
        url,
        published,
        task,
    })
}
