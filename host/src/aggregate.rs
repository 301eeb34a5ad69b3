//! `horde aggregate`: merge the execution segments of a run as they run.
//! Segments started with `--report-to URL` POST their result-file records
//! (header, one per second, end) to it, each signed with the run's segment
//! token (a record from anyone else is refused and counted; a segment's
//! records carry the session key it was given, so only it can send its
//! seconds and its end); it checks the records are what a run writes and
//! that the segments belong together,
//! adds each second up once every live segment has sent it, prints the
//! live line, evaluates thresholds on the merged results every second (a
//! failing `abortOnFail` threshold stops every segment through its next
//! answer), gives up on a segment silent for `--timeout`, and writes the
//! reports when all are done, with `horde run`'s exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use tokio::sync::watch;

use crate::merge::{Combined, MergeRequest};
use crate::output::forward::{Answer, Envelope};
use crate::output::result_check::{Caps, check_end, check_second};
use crate::output::result_file::{FORMAT, ReadFile, Record, Second, VERSION};
use crate::segment_token::{SIGNATURE_HEADER, SegmentToken, TOKEN_VARIABLE};
use crate::{BadInput, RunOutcome};

/// What `horde aggregate` was asked for.
#[derive(Debug, Clone)]
pub struct AggregateRequest {
    pub listen: SocketAddr,
    /// Segments to wait for.
    pub expect: usize,
    /// A segment silent this long is given up on.
    pub timeout: Duration,
    /// Thresholds and outputs, as `horde merge` takes them (no files).
    pub merge: MergeRequest,
    pub quiet: bool,
    /// The run's segment token: records not signed with it are refused.
    pub token: SegmentToken,
    /// Serve segments over TLS with these settings (`--tls-cert`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// One segment as received so far.
struct Part {
    file: ReadFile,
    /// The key this segment's records carry (handed out with its id).
    session: String,
    last_heard: Instant,
    /// Given up on: silent past the timeout.
    lost: bool,
}

struct Aggregator {
    request: AggregateRequest,
    parts: Vec<Part>,
    combined: Option<Combined>,
    abort: Option<String>,
    notes: Vec<String>,
    /// When the first segment registered.
    first_seen: Option<Instant>,
    /// Segments that had not come within --timeout of the first are no
    /// longer waited for.
    gave_up_waiting: bool,
    /// Requests refused: not signed with the run's token, or carrying
    /// another segment's id without its session key.
    strangers: u64,
}

impl Aggregator {
    fn new(request: AggregateRequest) -> Aggregator {
        Aggregator {
            request,
            parts: Vec::new(),
            combined: None,
            abort: None,
            notes: Vec::new(),
            first_seen: None,
            gave_up_waiting: false,
            strangers: 0,
        }
    }

    /// A segment is done when it sent its end or was given up on.
    fn done(part: &Part) -> bool {
        part.file.end.is_some() || part.lost
    }

    fn all_done(&self) -> bool {
        self.parts.len() >= self.request.expect && self.parts.iter().all(Self::done)
    }

