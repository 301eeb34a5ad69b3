//! `wasi:sockets` under the run's grants: which addresses a guest's own
//! sockets may connect to, send to, bind and listen on (wasmtime asks this
//! check before each such call).
//!
//! - Connect and send: only addresses the grants resolved to
//!   (`SocketGrants`), with one exception below.
//! - Bind: port 0 only (the system picks the port). A chosen port is never
//!   allowed: no flag grants it.
//! - Listen and accept: only for a self-connected pair. Libraries without
//!   `socketpair` make one by listening on a loopback port, connecting to it
//!   and accepting (paho-mqtt's wake-up pair; CPython's `socket.socketpair`
//!   fallback, which asyncio uses): a VU may listen on a loopback address,
//!   connect once to exactly that address, and accept one connection whose
//!   peer is a socket of this process (checked in /proc), so no other
//!   process gets in and the listener opens nothing else.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::guest_log::GuestLogger;
use crate::policy::SocketGrants;

/// One VU's self-connected pairs in the making.
#[derive(Debug, Default)]
pub struct SelfPairs {
    /// Loopback addresses this VU listens on and has not connected to yet.
    listening: Vec<SocketAddr>,
    /// Connections this VU made to its own listeners, not yet accepted.
    pending_accepts: u32,
}

/// Listeners a VU may have open at once for self-connected pairs.
const MAX_SELF_LISTENERS: usize = 16;

impl SelfPairs {
    /// May this use go ahead? Updates the pairs in the making. `peer_is_own`
    /// tells whether a connecting peer is a socket of this process (asked
    /// only for an accept).
    pub fn allows(
        &mut self,
        grants: &SocketGrants,
        addr: SocketAddr,
        use_: SocketAddrUse,
        peer_is_own: impl FnOnce(SocketAddr) -> bool,
    ) -> bool {
        match use_ {
            SocketAddrUse::TcpConnect => {
                if grants.allows(addr) {
                    return true;
                }
                // Exactly the address the listener is bound to: a port number
                // alone would let a listener on ::1 open 127.0.0.1's same port.
                match self.listening.iter().position(|l| *l == addr) {
                    Some(index) => {
                        self.listening.swap_remove(index);
                        self.pending_accepts += 1;
                        true
                    }
                    None => false,
                }
            }
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => grants.allows(addr),
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.port() == 0,
            SocketAddrUse::TcpListen => {
                if !addr.ip().is_loopback() || self.listening.len() >= MAX_SELF_LISTENERS {
                    return false;
                }
                self.listening.push(addr);
                true
            }
            SocketAddrUse::TcpAccept => {
                // Only the VU's own connection: another process on the machine
                // that finds the port first is refused.
                if addr.ip().is_loopback() && self.pending_accepts > 0 && peer_is_own(addr) {
                    self.pending_accepts -= 1;
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// Is `peer` the local address of a TCP socket this process holds? Read
/// from /proc (Linux): the socket inodes behind /proc/self/fd, matched with
/// /proc/net/tcp{,6}. Elsewhere, or if /proc cannot be read: no.
fn peer_is_own_socket(peer: SocketAddr) -> bool {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    let inodes: Vec<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let text = link.to_string_lossy().into_owned();
            text.strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() > 9
                    && proc_address(fields[1]) == Some(peer)
                    && inodes.iter().any(|inode| inode == fields[9])
            })
        })
    })
}

/// An address as /proc/net/tcp{,6} writes it: hex IP (in 32-bit words of
/// host byte order) and hex port, e.g. `0100007F:1F90` for 127.0.0.1:8080.
fn proc_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<u32>> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let bytes: Vec<u8> = words?.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The message logged when a use is refused: the flag that grants it, or
/// that none does.
fn denial(addr: SocketAddr, use_: SocketAddrUse) -> String {
    match use_ {
        SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => format!(
            "socket {use_:?} to {addr} denied: not granted to this run; add `--allow-host {addr}` \
             to allow it"
        ),
        _ => format!(
            "socket {use_:?} on {addr} denied: a scenario may not listen or bind to a chosen port \
             (no flag allows it); bind to port 0, and listen only to connect to itself"
        ),
    }
}

