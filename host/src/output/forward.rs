//! Live results to an aggregator (`horde run --report-to URL`): the same
//! records a result file holds (header, one per second, end) are POSTed as
//! JSON to `horde aggregate`, in order, from a task of their own so a slow
//! or unreachable aggregator never holds up the run. Each record is signed
//! with the run's segment token, and only an answer signed with it is
//! believed ([`crate::segment_token`]); such an answer may stop the run (a
//! threshold with `abortOnFail` failed on the merged results). An aggregator that cannot be reached is warned about
//! once; the segment goes on, and its own outputs (`--out`) keep its results.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Sink;
use super::result_file::{End, Header, Record, Second};
use crate::RunOutcome;
use crate::segment_token::{SIGNATURE_HEADER, SegmentToken};
use crate::stats::Tick;
use crate::vu::RunContext;

/// Records waiting to be sent; older seconds are dropped beyond it (an
/// aggregator that is down for an hour).
const QUEUE: usize = 3600;
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of the run waits for the last records to go out.
const FINISH_WAIT: Duration = Duration::from_secs(10);

/// What a segment sends: its id (from the header's answer), the record's
/// place in its stream (0 the header, then 1, 2, ... each second, then the
/// end), so a record sent again after a lost answer counts once, and the
/// record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub id: u64,
    #[serde(default)]
    pub seq: u64,
    /// The session key the aggregator gave this segment when it took its
    /// header: only this segment's records carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub record: Record,
}

/// How the stop reason of a run the aggregator stopped begins.
pub const STOPPED_BY_AGGREGATOR: &str = "stopped by the aggregator";

/// How long a segment waits for the aggregator to accept it before the load
/// starts (a refused segment does not run).
const REGISTER_WAIT: Duration = Duration::from_secs(10);

/// The aggregator's answer to every POST.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    /// The segment's id (the answer to its header).
    pub id: Option<u64>,
    /// Stop the run: a threshold failed on the merged results.
    pub abort: Option<String>,
    /// The segment was refused (another scenario, an overlapping segment)
    /// or given up on: stop sending.
    pub refused: Option<String>,
    /// The answer to a header: the session key the segment's later
    /// records carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// Largest answer a segment reads from its aggregator (Horde's answers are
/// a few hundred bytes).
const MAX_ANSWER: usize = 64 << 10;

/// POST `body` to `url`, signed with `token`, and read the aggregator's
/// answer: at most 64 KiB, and believed only when it is signed with the
/// token for this very request (whoever else answers is not obeyed).
async fn post(
    url: &url::Url,
    body: Vec<u8>,
    token: &SegmentToken,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Answer> {
    let host = url.host_str().context("the aggregator URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let signature = token.sign(&body);
    let request = hyper::Request::post(url.as_str())
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, &signature)
        .body(Full::new(Bytes::from(body)))?;
    let response = match tls {
        Some(config) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let stream = crate::segment_tls::connect(config.clone(), host, port).await?;
            exchange(stream, request).await?
        }
        None => exchange(tokio::net::TcpStream::connect((host, port)).await?, request).await?,
    };
    let status = response.status();
    let answer_signature = response
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("the answer is longer than {MAX_ANSWER} bytes ({e})"))?
        .to_bytes();
    if !token.verify_answer(&signature, &body, answer_signature.as_deref()) {
        bail!(
            "HTTP {status}: the answer is not signed with this run's segment token: is another \
             program listening there, or was the aggregator given another token? ({})",
            crate::output::printable(&String::from_utf8_lossy(&body[..body.len().min(200)]))
        );
    }
    if !status.is_success() && status != hyper::StatusCode::CONFLICT {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).context("the aggregator's answer is not Horde's")
}

/// Send `request` on a new HTTP/1.1 connection over `stream`.
async fn exchange<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}

/// Where and how a segment reports: the aggregator's URL, the run's
/// segment token, and the TLS settings for an `https://` URL.
#[derive(Debug, Clone)]
pub struct ReportTo {
    pub url: url::Url,
    pub token: SegmentToken,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The sink: hands records to the sending task.
pub struct Forwarder {
    url: url::Url,
    records: mpsc::Sender<Record>,
    /// Told when the end record went out (true) or sending gave up (false).
    done: Option<std::sync::mpsc::Receiver<bool>>,
}

/// What the aggregator said to a segment's header.
pub enum Registration {
    Accepted,
    /// The segment must not run (another scenario, an overlapping segment).
    Refused(String),
    /// No answer: the segment runs alone (its own outputs keep its results).
    Unreachable(String),
}

impl Forwarder {
    /// Start sending to `url` (`horde aggregate`'s address), header first;
    /// the receiver learns what the aggregator made of the header.
    pub fn start(
        to: ReportTo,
        header: Header,
        run: Arc<RunContext>,
    ) -> (Forwarder, tokio::sync::oneshot::Receiver<Registration>) {
        let url = to.url.clone();
        let (records, queue) = mpsc::channel::<Record>(QUEUE);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (registered, registration) = tokio::sync::oneshot::channel();
        tokio::spawn(send_all(to, header, run, queue, registered, done_tx));
        let forwarder = Forwarder {
            url,
            records,
            done: Some(done),
        };
        (forwarder, registration)
    }

