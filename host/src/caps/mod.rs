//! Host capabilities, one module each: what a guest may import.

pub mod control;
pub mod data;
pub mod group;
pub mod grpc;
pub mod http;
pub mod ip_name_lookup;
pub mod metrics;
pub mod net;
pub mod resources;
pub mod sockets;
pub mod tags;
pub mod wasi_http;
pub mod xmlrpc;
