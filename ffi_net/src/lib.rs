//! ffi_net: sockets (socket2) and HTTP(S) (ureq + rustls) under the
//! `net.connect` / `net.listen` / `net.http` capabilities.
//!
//! Every connection is checked on what it actually reaches: a host name is
//! resolved once through the system resolver, each address is checked as
//! `host:port=address` (so a scope on the name or on the address covers it,
//! and a deny on either refuses it; see `ffi_core/src/caps.rs`), and only the
//! checked addresses are connected to. HTTP redirects are followed here, one
//! hop at a time, and every hop is checked the same way (through ureq's
//! resolver hook). `Authorization`, `Cookie` and `Proxy-Authorization` are not
//! sent to another origin after a redirect. Messages never contain a URL's
//! user-info or header values.
//!
//! Errors: a malformed URL or address is InvalidArgument; a name that does not
//! resolve is NotFound; a refused or reset connection is Io (details.errno);
//! a deadline is Timeout; a body over the size limit is LimitExceeded; TLS
//! failures are Io with a message saying "TLS" (and "certificate" for a
//! rejected certificate).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod addr;
pub mod http;
pub mod server;
pub mod socket;
pub mod tcp;
pub mod transport;
pub mod unix;
pub mod url;
pub mod ws;