    /// Wait (at most 10 s) for the aggregator to accept this segment: an
    /// error when it refused it, a warning when it did not answer.
    pub async fn registered(
        registration: tokio::sync::oneshot::Receiver<Registration>,
        url: &url::Url,
    ) -> Result<()> {
        match tokio::time::timeout(REGISTER_WAIT, registration).await {
            Ok(Ok(Registration::Accepted)) => Ok(()),
            Ok(Ok(Registration::Refused(why))) => bail!(
                "the aggregator at {url} refused this segment, so it does not run: {}",
                crate::output::printable(&why)
            ),
            Ok(Ok(Registration::Unreachable(why))) => {
                eprintln!(
                    "warning: cannot reach the aggregator at {url} ({why}); this segment runs \
                     alone, retrying each second; its own outputs (--out) keep its results"
                );
                Ok(())
            }
            _ => {
                eprintln!(
                    "warning: the aggregator at {url} did not answer within {} s; this segment \
                     runs, and keeps trying",
                    REGISTER_WAIT.as_secs()
                );
                Ok(())
            }
        }
    }
}

/// Send the header, then every record in order, each until it is answered.
async fn send_all(
    to: ReportTo,
    header: Header,
    run: Arc<RunContext>,
    mut queue: mpsc::Receiver<Record>,
    registered: tokio::sync::oneshot::Sender<Registration>,
    done: std::sync::mpsc::Sender<bool>,
) {
    let ReportTo { url, token, tls } = to;
    let endpoint = url.join("segments").unwrap_or(url.clone());
    let mut registered = Some(registered);
    let (mut id, mut seq) = (None, 0u64);
    let mut session: Option<String> = None;
    let mut pending: Option<Record> = Some(Record::Header(header));
    let delivered = loop {
        let record = match pending.take() {
            Some(record) => record,
            None => match queue.recv().await {
                Some(record) => record,
                None => break false,
            },
        };
        let is_end = matches!(record, Record::End(_));
        let envelope = Envelope {
            id: id.unwrap_or(0),
            seq,
            session: session.clone(),
            record: record.clone(),
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        match tokio::time::timeout(POST_TIMEOUT, post(&endpoint, body, &token, tls.as_ref())).await
        {
            Ok(Ok(answer)) => {
                if let Some(why) = answer.refused {
                    match registered.take() {
                        Some(tell) => {
                            let _ = tell.send(Registration::Refused(why));
                        }
                        None => eprintln!(
                            "warning: the aggregator at {url} no longer takes this segment: {}; \
                             its results stay in this run's own outputs",
                            crate::output::printable(&why)
                        ),
                    }
                    break false;
                }
                if let Some(tell) = registered.take() {
                    let _ = tell.send(Registration::Accepted);
                }
                id = answer.id.or(id);
                session = answer.session.or(session);
                seq += 1;
                if let Some(reason) = answer.abort {
                    run.request_stop(format!("{STOPPED_BY_AGGREGATOR}: {reason}"));
                }
                if is_end {
                    break true;
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(error)) => format!("{error:#}"),
                    _ => "no answer within 5 s".into(),
                };
                if let Some(tell) = registered.take() {
                    let _ = tell.send(Registration::Unreachable(why));
                }
                // Never reached and the run is over: nothing to wait for.
                if id.is_none() && run.stopping() {
                    break false;
                }
                // Try again with the same record (it carries its place, so
                // the aggregator counts it once).
                pending = Some(record);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let _ = done.send(delivered);
}

impl Sink for Forwarder {
    fn tick(&mut self, tick: &Tick) {
        // A full queue (the aggregator is long gone) drops the second.
        let _ = self.records.try_send(Record::Second(Second::of(tick)));
    }

    fn finish(&mut self, outcome: &RunOutcome) -> Result<()> {
        let _ = self.records.try_send(Record::End(End {
            duration_s: outcome.report.duration_s,
            users: outcome.report.users,
            stop_reason: outcome.stop_reason.clone(),
            interrupted_users: outcome.interrupted_users,
            exit_code: outcome.exit_code(),
        }));
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if let Some(done) = self.done.take()
            && multi_thread
        {
            // The sending task runs on the runtime's other threads.
            let delivered = tokio::task::block_in_place(|| done.recv_timeout(FINISH_WAIT));
            if delivered != Ok(true) {
                eprintln!(
                    "warning: the aggregator at {} did not get all of this segment's results; \
                     they are in this run's own outputs only (--out keeps them for horde merge)",
                    self.url
                );
            }
        }
        Ok(())
    }
}
