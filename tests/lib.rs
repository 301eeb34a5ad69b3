//! Shared fixtures for the integration tests: guest paths, run helpers, and
//! a real nginx started on a free loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use horde::cli::RunConfig;

pub mod behaviours;
pub mod third_party;

/// Paths of the guest components, built by build.rs.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// A run configuration for `guest` against `host` with a private cache.
pub fn config(guest: &str, host: &str, cache: &Path) -> RunConfig {
    let mut config = RunConfig::new(guest);
    config.host = Some(horde::cli::parse_host_url(host, "--host").expect("test host URL is valid"));
    config.cache_dir = Some(cache.to_path_buf());
    config
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding port 0")
        .port()
}

fn find_nginx() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("nginx is not installed; `cargo xtask test` installs it (apt-get install nginx-light)");
}

/// A real nginx serving the example scenario's endpoints on loopback.
#[derive(Debug)]
pub struct Nginx {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Start nginx (one worker, no access log) on a free port and wait until it accepts.
    pub fn start() -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir for nginx");
        let port = free_port();
        let prefix = dir.path();
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(sub)).expect("nginx dirs");
        }
        let conf = format!(
            r#"
worker_processes 1;
daemon off;
master_process off;
error_log {prefix}/logs/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        location = / {{ default_type text/html; return 200 "<html><body>nginx</body></html>"; }}
        location = /login {{ return 200 '{{"token":"token-nginx"}}'; }}
        location /item/ {{ return 200 '{{"id":1,"name":"item","price":9.99}}'; }}
        location = /cart {{ return 200 '{{"items":1}}'; }}
    }}
}}
"#,
            prefix = prefix.display()
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("writing nginx.conf");
        let child = Command::new(find_nginx())
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real third-party server written in Python (tests/servers/NAME), started
/// on a free loopback port; it prints "listening on PORT" when ready.
#[derive(Debug)]
pub struct PythonServer {
    pub port: u16,
    child: Child,
}

impl PythonServer {
    pub fn start(script: &str) -> PythonServer {
        use std::io::BufRead;
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("servers")
            .join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 {}: {e}", path.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the server's first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not report its port; it printed {line:?}"));
        PythonServer { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real redis-server on a free loopback port, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("redis-server is not installed; `cargo xtask test` installs it (apt-get install redis-server)");
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { port, child }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The streaming example's Numbers service (numbers.proto) on tonic, in
/// process on a free loopback port, speaking h2c.
pub mod numbers {
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use horde::caps::grpc::BytesCodec;
    use prost::Message;
    use tokio::task::JoinHandle;
    use tokio_stream::StreamExt;
    use tonic::server::Grpc;
    use tonic::{Request, Response, Status, Streaming};

    #[derive(Clone, PartialEq, prost::Message)]
    struct Number {
        #[prost(int64, tag = "1")]
        value: i64,
    }

    fn number(bytes: &[u8]) -> Result<i64, Status> {
        Number::decode(bytes)
            .map(|n| n.value)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    fn encode(value: i64) -> Bytes {
        Number { value }.encode_to_vec().into()
    }

    type BoxStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Bytes, Status>> + Send>>;

    /// Dispatches the three methods by path.
    #[derive(Clone, Debug)]
    pub struct Numbers;

    impl tower::Service<http::Request<tonic::body::Body>> for Numbers {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            Box::pin(async move {
                let mut grpc = Grpc::new(BytesCodec);
                let response = match request.uri().path() {
                    "/horde.test.Numbers/Count" => {
                        let count = tower::service_fn(|request: Request<Bytes>| async move {
                            let n = number(request.get_ref())?;
                            let stream: BoxStream =
                                Box::pin(tokio_stream::iter((1..=n).map(|v| Ok(encode(v)))));
                            Ok::<_, Status>(Response::new(stream))
                        });
                        grpc.server_streaming(count, request).await
                    }
                    "/horde.test.Numbers/Sum" => {
                        let sum =
                            tower::service_fn(|request: Request<Streaming<Bytes>>| async move {
                                let mut stream = request.into_inner();
                                let mut total = 0;
                                while let Some(message) = stream.next().await {
                                    total += number(&message?)?;
                                }
                                Ok::<_, Status>(Response::new(encode(total)))
                            });
                        grpc.client_streaming(sum, request).await
                    }
                    "/horde.test.Numbers/Echo" => {
                        let echo =
                            tower::service_fn(|request: Request<Streaming<Bytes>>| async move {
                                let stream: BoxStream = Box::pin(request.into_inner());
                                Ok::<_, Status>(Response::new(stream))
                            });
                        grpc.streaming(echo, request).await
                    }
                    _ => Status::unimplemented("no such method").into_http(),
                };
                Ok(response)
            })
        }
    }

    /// A running fixture; stops when dropped.
    #[derive(Debug)]
    pub struct NumbersServer {
        pub port: u16,
        tls: bool,
        task: JoinHandle<()>,
    }

    impl NumbersServer {
        /// Serve h2c.
        pub async fn start() -> NumbersServer {
            Self::serve(None).await
        }

        /// Serve gRPC over TLS (the config's ALPN must offer h2).
        pub async fn start_tls(tls: std::sync::Arc<rustls::ServerConfig>) -> NumbersServer {
            Self::serve(Some(tokio_rustls::TlsAcceptor::from(tls))).await
        }

        async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> NumbersServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding the fixture");
            let port = listener.local_addr().expect("local address").port();
            let is_tls = tls.is_some();
            let task = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            |request: http::Request<hyper::body::Incoming>| {
                                let mut numbers = Numbers;
                                tower::Service::call(
                                    &mut numbers,
                                    request.map(tonic::body::Body::new),
                                )
                            },
                        );
                        let builder = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        );
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = builder
                                        .http2_only()
                                        .serve_connection(
                                            hyper_util::rt::TokioIo::new(stream),
                                            service,
                                        )
                                        .await;
                                }
                            }
                            None => {
                                let _ = builder
                                    .http2_only()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    });
                }
            });
            NumbersServer {
                port,
                tls: is_tls,
                task,
            }
        }

        pub fn url(&self) -> String {
            let scheme = if self.tls { "https" } else { "http" };
            format!("{scheme}://127.0.0.1:{}", self.port)
        }
    }

    impl Drop for NumbersServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
}

/// A TLS server configuration with a fresh self-signed certificate for
/// 127.0.0.1 and localhost, offering h2 and http/1.1 by ALPN.
pub fn self_signed_tls() -> std::sync::Arc<rustls::ServerConfig> {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}