    fn register(&mut self, file: ReadFile) -> Result<(u64, String), String> {
        // The same header again: its answer was lost, the segment asks
        // again and gets the same id and key.
        if let Some((index, part)) = self
            .parts
            .iter()
            .enumerate()
            .find(|(_, p)| p.file.header == file.header)
        {
            return Ok((index as u64 + 1, part.session.clone()));
        }
        let expect = self.request.expect;
        if let Err(error) = crate::output::result_check::check_header(&file.header) {
            return Err(format!("{error:#}"));
        }
        if file.header.format != FORMAT || file.header.version != VERSION {
            return Err(format!(
                "a header of format {:?} version {}: this aggregator takes {FORMAT:?} version \
                 {VERSION} (run the segments with the same horde version)",
                file.header.format, file.header.version
            ));
        }
        if self.parts.len() >= expect {
            return Err(format!(
                "the aggregator takes {expect} segment{} (--expect {expect}) and has them all{}",
                if expect == 1 { "" } else { "s" },
                if self.gave_up_waiting {
                    " (it stopped waiting for more after --timeout)"
                } else {
                    ""
                }
            ));
        }
        // A header recorded in another run (replayed, with the same token)
        // is not this run's: a segment registers as its load starts.
        let fresh = humantime::parse_rfc3339(&file.header.started_at)
            .ok()
            .and_then(|at| {
                let now = std::time::SystemTime::now();
                let apart = now
                    .duration_since(at)
                    .or_else(|e| Ok::<_, ()>(e.duration()));
                apart.ok()
            })
            .is_some_and(|apart| apart <= HEADER_FRESHNESS);
        if !fresh {
            return Err(format!(
                "a header of a load that started at {}, more than {} minutes from now: not this \
                 run's (a replayed record, or this machine's clock is far from the segment's); \
                 give each run a token of its own",
                crate::output::printable(&file.header.started_at),
                HEADER_FRESHNESS.as_secs() / 60
            ));
        }
        if file.header.segment.is_none() && expect > 1 {
            return Err(format!(
                "this process runs the whole load, but the aggregator expects {expect} segments: \
                 start each with --segment I/{expect}"
            ));
        }
        let mut files: Vec<&ReadFile> = self.parts.iter().map(|p| &p.file).collect();
        files.push(&file);
        crate::merge::check_together(&files).map_err(|e| format!("{e:#}"))?;
        if self.combined.is_none() {
            let combined =
                Combined::new(&[&file], &self.request.merge).map_err(|e| format!("{e:#}"))?;
            self.combined = Some(combined);
        }
        self.first_seen.get_or_insert_with(Instant::now);
        let session = crate::segment_token::session_key();
        self.parts.push(Part {
            file,
            session: session.clone(),
            last_heard: Instant::now(),
            lost: false,
        });
        Ok((self.parts.len() as u64, session))
    }

    /// Merge every second that all live segments have sent (or that the
    /// done ones will never send more of).
    fn advance(&mut self) {
        let Some(combined) = self.combined.as_mut() else {
            return;
        };
        loop {
            let next = combined.seconds() as usize;
            let ready = (self.parts.len() >= self.request.expect || self.gave_up_waiting)
                && self
                    .parts
                    .iter()
                    .all(|p| p.file.seconds.len() > next || Self::done(p));
            let any = self.parts.iter().any(|p| p.file.seconds.len() > next);
            if !ready || !any {
                return;
            }
            let lines: Vec<_> = self
                .parts
                .iter()
                .filter_map(|p| p.file.seconds.get(next).map(|s| (&p.file, s)))
                .collect();
            let added = combined.add_second(&lines);
            // Merged: keep only what the end needs of the second (its time
            // and users), so a long run does not hold every histogram.
            for part in &mut self.parts {
                if let Some(second) = part.file.seconds.get_mut(next) {
                    second.drop_results();
                }
            }
            let tick = match added {
                Ok(tick) => tick,
                Err(error) => {
                    self.notes.push(format!("second {}: {error:#}", next + 1));
                    continue;
                }
            };
            if !self.request.quiet {
                eprintln!("{}", combined.live_line(&tick));
            }
            if self.abort.is_none() {
                self.abort = combined.abort_reason(tick.elapsed);
                if let Some(reason) = &self.abort {
                    eprintln!("aborting every segment: {reason}");
                }
            }
        }
    }

    fn receive(&mut self, envelope: Envelope) -> Answer {
        let index = envelope.id.checked_sub(1).map(|i| i as usize);
        let answer = match envelope.record {
            Record::Header(header) => {
                let file = ReadFile {
                    path: PathBuf::from(format!(
                        "segment {}",
                        header.segment.as_deref().unwrap_or("0:1")
                    )),
                    header,
                    seconds: Vec::new(),
                    end: None,
                    torn_tail: false,
                    refused: Vec::new(),
                };
                match self.register(file) {
                    Ok((id, session)) => Answer {
                        id: Some(id),
                        session: Some(session),
                        ..Answer::default()
                    },
                    Err(why) => Answer {
                        refused: Some(why),
                        ..Answer::default()
                    },
                }
            }
            record => match index.and_then(|i| self.parts.get_mut(i)) {
                Some(part) if envelope.session.as_deref() != Some(part.session.as_str()) => {
                    self.strangers += 1;
                    Answer {
                        refused: Some(
                            "this record does not carry the session key its segment was given: \
                             only a segment itself sends its records"
                                .into(),
                        ),
                        ..Answer::default()
                    }
                }
                None => Answer {
                    refused: Some("unknown segment: send the header first".into()),
                    ..Answer::default()
                },
                Some(part) if part.lost => Answer {
                    refused: Some(
                        "this segment was silent past the aggregator's --timeout and is no \
                         longer merged"
                            .into(),
                    ),
                    ..Answer::default()
                },
                Some(part) => {
                    part.last_heard = Instant::now();
                    // A record sent again (its answer was lost) counts once:
                    // its place says whether it is already here.
                    let have = part.file.seconds.len() as u64;
                    let again = envelope.seq != 0 && envelope.seq <= have;
                    let caps = Caps::default();
                    match record {
                        Record::Second(second) if part.file.end.is_none() && !again => {
                            // What no run writes is left out (its second
                            // counts as empty) and reported.
                            if let Err(error) = check_second(&second, &caps) {
                                part.file.refused.push(format!(
                                    "{} second {}: refused: {error:#}",
                                    part.file.path.display(),
                                    have + 1
                                ));
                                let empty = Second::empty(&part.file.seconds);
                                part.file.seconds.push(empty);
                            } else {
                                part.file.seconds.push(second)
                            }
                        }
                        Record::End(end) if part.file.end.is_none() => match check_end(&end) {
                            Ok(()) => part.file.end = Some(end),
                            Err(error) => part.file.refused.push(format!(
                                "{} end: refused: {error:#}",
                                part.file.path.display()
                            )),
                        },
                        _ => {}
                    }
                    Answer::default()
                }
            },
        };
        self.advance();
        Answer {
            abort: self.abort.clone(),
            ..answer
        }
    }

