//! Network grants and resource limits, shared by every capability.
//!
//! A run may reach the origin of `--host` plus each `--allow-host` grant and
//! nothing else. Names are checked before DNS; every resolved address is
//! checked again after DNS, and the caller connects only to checked addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;

/// Why a destination was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Denied {
    #[error(
        "{}:{port} is not granted to this run; add `--allow-host {}:{port}` to allow it{}",
        bracketed(host),
        bracketed(host),
        bare_note(bare.as_deref())
    )]
    NotGranted {
        host: String,
        port: u16,
        /// A grant of this host written without a port, which covers only
        /// the web ports: said in the message, so nobody is left guessing.
        bare: Option<String>,
    },
    #[error(
        "{host} resolved to {}, a {kind} address that is never reached through a name; grant the address itself with `--allow-host {addr}` to allow it",
        addr.ip()
    )]
    SpecialAddress {
        host: String,
        addr: SocketAddr,
        kind: &'static str,
    },
}

/// A bad `--allow-host` value.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid --allow-host value {value:?}: {reason}")]
pub struct BadGrant {
    pub value: String,
    pub reason: String,
}

/// Which host names a grant matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this name or address (lower-case, no brackets).
    Exact(String),
    /// This domain's subdomains: `*.example.com`.
    Subdomains(String),
}

/// The ports a host written without a port grants: the default ports of
/// http and https. Every port is `HOST:*`, said so.
pub const BARE_HOST_PORTS: [u16; 2] = [80, 443];

/// Which ports a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    /// One port: `host:8080`, or a URL's (written, or its scheme's default).
    One(u16),
    /// A host written without a port: [`BARE_HOST_PORTS`] only.
    Web,
    /// Every port, written `host:*`.
    Any,
}

impl Ports {
    fn covers(self, port: u16) -> bool {
        match self {
            Ports::One(p) => p == port,
            Ports::Web => BARE_HOST_PORTS.contains(&port),
            Ports::Any => true,
        }
    }

    /// The ports as socket grants list them (None = every port).
    fn for_sockets(self) -> Vec<Option<u16>> {
        match self {
            Ports::One(p) => vec![Some(p)],
            Ports::Web => BARE_HOST_PORTS.iter().copied().map(Some).collect(),
            Ports::Any => vec![None],
        }
    }
}

/// One grant: a host pattern and the ports it covers. A host written
/// without a port (`--allow-host redis-box`) covers the web ports 80 and 443
/// only, so an operator who means one service does not grant every service
/// of the host; `redis-box:*` grants every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    host: HostPattern,
    port: Ports,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => write!(f, "{h}")?,
            HostPattern::Subdomains(h) => write!(f, "*.{h}")?,
        }
        match self.port {
            Ports::One(p) => write!(f, ":{p}"),
            Ports::Web => write!(f, " (ports 80 and 443)"),
            Ports::Any => write!(f, ":*"),
        }
    }
}

impl Grant {
    /// Grant exactly this host and port (the origin of `--host`).
    pub fn origin(host: &str, port: u16) -> Grant {
        Grant {
            host: HostPattern::Exact(normalize_host(host)),
            port: Ports::One(port),
        }
    }

