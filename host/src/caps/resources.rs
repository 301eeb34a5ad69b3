//! What a VU holds in its resource table, audited where such things are
//! made: live sockets are counted (at most [`MAX_SOCKETS`] per VU; more get
//! wasi's `new-socket-limit`), and the bytes of live wasi:http header sets
//! are held in the VU's memory budget (a guest that passes it traps and its
//! instance is replaced). The table is walked once every [`AUDIT_EVERY`]
//! creations, or sooner near a limit, so the cost per creation stays small.

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::WasiSocketsView;
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{HeaderError, HostFields};

use crate::budget::HostHold;
use crate::vu::VuState;

/// Most sockets (TCP and UDP, each a file descriptor) one VU may hold.
pub const MAX_SOCKETS: usize = 1024;

/// Creations between two walks of the table.
const AUDIT_EVERY: usize = 64;

/// The interfaces these checks wrap (the versions wasmtime 48 links).
const TCP_CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const UDP_CREATE: &str = "wasi:sockets/udp-create-socket@0.2.12";
const HTTP_TYPES: &str = "wasi:http/types@0.2.12";

/// One VU's audit state.
#[derive(Debug)]
pub struct ResourceAudit {
    /// Sockets at the last walk plus those made since.
    sockets: usize,
    /// Creations since the last walk.
    made: usize,
    /// The header sets' bytes, held in the VU's memory budget.
    fields: HostHold,
}

impl ResourceAudit {
    pub fn new(fields: HostHold) -> ResourceAudit {
        ResourceAudit {
            sockets: 0,
            made: 0,
            fields,
        }
    }

    /// Walk the table: count sockets, weigh header sets. False when the
    /// header sets no longer fit the memory budget.
    fn walk(&mut self, table: &mut ResourceTable) -> bool {
        let (mut sockets, mut bytes) = (0usize, 0usize);
        for entry in table.iter_mut() {
            if entry.is::<TcpSocket>() || entry.is::<UdpSocket>() {
                sockets += 1;
            } else if let Some(fields) = entry.downcast_ref::<FieldMap>() {
                bytes += fields
                    .iter()
                    .map(|(name, value)| name.as_str().len() + value.len() + 32)
                    .sum::<usize>();
            }
        }
        self.sockets = sockets;
        self.made = 0;
        self.fields.set(bytes)
    }

    /// Before a socket is made: may it be?
    fn socket_allowed(&mut self, table: &mut ResourceTable) -> bool {
        self.made += 1;
        if self.made >= AUDIT_EVERY || self.sockets + 1 >= MAX_SOCKETS {
            self.walk(table);
        }
        if self.sockets >= MAX_SOCKETS {
            return false;
        }
        self.sockets += 1;
        true
    }

    /// Before a header set is made: do the live ones still fit the budget?
    fn fields_allowed(&mut self, table: &mut ResourceTable) -> bool {
        self.made += 1;
        self.made < AUDIT_EVERY || self.walk(table)
    }
}

fn fields_over_budget() -> wasmtime::Error {
    wasmtime::format_err!(
        "the VU's wasi:http header sets do not fit its memory budget (--max-vu-memory, linear \
         memory plus what the host holds for it)"
    )
}

/// Wrap socket and header-set creation in `linker` (which must already hold
/// WASI and wasi:http) with the audit.
pub fn add_to_linker(linker: &mut Linker<VuState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(TCP_CREATE)?.func_wrap(
        "create-tcp-socket",
        |mut store, (family,): (IpAddressFamily,)| {
            let state = store.data_mut();
            if !state.audit.socket_allowed(&mut state.table) {
                return Ok((Err(ErrorCode::NewSocketLimit),));
            }
            let result = tcp_create_socket::Host::create_tcp_socket(&mut state.sockets(), family);
            Ok((match result {
                Ok(socket) => Ok(socket),
                Err(error) => Err(error.downcast()?),
            },))
        },
    )?;
    linker.instance(UDP_CREATE)?.func_wrap_async(
        "create-udp-socket",
        |mut store, (family,): (IpAddressFamily,)| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.audit.socket_allowed(&mut state.table) {
                    return Ok((Err::<Resource<UdpSocket>, _>(ErrorCode::NewSocketLimit),));
                }
                let result =
                    udp_create_socket::Host::create_udp_socket(&mut state.sockets(), family).await;
                Ok((match result {
                    Ok(socket) => Ok(socket),
                    Err(error) => Err(error.downcast()?),
                },))
            })
        },
    )?;
    let mut types = linker.instance(HTTP_TYPES)?;
    types.func_wrap("[constructor]fields", |mut store, (): ()| {
        let state = store.data_mut();
        if !state.audit.fields_allowed(&mut state.table) {
            return Err(fields_over_budget());
        }
        let fields = HostFields::new(&mut state.http())?;
        Ok((fields,))
    })?;
    types.func_wrap(
        "[static]fields.from-list",
        |mut store, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let state = store.data_mut();
            if !state.audit.fields_allowed(&mut state.table) {
                return Err(fields_over_budget());
            }
            let result = HostFields::from_list(&mut state.http(), entries);
            Ok((match result {
                Ok(fields) => Ok(fields),
                Err(error) => Err::<Resource<FieldMap>, HeaderError>(error.downcast()?),
            },))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