    /// Give up on segments silent past the timeout, and on segments that
    /// never came.
    fn check_silence(&mut self) {
        let timeout = self.request.timeout;
        for part in &mut self.parts {
            if !Self::done(part) && part.last_heard.elapsed() > timeout {
                part.lost = true;
                let note = format!(
                    "{} stopped reporting after {} s (silent for {} s): its process died or \
                     lost the network; the seconds it sent are merged",
                    part.file.path.display(),
                    part.file.seconds.len(),
                    timeout.as_secs()
                );
                eprintln!("warning: {note}");
                self.notes.push(note);
            }
        }
        let missing = self.request.expect.saturating_sub(self.parts.len());
        if missing > 0
            && !self.gave_up_waiting
            && self.first_seen.is_some_and(|t| t.elapsed() > timeout)
        {
            let note = format!(
                "expected {} segments, {} reported within --timeout ({} s) of the first; the \
                 others are left out",
                self.request.expect,
                self.parts.len(),
                timeout.as_secs()
            );
            eprintln!("warning: {note}");
            self.notes.push(note);
            self.gave_up_waiting = true;
            self.request.expect = self.parts.len();
        }
        self.advance();
    }
}

type Shared = Arc<Mutex<Aggregator>>;

/// How far from now a segment's header may say its load started (clocks
/// of different machines apart included).
const HEADER_FRESHNESS: Duration = Duration::from_secs(15 * 60);

/// The answer, signed for the request signed `signature` (none for a
/// request that was not signed with the token: nothing to sign it for).
fn answered(
    token: &SegmentToken,
    signature: Option<&str>,
    status: axum::http::StatusCode,
    answer: &Answer,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::to_vec(answer).unwrap_or_default();
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response();
    if let Some(signature) = signature
        && let Ok(value) = token.sign_answer(signature, &body).parse()
    {
        response.headers_mut().insert(SIGNATURE_HEADER, value);
    }
    response
}

async fn segments(
    State(state): State<(Shared, watch::Sender<bool>, SegmentToken)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let (aggregator, changed, token) = state;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !token.verify(&body, signature) {
        let mut aggregator = aggregator.lock().unwrap_or_else(|e| e.into_inner());
        aggregator.strangers += 1;
        if aggregator.strangers == 1 || aggregator.strangers.is_power_of_two() {
            eprintln!(
                "warning: refused {} request{} not signed with this run's segment token (a \
                 segment started with another {TOKEN_VARIABLE}, or a stranger)",
                aggregator.strangers,
                if aggregator.strangers == 1 { "" } else { "s" }
            );
        }
        return answered(
            &token,
            None,
            axum::http::StatusCode::UNAUTHORIZED,
            &Answer {
                refused: Some(format!(
                    "not signed with this run's segment token: start the segment with the \
                     aggregator's {TOKEN_VARIABLE} (or --token-file)"
                )),
                ..Answer::default()
            },
        );
    }
    let signature = signature.map(str::to_string);
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            return answered(
                &token,
                signature.as_deref(),
                axum::http::StatusCode::BAD_REQUEST,
                &Answer {
                    refused: Some(format!("not a Horde segment record: {error}")),
                    ..Answer::default()
                },
            );
        }
    };
    let answer = aggregator
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .receive(envelope);
    changed.send_replace(true);
    let status = if answer.refused.is_some() {
        axum::http::StatusCode::CONFLICT
    } else {
        axum::http::StatusCode::OK
    };
    answered(&token, signature.as_deref(), status, &answer)
}