    /// Parse `host:port`, `host:*` (every port), `*.domain[:port]`,
    /// `[v6]:port`, `host` alone (ports 80 and 443 only), or a URL
    /// `scheme://host[:port]` (port defaulting to the scheme's: 80 for
    /// http, 443 for https).
    pub fn parse(value: &str) -> Result<Grant, BadGrant> {
        let bad = |reason: &str| BadGrant {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(bad(
                "it is empty; expected host:port, host:* or http://host[:port]",
            ));
        }
        if trimmed.contains("://") {
            let url = url::Url::parse(trimmed).map_err(|e| bad(&format!("not a URL: {e}")))?;
            let host = url.host_str().ok_or_else(|| bad("the URL has no host"))?;
            let port = url
                .port_or_known_default()
                .ok_or_else(|| bad("the URL has no port and its scheme has no default"))?;
            let host = unbracketed(host);
            return Ok(Grant {
                host: HostPattern::Exact(normalize_host(host)),
                port: Ports::One(port),
            });
        }
        let (host, port) = split_host_port(trimmed).map_err(|r| bad(&r))?;
        if host.is_empty() {
            return Err(bad("the host part is empty"));
        }
        let pattern = if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(bad("a wildcard must look like *.example.com"));
            }
            HostPattern::Subdomains(normalize_host(domain))
        } else if host.contains('*') {
            return Err(bad("a wildcard is only allowed as a leading `*.`"));
        } else {
            HostPattern::Exact(normalize_host(host))
        };
        Ok(Grant {
            host: pattern,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.port.covers(port) && self.matches_host(host)
    }

    fn matches_host(&self, host: &str) -> bool {
        match &self.host {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(d) => {
                host.len() > d.len() + 1
                    && host.ends_with(d.as_str())
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.'
            }
        }
    }

    /// The grant's host as written on the command line (without its ports).
    fn written(&self) -> String {
        match &self.host {
            HostPattern::Exact(h) => bracketed(h),
            HostPattern::Subdomains(d) => format!("*.{d}"),
        }
    }

    /// True when this grant names the address literally.
    fn names_address(&self, addr: IpAddr) -> bool {
        matches!(&self.host, HostPattern::Exact(h) if h.parse::<IpAddr>() == Ok(addr))
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// What a denial adds when a grant of the host was written without a port.
fn bare_note(bare: Option<&str>) -> String {
    match bare {
        Some(grant) => format!(
            " (`--allow-host {grant}` names no port, so it grants ports 80 and 443 only; \
             `--allow-host {grant}:*` grants every port)"
        ),
        None => String::new(),
    }
}

/// A `--allow-host` value split into its host and the ports it grants.
fn split_host_port(value: &str) -> Result<(&str, Ports), String> {
    let parse_port = |p: &str| -> Result<Ports, String> {
        if p == "*" {
            return Ok(Ports::Any);
        }
        p.parse::<u16>()
            .map(Ports::One)
            .map_err(|_| format!("port {p:?} is not a number from 0 to 65535 or *"))
    };
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("missing `]` after an IPv6 address")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, Ports::Web)),
            None => Err(format!("unexpected {after:?} after the address")),
        };
    }
    if value.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((value, Ports::Web));
    }
    match value.rsplit_once(':') {
        Some((host, port)) => Ok((host, parse_port(port)?)),
        None => Ok((value, Ports::Web)),
    }
}

/// A host as written before `:port`: an IPv6 address in brackets, so the
/// `--allow-host` hint built from it parses back to the same grant.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A host name or address as written in a URL, without an IPv6 address's brackets.
pub fn unbracketed(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The run's network policy.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    grants: Vec<Grant>,
}