/// Install the check on one VU's WASI context.
pub fn restrict(
    builder: &mut WasiCtxBuilder,
    grants: SocketGrants,
    logger: Arc<GuestLogger>,
    vu_id: u32,
) {
    let pairs = Arc::new(Mutex::new(SelfPairs::default()));
    builder.socket_addr_check(move |addr, use_| {
        let allowed = pairs.lock().unwrap_or_else(|e| e.into_inner()).allows(
            &grants,
            addr,
            use_,
            peer_is_own_socket,
        );
        if !allowed {
            logger.log(vu_id, "warn", denial(addr, use_).as_bytes());
        }
        Box::pin(async move { allowed })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Grant, NetworkPolicy};

    #[tokio::test]
    async fn grants_binds_and_self_pairs() {
        let grants = SocketGrants::resolve(&NetworkPolicy::new(vec![
            Grant::parse("127.0.0.1:6379").unwrap(),
        ]))
        .await;
        let mut pairs = SelfPairs::default();
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let own = |_| true;
        assert!(pairs.allows(
            &grants,
            at("127.0.0.1:6379"),
            SocketAddrUse::TcpConnect,
            own
        ));
        assert!(!pairs.allows(
            &grants,
            at("127.0.0.1:6380"),
            SocketAddrUse::TcpConnect,
            own
        ));
        assert!(pairs.allows(&grants, at("0.0.0.0:0"), SocketAddrUse::TcpBind, own));
        assert!(pairs.allows(&grants, at("127.0.0.1:0"), SocketAddrUse::TcpBind, own));
        assert!(!pairs.allows(&grants, at("0.0.0.0:8080"), SocketAddrUse::TcpBind, own));
        // Not on a public address, and no accept without its own connect.
        assert!(!pairs.allows(&grants, at("0.0.0.0:40000"), SocketAddrUse::TcpListen, own));
        assert!(!pairs.allows(
            &grants,
            at("127.0.0.1:50000"),
            SocketAddrUse::TcpAccept,
            own
        ));
        // A self-connected pair: listen, connect once, accept once.
        assert!(pairs.allows(
            &grants,
            at("127.0.0.1:40000"),
            SocketAddrUse::TcpListen,
            own
        ));
        assert!(pairs.allows(
            &grants,
            at("127.0.0.1:40000"),
            SocketAddrUse::TcpConnect,
            own
        ));
        assert!(!pairs.allows(
            &grants,
            at("127.0.0.1:40000"),
            SocketAddrUse::TcpConnect,
            own
        ));
        assert!(pairs.allows(
            &grants,
            at("127.0.0.1:50000"),
            SocketAddrUse::TcpAccept,
            own
        ));
        assert!(!pairs.allows(
            &grants,
            at("127.0.0.1:50001"),
            SocketAddrUse::TcpAccept,
            own
        ));
        // A listener on ::1 does not open the same port of 127.0.0.1.
        assert!(pairs.allows(&grants, at("[::1]:41000"), SocketAddrUse::TcpListen, own));
        assert!(!pairs.allows(
            &grants,
            at("127.0.0.1:41000"),
            SocketAddrUse::TcpConnect,
            own
        ));
        assert!(pairs.allows(&grants, at("[::1]:41000"), SocketAddrUse::TcpConnect, own));
        // Another process's connection is not accepted, even with one pending.
        assert!(
            !pairs.allows(&grants, at("[::1]:50002"), SocketAddrUse::TcpAccept, |_| {
                false
            })
        );
        assert!(pairs.allows(&grants, at("[::1]:50003"), SocketAddrUse::TcpAccept, own));
    }

    #[test]
    fn a_connecting_peer_is_recognised_as_this_process_or_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(peer_is_own_socket(peer));
        let elsewhere = std::process::Command::new("python3")
            .args(["-c", "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); print(s.getsockname()[1]); sys.stdout.flush(); sys.stdin.read()"])
            .arg(listener.local_addr().unwrap().port().to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (_outside, outsider) = listener.accept().unwrap();
        assert!(
            !peer_is_own_socket(outsider),
            "{outsider} is another process's socket"
        );
        drop(elsewhere);
        assert_eq!(proc_address("0100007F:1F90"), Some(at("127.0.0.1:8080")));
    }

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn denials_name_the_flag_or_say_none_exists() {
        let at = "10.0.0.1:80".parse().unwrap();
        assert!(denial(at, SocketAddrUse::TcpConnect).contains("--allow-host 10.0.0.1:80"));
        assert!(denial(at, SocketAddrUse::TcpBind).contains("no flag allows it"));
    }
}
