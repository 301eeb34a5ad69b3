//! Real third-party servers from Debian packages for the library tests:
//! mosquitto (MQTT), PostgreSQL and Prometheus, each on a free loopback port in a
//! temporary directory, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

fn wait_for_port(what: &str, port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A real mosquitto broker (Debian's `mosquitto`) on a free loopback port.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed; `cargo xtask test` installs it (apt-get install mosquitto)");
        let dir = tempfile::tempdir().expect("temp dir for mosquitto");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("writing mosquitto.conf");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        wait_for_port("mosquitto", port, &mut child);
        Mosquitto {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A real PostgreSQL server (Debian's `postgresql`) on a free loopback
/// port: a fresh cluster whose superuser is `horde` with password
/// `secret`, authenticated with SCRAM-SHA-256. As root it runs as the
/// `postgres` user (PostgreSQL refuses to run as root).
#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn postgres_bin(program: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|v| v.join("bin").join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("PostgreSQL's {program} is not installed; `cargo xtask test` installs it (apt-get install postgresql)")
        })
}

fn as_postgres_user(program: PathBuf, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.arg("-u").arg("postgres").arg("--").arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir for postgres");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let password = dir.path().join("password");
        std::fs::write(&password, "secret\n").expect("writing the password file");
        if root {
            let owned = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("running chown");
            assert!(
                owned.success(),
                "chown postgres of the data directory failed"
            );
        }
        let data = dir.path().join("data");
        let init = as_postgres_user(postgres_bin("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "horde", "--auth=scram-sha-256", "-E", "UTF8"])
            .arg(format!("--pwfile={}", password.display()))
            .stdout(Stdio::null())
            .output()
            .expect("running initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let mut child = as_postgres_user(postgres_bin("postgres"), root)
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting postgres");
        wait_for_port("postgres", port, &mut child);
        Postgres {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A real Prometheus server (Debian's `prometheus`) on a free loopback port,
/// scraping `target` (host:port) every second, with its data in a
/// temporary directory.
#[derive(Debug)]
pub struct Prometheus {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: &str) -> Prometheus {
        let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("prometheus is not installed; `cargo xtask test` installs it (apt-get install prometheus)");
        let dir = tempfile::tempdir().expect("temp dir for prometheus");
        let port = free_port();
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
                 - job_name: horde\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        wait_for_port("prometheus", port, &mut child);
        Prometheus {
            port,
            child,
            _dir: dir,
        }
    }

    /// The result of a PromQL instant query through the HTTP API
    /// (`/api/v1/query`), as JSON.
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let body = ureq::get(&url)
            .query("query", promql)
            .call()
            .and_then(|mut response| response.body_mut().read_to_string())
            .unwrap_or_else(|e| panic!("querying prometheus for {promql}: {e}"));
        let value: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("prometheus answered {body:?}: {e}"));
        assert_eq!(value["status"], "success", "{value}");
        value["data"]["result"].clone()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
