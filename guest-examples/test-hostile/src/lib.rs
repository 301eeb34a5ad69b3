//! Test guest for the hostile-scenario suite: VUs whose id is a multiple of
//! 3 misbehave as `--var mode=` says; the others GET "/" like a well-behaved
//! user. `--var configure=` attacks the configuration instead (hang, raise,
//! throughput). Each attack has a test in tests/hostile.rs.

use horde_sdk::prelude::*;
use wasip2::http::types as wh;
use wasip2::sockets::network::IpAddressFamily;

#[derive(Default)]
struct Hostile {
    hoard: Vec<Vec<u8>>,
    sockets: Vec<wasip2::sockets::tcp::TcpSocket>,
    fields: Vec<wh::Fields>,
}

impl Scenario for Hostile {
    fn config() -> Config<Self> {
        let config = Config::new().task(1, "work", Hostile::work);
        match control::var("configure").as_deref() {
            // Never returns: the probe's sleep is bound to a stop that never comes.
            Some("hang") => loop {
                control::sleep_ms(3_600_000);
            },
            // Limits meant to protect the host, raised by the scenario itself.
            Some("raise") => config
                .wait(constant(0.01))
                .option("max-vu-memory", "1GiB")
                .option("max-task-cpu", "1h")
                .option("stop-timeout", "1h")
                .option("timeout", "10m"),
            // 1/x does not fit a duration.
            Some("throughput") => config.wait(constant_throughput(1e-300)),
            _ => config.wait(constant(0.01)),
        }
    }
}

/// A string with terminal escapes and newlines that forge report lines.
const ESCAPES: &str = "\x1b[2J\x1b[H\x1b]0;pwned-title\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\nFAKE LINE";

/// Markup that runs script if a page puts it in as HTML, and CSV/label
/// syntax (quotes, commas, a line break).
const MARKUP: &str = "</script><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">\"a,b\n\"<!--";

impl Hostile {
    fn work(&mut self) -> TaskResult {
        if control::vu_id() % 3 != 0 {
            http::get("/").send()?;
            return Ok(());
        }
        match control::var("mode").as_deref() {
            Some("spin") => {
                let mut x: u64 = control::iteration();
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            Some("alloc") => loop {
                let mut block = vec![0u8; 1 << 20];
                block[0] = 1;
                self.hoard.push(block);
            },
            Some("trap") => {
                let items: Vec<u32> = std::hint::black_box(Vec::new());
                // Out of bounds on purpose: a guest panic is a trap.
                let _ = std::hint::black_box(items[5]);
                Ok(())
            }
            Some("sockets") => {
                // Sockets until the host refuses, then keep them.
                while let Ok(socket) =
                    wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)
                {
                    self.sockets.push(socket);
                }
                metrics::gauge("sockets held", self.sockets.len() as f64);
                Ok(())
            }
            Some("fields") => {
                let value = vec![b'v'; 32 * 1024];
                loop {
                    let fields = wh::Fields::new();
                    fields
                        .append("x-big", &value)
                        .map_err(|e| TaskError(format!("{e:?}")))?;
                    self.fields.push(fields);
                }
            }
            Some("bodies") => unfinished_bodies(),
            Some("names") => {
                let i = control::iteration();
                for k in 0..2000 {
                    let unique = format!("{i}-{k}");
                    metrics::trend(&format!("trend-{unique}"), 1.0);
                    metrics::check(&format!("check-{unique}"), true);
                    metrics::counter(&format!("counter-{unique}"), 1.0);
                    metrics::gauge(&format!("gauge-{unique}"), 1.0);
                    let message = format!("{unique}{}", "m".repeat(8 * 1024));
                    let _ = metrics::record(&format!("type-{unique}"), "n", 1.0, 1, Some(message));
                }
                Ok(())
            }
            Some(mode @ ("escape" | "markup")) => {
                let forged = if mode == "escape" { ESCAPES } else { MARKUP };
                metrics::check(&format!("check{forged}"), true);
                metrics::counter(&format!("counter{forged}"), 1.0);
                let _ = metrics::record(
                    "GET",
                    &format!("/fake{forged}"),
                    1.0,
                    0,
                    Some(format!("boom{forged}")),
                );
                if control::iteration() == 20 {
                    control::stop_test(&format!("reason{forged}"));
                }
                Err(TaskError(format!("exception{forged}")))
            }
            Some("read-file") => {
                // The data file is the operator's: rows come through the
                // data capability, the file itself is out of reach.
                let path = control::var("path").unwrap_or_default();
                metrics::check("file unreadable", std::fs::read(&path).is_err());
                metrics::check("root unlistable", std::fs::read_dir("/").is_err());
                metrics::check("row through the feed", data::next("users").is_ok());
                Ok(())
            }
            Some("log") => {
                control::log(&"x\n".repeat(4_000_000));
                Ok(())
            }
            Some("overflow") => {
                for _ in 0..3 {
                    let _ = metrics::record("GET", "huge", 1.0, u64::MAX, None);
                }
                metrics::counter("huge-counter", f64::MAX);
                metrics::counter("huge-counter", f64::MAX);
                Ok(())
            }
            Some("hang") => {
                // Not bound to the run's stop: cut after --stop-timeout.
                wasip2::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                Ok(())
            }
            Some("big-call") => {
                // An XML-RPC string that escapes to 4 times its size.
                let text = "<".repeat(8 << 20);
                let _ = xmlrpc::call("/", "m", &[xmlrpc::Value::String(text)]);
                Ok(())
            }
            Some("calls") => {
                // Calls the target never answers (cut at the end).
                if control::iteration() % 2 == 1 {
                    let _ = xmlrpc::call("/", "m", &[]);
                } else {
                    let _ = grpc::call(&control::base_url().unwrap_or_default(), "/a.B/C")
                        .unary(b"");
                }
                Ok(())
            }
            Some("net") => {
                network_attacks();
                Ok(())
            }
            other => Err(TaskError(format!("unknown mode {other:?}"))),
        }
    }
}

