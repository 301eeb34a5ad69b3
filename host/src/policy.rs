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
        "{}:{port} is not granted to this run; add `--allow-host {}:{port}` to allow it",
        bracketed(host),
        bracketed(host)
    )]
    NotGranted { host: String, port: u16 },
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

/// One grant: a host pattern and a port (None = any port, written `host:*`).
/// A grant always says which port: `--allow-host HOST` alone is refused, so
/// an operator who means one service never grants every service of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    host: HostPattern,
    port: Option<u16>,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => write!(f, "{h}")?,
            HostPattern::Subdomains(h) => write!(f, "*.{h}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => write!(f, ":*"),
        }
    }
}

impl Grant {
    /// Grant exactly this host and port (the origin of `--host`).
    pub fn origin(host: &str, port: u16) -> Grant {
        Grant {
            host: HostPattern::Exact(normalize_host(host)),
            port: Some(port),
        }
    }

    /// Parse `host:port`, `host:*` (every port), `*.domain:port`,
    /// `[v6]:port`, or a URL `scheme://host[:port]` (port defaulting to the
    /// scheme's: 80 for http, 443 for https). A host without a port is
    /// refused with the flags that say which port is meant.
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
                port: Some(port),
            });
        }
        let (host, port) = split_host_port(trimmed).map_err(|r| bad(&r))?;
        if host.is_empty() {
            return Err(bad("the host part is empty"));
        }
        let Some(port) = port else {
            return Err(bad(&no_port_reason(host)));
        };
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
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match &self.host {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(d) => {
                host.len() > d.len() + 1
                    && host.ends_with(d.as_str())
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.'
            }
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

/// Why a grant without a port is refused, with the flags that would say
/// which port is meant.
fn no_port_reason(host: &str) -> String {
    let host = bracketed(host);
    let url = if host.starts_with("*.") {
        String::new()
    } else {
        format!(", or `--allow-host http://{host}` (https://) for the scheme's default port 80 (443)")
    };
    format!(
        "it names no port, and a grant is for one port (or every port, said so): \
         write `--allow-host {host}:PORT` for one port (e.g. {host}:8080), \
         `--allow-host {host}:*` for every port{url}"
    )
}

/// A `--allow-host` value split into its host and port: `Some(None)` is
/// `:*` (every port), `None` is no port written.
fn split_host_port(value: &str) -> Result<(&str, Option<Option<u16>>), String> {
    let parse_port = |p: &str| -> Result<Option<Option<u16>>, String> {
        if p == "*" {
            return Ok(Some(None));
        }
        p.parse::<u16>()
            .map(|port| Some(Some(port)))
            .map_err(|_| format!("port {p:?} is not a number from 0 to 65535 or *"))
    };
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("missing `]` after an IPv6 address")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected {after:?} after the address")),
        };
    }
    if value.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((value, None));
    }
    match value.rsplit_once(':') {
        Some((host, port)) => Ok((host, parse_port(port)?)),
        None => Ok((value, None)),
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
            Ok(())
        } else {
            Err(Denied::NotGranted { host, port })
        }
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
            if let Ok(ip) = host.parse::<IpAddr>() {
                allowed.push((ip, grant.port));
                continue;
            }
            let mut checked = Vec::new();
            if let Ok(addrs) =
                tokio::net::lookup_host((host.as_str(), grant.port.unwrap_or(0))).await
            {
                for addr in addrs {
                    if policy.check_resolved(host, addr).is_ok() {
                        allowed.push((addr.ip(), grant.port));
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
mod tests {
    use super::*;

    fn policy(grants: &[&str]) -> NetworkPolicy {
        NetworkPolicy::new(grants.iter().map(|g| Grant::parse(g).unwrap()).collect())
    }

    #[test]
    fn grants_parse_and_match() {
        let p = policy(&[
            "127.0.0.1:8080",
            "*.example.com:443",
            "api.local:*",
            "http://[::1]",
            "Svc:1234",
        ]);
        assert!(p.check_name("127.0.0.1", 8080).is_ok());
        assert!(p.check_name("127.0.0.1", 8081).is_err());
        assert!(p.check_name("a.example.com", 443).is_ok());
        assert!(p.check_name("example.com", 443).is_err());
        assert!(p.check_name("badexample.com", 443).is_err());
        assert!(p.check_name("api.local", 9).is_ok());
        assert!(p.check_name("[::1]", 80).is_ok());
        assert!(p.check_name("::1", 81).is_err());
        assert!(p.check_name("svc", 1234).is_ok());
        assert!(p.check_name("svc", 1235).is_err());
        assert!(p.check_name("a.example.com", 80).is_err());
    }

    #[test]
    fn a_grant_without_a_port_is_refused_with_the_flags_that_name_one() {
        for (bare, host) in [
            ("localhost", "localhost"),
            ("redis-box.", "redis-box."),
            ("10.0.0.7", "10.0.0.7"),
            ("::1", "[::1]"),
            ("[::1]", "[::1]"),
            ("*.svc.local", "*.svc.local"),
        ] {
            let err = Grant::parse(bare).unwrap_err().to_string();
            for flag in [format!("--allow-host {host}:PORT"), format!("--allow-host {host}:*")] {
                assert!(err.contains(&flag), "{bare}: {err}");
            }
            // Every port, when said so, is still a grant.
            let probe = match host.strip_prefix("*.") {
                Some(domain) => format!("a.{domain}"),
                None => host.to_string(),
            };
            let p = policy(&[&format!("{host}:*")]);
            assert!(p.check_name(&probe, 18218).is_ok(), "{host}:*");
        }
        // The scheme's default port is one flag away, and only that port.
        let err = Grant::parse("localhost").unwrap_err().to_string();
        assert!(err.contains("--allow-host http://localhost"), "{err}");
        let p = policy(&["http://localhost", "https://secure.local"]);
        assert!(p.check_name("localhost", 80).is_ok());
        assert!(p.check_name("localhost", 18218).is_err());
        assert!(p.check_name("secure.local", 443).is_ok());
        assert!(p.check_name("secure.local", 80).is_err());
    }

    #[test]
    fn an_ipv6_denial_hint_grants_what_was_denied() {
        let err = policy(&["127.0.0.1:1"])
            .check_name("[::1]", 8080)
            .unwrap_err();
        assert!(err.to_string().contains("--allow-host [::1]:8080"), "{err}");
        let hinted = policy(&["[::1]:8080"]);
        assert!(hinted.check_name("[::1]", 8080).is_ok());
        assert!(hinted.check_name("::1", 8081).is_err());
    }

    #[test]
    fn denial_names_the_flag() {
        let err = policy(&["127.0.0.1:1"])
            .check_name("10.0.0.1", 80)
            .unwrap_err();
        assert!(
            err.to_string().contains("--allow-host 10.0.0.1:80"),
            "{err}"
        );
    }

    #[test]
    fn bad_grants_are_explained() {
        for bad in ["", "host:port", "a*.b", "*.", "[::1", "http://"] {
            let err = Grant::parse(bad).unwrap_err();
            assert!(!err.reason.is_empty(), "{bad}");
        }
    }

    #[tokio::test]
    async fn socket_grants_resolve_names_and_match_addresses() {
        let grants = SocketGrants::resolve(&policy(&[
            "127.0.0.1:6379",
            "localhost:7000",
            "*.example.com:443",
        ]))
        .await;
        assert!(grants.allows("127.0.0.1:6379".parse().unwrap()));
        assert!(!grants.allows("127.0.0.1:6380".parse().unwrap()));
        assert!(
            grants.allows("127.0.0.1:7000".parse().unwrap()),
            "localhost resolves to 127.0.0.1"
        );
        assert!(grants.allows("[::ffff:127.0.0.1]:6379".parse().unwrap()));
        assert!(!grants.allows("10.1.2.3:6379".parse().unwrap()));
    }

    #[test]
    fn special_addresses_need_a_literal_grant() {
        let p = policy(&["meta.local:80"]);
        let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
        assert!(p.check_resolved("meta.local", metadata).is_err());
        assert!(
            p.check_resolved("meta.local", "127.0.0.1:80".parse().unwrap())
                .is_ok()
        );
        // The hint names the port too, and following it allows exactly that.
        let err = p.check_resolved("meta.local", metadata).unwrap_err();
        assert!(
            err.to_string().contains("`--allow-host 169.254.169.254:80`"),
            "{err}"
        );
        let p = policy(&["169.254.169.254:80"]);
        assert!(p.check_resolved("169.254.169.254", metadata).is_ok());
        assert!(p.check_name("169.254.169.254", 80).is_ok());
        assert!(p.check_name("169.254.169.254", 81).is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_grant_text_panics(text in "\\PC{0,60}", host in "\\PC{0,30}", port in any::<u16>()) {
            if let Ok(grant) = Grant::parse(&text) {
                let _ = grant.to_string();
                let _ = NetworkPolicy::new(vec![grant]).check_name(&host, port);
            }
        }

        #[test]
        fn a_granted_destination_is_allowed_and_its_neighbours_are_not(
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            port in 1u16..65535,
        ) {
            let policy = NetworkPolicy::new(vec![Grant::parse(&format!("{host}:{port}")).unwrap()]);
            prop_assert!(policy.check_name(&host, port).is_ok());
            prop_assert!(policy.check_name(&host.to_uppercase(), port).is_ok());
            prop_assert!(policy.check_name(&host, port + 1).is_err());
            let longer = format!("{host}x");
            let subdomain = format!("a.{host}");
            prop_assert!(policy.check_name(&longer, port).is_err());
            prop_assert!(policy.check_name(&subdomain, port).is_err());
            // The hint of a denial grants exactly what was denied.
            let denied = NetworkPolicy::default().check_name(&host, port).unwrap_err().to_string();
            let hint = denied.split('`').nth(1).unwrap().trim_start_matches("--allow-host ");
            prop_assert!(NetworkPolicy::new(vec![Grant::parse(hint).unwrap()]).check_name(&host, port).is_ok());
        }

        #[test]
        fn a_host_without_a_port_grants_nothing(
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        ) {
            let err = Grant::parse(&host).unwrap_err().to_string();
            // Each flag the refusal names parses to a grant of that host.
            let every = format!("{host}:*");
            prop_assert!(err.contains(&format!("`--allow-host {every}`")), "{}", err);
            let policy = NetworkPolicy::new(vec![Grant::parse(&every).unwrap()]);
            prop_assert!(policy.check_name(&host, 18218).is_ok());
        }

        #[test]
        fn ipv6_hints_grant_what_was_denied(segments in prop::array::uniform8(any::<u16>()), port in any::<u16>()) {
            let ip = std::net::Ipv6Addr::from(segments).to_string();
            let bracketed = format!("[{ip}]");
            let denied = NetworkPolicy::default().check_name(&bracketed, port).unwrap_err().to_string();
            let hint = denied.split('`').nth(1).unwrap().trim_start_matches("--allow-host ");
            let policy = NetworkPolicy::new(vec![Grant::parse(hint).unwrap()]);
            prop_assert!(policy.check_name(&bracketed, port).is_ok());
        }
    }
}
