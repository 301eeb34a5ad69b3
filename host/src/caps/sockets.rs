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
//!   connect once to that port, and accept that one connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::guest_log::GuestLogger;
use crate::policy::SocketGrants;

/// One VU's self-connected pairs in the making.
#[derive(Debug, Default)]
pub struct SelfPairs {
    /// Loopback ports this VU listens on and has not connected to yet.
    listening: Vec<u16>,
    /// Connections this VU made to its own listeners, not yet accepted.
    pending_accepts: u32,
}

/// Listeners a VU may have open at once for self-connected pairs.
const MAX_SELF_LISTENERS: usize = 16;

impl SelfPairs {
    /// May this use go ahead? Updates the pairs in the making.
    pub fn allows(&mut self, grants: &SocketGrants, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        match use_ {
            SocketAddrUse::TcpConnect => {
                if grants.allows(addr) {
                    return true;
                }
                let own = addr
                    .ip()
                    .is_loopback()
                    .then(|| self.listening.iter().position(|p| *p == addr.port()))
                    .flatten();
                match own {
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
                self.listening.push(addr.port());
                true
            }
            SocketAddrUse::TcpAccept => {
                if addr.ip().is_loopback() && self.pending_accepts > 0 {
                    self.pending_accepts -= 1;
                    true
                } else {
                    false
                }
            }
        }
    }
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
        let allowed = pairs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allows(&grants, addr, use_);
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
        assert!(pairs.allows(&grants, at("127.0.0.1:6379"), SocketAddrUse::TcpConnect));
        assert!(!pairs.allows(&grants, at("127.0.0.1:6380"), SocketAddrUse::TcpConnect));
        assert!(pairs.allows(&grants, at("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(pairs.allows(&grants, at("127.0.0.1:0"), SocketAddrUse::TcpBind));
        assert!(!pairs.allows(&grants, at("0.0.0.0:8080"), SocketAddrUse::TcpBind));
        // Not on a public address, and no accept without its own connect.
        assert!(!pairs.allows(&grants, at("0.0.0.0:40000"), SocketAddrUse::TcpListen));
        assert!(!pairs.allows(&grants, at("127.0.0.1:50000"), SocketAddrUse::TcpAccept));
        // A self-connected pair: listen, connect once, accept once.
        assert!(pairs.allows(&grants, at("127.0.0.1:40000"), SocketAddrUse::TcpListen));
        assert!(pairs.allows(&grants, at("127.0.0.1:40000"), SocketAddrUse::TcpConnect));
        assert!(!pairs.allows(&grants, at("127.0.0.1:40000"), SocketAddrUse::TcpConnect));
        assert!(pairs.allows(&grants, at("127.0.0.1:50000"), SocketAddrUse::TcpAccept));
        assert!(!pairs.allows(&grants, at("127.0.0.1:50001"), SocketAddrUse::TcpAccept));
    }

    #[test]
    fn denials_name_the_flag_or_say_none_exists() {
        let at = "10.0.0.1:80".parse().unwrap();
        assert!(denial(at, SocketAddrUse::TcpConnect).contains("--allow-host 10.0.0.1:80"));
        assert!(denial(at, SocketAddrUse::TcpBind).contains("no flag allows it"));
    }
}