impl NetworkPolicy {
    pub fn new(grants: Vec<Grant>) -> NetworkPolicy {
        NetworkPolicy { grants }
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Check a destination by name, before DNS.
    pub fn check_name(&self, host: &str, port: u16) -> Result<(), Denied> {
        let host = normalize_host(unbracketed(host));
        if self.grants.iter().any(|g| g.matches(&host, port)) {
            return Ok(());
        }
        let bare = self
            .grants
            .iter()
            .find(|g| g.port == Ports::Web && g.matches_host(&host))
            .map(Grant::written);
        Err(Denied::NotGranted { host, port, bare })
    }

    /// Check one resolved address of a granted name. Addresses that no
    /// service should be reached at through a name (cloud metadata and other
    /// link-local, unspecified, multicast, broadcast) are refused unless a
    /// grant names the address itself. This stops a granted name from being
    /// pointed at such addresses by DNS.
    pub fn check_resolved(&self, host: &str, addr: SocketAddr) -> Result<(), Denied> {
        let ip = addr.ip();
        let Some(kind) = special_address_kind(ip) else {
            return Ok(());
        };
        if self.grants.iter().any(|g| g.names_address(ip)) {
            return Ok(());
        }
        Err(Denied::SpecialAddress {
            host: host.to_string(),
            addr,
            kind,
        })
    }
}

fn special_address_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_unspecified() {
                Some("unspecified")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_multicast() {
                Some("multicast")
            } else if v4.is_broadcast() {
                Some("broadcast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_address_kind(IpAddr::V4(v4));
            }
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

/// Socket destinations a guest may open itself (`wasi:sockets`): the
/// grants' addresses, resolved once by the host when the run starts. A
/// guest's own name lookups are answered from the same resolution
/// (`caps::ip_name_lookup`), so what it resolves is what it may reach.
#[derive(Debug, Clone, Default)]
pub struct SocketGrants {
    allowed: Vec<(IpAddr, Option<u16>)>,
    /// Each granted name (lower-case, no trailing dot) and its checked addresses.
    names: Vec<(String, Vec<IpAddr>)>,
}

impl SocketGrants {
    /// Resolve every grant that names a host (wildcard domains cannot be
    /// resolved and are skipped: they grant HTTP only).
    pub async fn resolve(policy: &NetworkPolicy) -> SocketGrants {
        let mut allowed = Vec::new();
        let mut names: Vec<(String, Vec<IpAddr>)> = Vec::new();
        for grant in policy.grants() {
            let HostPattern::Exact(host) = &grant.host else {
                continue;
            };
            let ports = grant.port.for_sockets();
            if let Ok(ip) = host.parse::<IpAddr>() {
                allowed.extend(ports.iter().map(|&port| (ip, port)));
                continue;
            }
            let mut checked = Vec::new();
            let lookup_port = ports.first().copied().flatten().unwrap_or(0);
            if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), lookup_port)).await {
                for addr in addrs {
                    if policy.check_resolved(host, addr).is_ok() {
                        allowed.extend(ports.iter().map(|&port| (addr.ip(), port)));
                        let ip = addr.ip().to_canonical();
                        if !checked.contains(&ip) {
                            checked.push(ip);
                        }
                    }
                }
            }
            match names.iter_mut().find(|(name, _)| name == host) {
                Some((_, known)) => {
                    for ip in checked {
                        if !known.contains(&ip) {
                            known.push(ip);
                        }
                    }
                }
                None => names.push((host.clone(), checked)),
            }
        }
        SocketGrants { allowed, names }
    }

    /// The checked addresses of a granted name (case and a trailing dot do
    /// not matter); None when no exact grant names it.
    pub fn addresses_of(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = normalize_host(name);
        self.names
            .iter()
            .find(|(granted, _)| *granted == name)
            .map(|(_, addresses)| addresses.clone())
    }

    /// May a guest connect (TCP) or send (UDP) to `addr`?
    pub fn allows(&self, addr: SocketAddr) -> bool {
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.allowed
            .iter()
            .any(|(granted, port)| *granted == ip && port.is_none_or(|p| p == addr.port()))
    }
}

/// Resource limits for every VU, with their documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory per VU instance.
    pub max_vu_memory: u64,
    /// Guest CPU time one task (or on-start/on-stop) may use.
    pub max_task_cpu: Duration,
    /// Default HTTP request timeout.
    pub request_timeout: Duration,
    /// Largest response body the host reads whole for a guest
    /// (`--max-response-body`); bodies a request discards, and wasi:http
    /// bodies the guest reads as a stream, have no limit.
    pub max_body_bytes: usize,
    /// Largest gRPC message received (`--max-grpc-receive-size`; gRPC's default).
    pub max_grpc_receive: usize,
    /// Distinct (type, name) pairs recorded; more are folded into one name.
    pub max_event_names: usize,
    /// Longest event name kept (longer names are cut).
    pub max_name_len: usize,
    /// Guest log lines per second across the run (more are counted and dropped).
    pub log_lines_per_second: u32,
    /// Redirects followed per request.
    pub max_redirects: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_vu_memory: 128 * 1024 * 1024,
            max_task_cpu: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 32 * 1024 * 1024,
            max_grpc_receive: 4 * 1024 * 1024,
            max_event_names: 1000,
            max_name_len: 256,
            log_lines_per_second: 50,
            max_redirects: 10,
        }
    }
}

#[cfg(test)]
mod tests;