/// Listen, merge as segments report, and return the merged outcome once
/// every expected segment ended or was given up on (or on Ctrl-C).
pub async fn aggregate(request: AggregateRequest) -> Result<RunOutcome> {
    crate::merge::check_output_paths(&request.merge)
        .map_err(|e| anyhow::anyhow!(BadInput(format!("{e:#}"))))?;
    let listener = tokio::net::TcpListener::bind(request.listen)
        .await
        .with_context(|| {
            format!(
                "--listen {}: cannot listen there (is the port in use, or the address not this \
                 machine's?); choose another, or port 0 for a free one",
                request.listen
            )
        })
        .map_err(|e| anyhow::anyhow!(BadInput(format!("{e:#}"))))?;
    let address = listener.local_addr()?;
    let scheme = if request.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = if address.ip().is_unspecified() || request.tls.is_some() {
        format!(
            "{scheme}://HOST:{}/ (HOST: this machine's name as the segments reach it{})",
            address.port(),
            if request.tls.is_some() {
                ", as its certificate names it"
            } else {
                ""
            }
        )
    } else {
        format!("{scheme}://{address}/")
    };
    eprintln!(
        "aggregator listening on {address} for {} segment{}: start each with --report-to {url}",
        request.expect,
        if request.expect == 1 { "" } else { "s" }
    );
    let quiet = request.quiet;
    let token = request.token.clone();
    let tls = request.tls.clone();
    let state: Shared = Arc::new(Mutex::new(Aggregator::new(request)));
    let (changed, mut watch) = watch::channel(false);
    let app = Router::new()
        .route("/segments", post(segments))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::output::serve::ServerLimits::AGGREGATOR.body,
        ))
        .with_state((state.clone(), changed, token.clone()));
    let server = match tls {
        Some(config) => {
            let listener = crate::segment_tls::TlsListener::new(listener, config)?;
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            })
        }
        None => crate::output::serve::spawn(
            listener,
            app,
            crate::output::serve::ServerLimits::AGGREGATOR,
        ),
    };
    let interrupted = loop {
        tokio::select! {
            _ = watch.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                state.lock().unwrap_or_else(|e| e.into_inner()).check_silence();
            }
            signal = crate::wait_for_signal() => break Some(signal),
        }
        if state.lock().unwrap_or_else(|e| e.into_inner()).all_done() {
            break None;
        }
    };
    // Answer the last segments' end records before closing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.abort();
    let mut aggregator = std::mem::replace(
        &mut *state.lock().unwrap_or_else(|e| e.into_inner()),
        Aggregator::new(AggregateRequest {
            listen: address,
            expect: 0,
            timeout: Duration::ZERO,
            merge: MergeRequest::default(),
            quiet,
            token,
            tls: None,
        }),
    );
    if aggregator.strangers > 0 {
        eprintln!(
            "warning: the aggregator refused {} request{} that did not come from the run's \
             segments (unsigned, or another segment's id without its key); they are not merged",
            aggregator.strangers,
            if aggregator.strangers == 1 { "" } else { "s" }
        );
    }
    if let Some(signal) = interrupted {
        aggregator.notes.push(format!(
            "the aggregator was interrupted by {signal} before every segment ended"
        ));
        // What every segment sent is merged, second by second.
        for part in &mut aggregator.parts {
            part.lost = part.lost || part.file.end.is_none();
        }
        aggregator.advance();
    }
    let Some(combined) = aggregator.combined.take() else {
        anyhow::bail!(BadInput(
            "no segment reported to the aggregator; start segments with --report-to".into()
        ));
    };
    let files: Vec<ReadFile> = aggregator.parts.into_iter().map(|p| p.file).collect();
    let refs: Vec<&ReadFile> = files.iter().collect();
    let mut notes = crate::merge::coverage_notes(&refs);
    notes.extend(aggregator.notes);
    Ok(combined.finish(&files, notes, aggregator.abort))
}