/// Start POSTs and write into their bodies without finishing them, until
/// the host refuses.
fn unfinished_bodies() -> TaskResult {
    let base = control::base_url().unwrap_or_default();
    let authority = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let chunk = vec![b'b'; 1 << 20];
    let mut keep = Vec::new();
    for _ in 0..40 {
        let request = wh::OutgoingRequest::new(wh::Fields::new());
        let _ = request.set_method(&wh::Method::Post);
        let _ = request.set_scheme(Some(&wh::Scheme::Http));
        let _ = request.set_authority(Some(&authority));
        let _ = request.set_path_with_query(Some("/"));
        let body = request.body().map_err(|_| TaskError("body".into()))?;
        let response = wasip2::http::outgoing_handler::handle(request, None)
            .map_err(|e| TaskError(format!("{e:?}")))?;
        {
            let out = body.write().map_err(|_| TaskError("write".into()))?;
            'chunks: for _ in 0..15 {
                let mut offset = 0;
                while offset < chunk.len() {
                    let n = loop {
                        match out.check_write() {
                            Ok(0) => out.subscribe().block(),
                            Ok(n) => break n as usize,
                            // The host gave up on this body (over the budget).
                            Err(_) => break 'chunks,
                        }
                    };
                    let end = (offset + n).min(chunk.len());
                    if out.write(&chunk[offset..end]).is_err() {
                        break 'chunks;
                    }
                    offset = end;
                }
            }
        }
        keep.push((body, response));
    }
    control::sleep_ms(500);
    Ok(())
}

/// Destinations never granted to the test run, each reached another way;
/// a check per attempt records whether it was denied.
fn network_attacks() {
    let denied = |result: Result<http::Response, http::Error>| {
        matches!(result, Err(http::Error::Denied(_)))
    };
    let base = control::base_url().unwrap_or_default();
    let port = base.rsplit(':').next().unwrap_or("80").trim_end_matches('/');
    let attempts = [
        ("metadata address", "http://169.254.169.254/latest/meta-data/".to_string()),
        ("decimal IP", format!("http://2130706433:{}/", port.parse::<u16>().unwrap_or(80) + 1)),
        ("other port", format!("http://127.0.0.1:{}/", port.parse::<u16>().unwrap_or(80) + 1)),
        ("userinfo", "http://127.0.0.1@example.com/".to_string()),
        ("ipv6 loopback", format!("http://[::1]:{port}/")),
    ];
    for (what, url) in attempts {
        let result = http::get(url).name(&format!("attack: {what}")).send();
        metrics::check(&format!("denied: {what}"), denied(result));
    }
    // A socket to an address no grant names.
    let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4);
    let refused = match socket {
        Ok(socket) => {
            let network = wasip2::sockets::instance_network::instance_network();
            let address = wasip2::sockets::network::IpSocketAddress::Ipv4(
                wasip2::sockets::network::Ipv4SocketAddress {
                    port: 22,
                    address: (10, 0, 0, 1),
                },
            );
            // The check may come at the start or at the finish of the connect.
            use wasip2::sockets::network::ErrorCode;
            match socket.start_connect(&network, address) {
                Err(code) => code == ErrorCode::AccessDenied,
                Ok(()) => {
                    socket.subscribe().block();
                    matches!(socket.finish_connect(), Err(ErrorCode::AccessDenied))
                }
            }
        }
        Err(_) => true,
    };
    metrics::check("denied: socket to 10.0.0.1:22", refused);
}

horde_sdk::export_scenario!(Hostile);
