//! `wasi:sockets/ip-name-lookup` under the run's grants: a guest may resolve
//! a name that a grant names (the `--host` origin, `--allow-host`), and gets
//! the addresses the host resolved for that grant when the run started; any
//! other name is refused with the `--allow-host` hint in the log. IP
//! literals resolve to themselves without a lookup. Connecting to the
//! answer is still checked by the socket grants, as before.
//!
//! wasmtime's own implementation asks the system resolver for any name (or
//! refuses all); this one replaces it in the linker (shadowing), so the
//! guest's `getaddrinfo` (wasi-libc) works for granted names only.

use std::collections::VecDeque;
use std::net::IpAddr;

use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable, subscribe};

use crate::policy::SocketGrants;
use crate::vu::VuState;

/// The WASI interface this module answers (the version wasmtime 48 links;
/// guests built against any 0.2.x resolve to it).
const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// The answer to one lookup, handed out address by address.
#[derive(Debug)]
pub struct NameLookup {
    addresses: VecDeque<IpAddr>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for NameLookup {
    // The answer is known when the stream is made: always ready.
    async fn ready(&mut self) {}
}

/// Why a name is not answered.
#[derive(Debug, PartialEq, Eq)]
pub enum LookupRefused {
    /// Not a host name or address.
    Invalid,
    /// No grant names it; the message says which flag would.
    NotGranted(String),
}

/// Answer `name` from the run's grants: an IP literal is itself; a granted
/// name gets the addresses resolved for its grant at the start of the run.
pub fn answer(grants: &SocketGrants, name: &str) -> Result<Vec<IpAddr>, LookupRefused> {
    let trimmed = name.trim();
    let literal = trimmed.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    if trimmed.is_empty()
        || trimmed.len() > 253
        || !trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(LookupRefused::Invalid);
    }
    match grants.addresses_of(trimmed) {
        Some(addresses) if !addresses.is_empty() => Ok(addresses),
        Some(_) => Err(LookupRefused::NotGranted(format!(
            "name lookup of {trimmed:?} found no usable address when the run started"
        ))),
        None => Err(LookupRefused::NotGranted(format!(
            "name lookup of {trimmed:?} denied: not granted to this run; add `--allow-host \
             {trimmed}:PORT` (or pass it as --host) to allow it"
        ))),
    }
}

/// Replace wasmtime's `ip-name-lookup` in `linker` (which must already hold
/// WASI) with the grant-checked one.
pub fn add_to_linker(linker: &mut Linker<VuState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(INTERFACE)?;
    instance.resource(
        "resolve-address-stream",
        ResourceType::host::<NameLookup>(),
        |mut store, rep| {
            store
                .data_mut()
                .table
                .delete(Resource::<NameLookup>::new_own(rep))?;
            Ok(())
        },
    )?;
    instance.func_wrap(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            // The network resource is the capability to resolve; it must be live.
            state.table.get(&network)?;
            let addresses = match answer(&state.run.sockets, &name) {
                Ok(addresses) => addresses,
                Err(LookupRefused::Invalid) => return Ok((Err(ErrorCode::InvalidArgument),)),
                Err(LookupRefused::NotGranted(message)) => {
                    state
                        .run
                        .logger
                        .log(state.vu_id, "warn", message.as_bytes());
                    return Ok((Err(ErrorCode::AccessDenied),));
                }
            };
            let stream = state.table.push(NameLookup {
                addresses: addresses.into(),
            })?;
            Ok((Ok(stream),))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (stream,): (Resource<NameLookup>,)| {
            let lookup = store.data_mut().table.get_mut(&stream)?;
            let next: Option<IpAddress> = lookup.addresses.pop_front().map(Into::into);
            Ok((Ok::<_, ErrorCode>(next),))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (stream,): (Resource<NameLookup>,)| {
            let pollable: Resource<DynPollable> = subscribe(&mut store.data_mut().table, stream)?;
            Ok((pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Grant, NetworkPolicy};

    #[tokio::test]
    async fn granted_names_and_literals_resolve_others_are_refused() {
        let policy = NetworkPolicy::new(vec![
            Grant::parse("localhost:8080").unwrap(),
            Grant::parse("127.0.0.1:6379").unwrap(),
            Grant::parse("*.example.com:443").unwrap(),
        ]);
        let grants = SocketGrants::resolve(&policy).await;
        let local = answer(&grants, "localhost").unwrap();
        assert!(local.iter().any(IpAddr::is_loopback), "{local:?}");
        assert_eq!(answer(&grants, "LocalHost."), Ok(local));
        assert_eq!(
            answer(&grants, "10.1.2.3"),
            Ok(vec!["10.1.2.3".parse().unwrap()])
        );
        assert_eq!(answer(&grants, "[::1]"), Ok(vec!["::1".parse().unwrap()]));
        let refused = answer(&grants, "metadata.google.internal").unwrap_err();
        assert!(
            matches!(&refused, LookupRefused::NotGranted(m) if m.contains("--allow-host metadata.google.internal:PORT")),
            "{refused:?}"
        );
        // A wildcard grants HTTP by name; sockets need an exact grant.
        assert!(matches!(
            answer(&grants, "api.example.com"),
            Err(LookupRefused::NotGranted(_))
        ));
        assert_eq!(answer(&grants, "bad name"), Err(LookupRefused::Invalid));
        assert_eq!(answer(&grants, ""), Err(LookupRefused::Invalid));
    }
}
