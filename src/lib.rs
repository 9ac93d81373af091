//! mtlscope: prove from the wire that pod-to-pod traffic is mutually authenticated and encrypted.
//!
//! The core is a synchronous pipeline with no I/O of its own; it is fed packets and emits flow
//! records, so every feature can be exercised from a capture file:
//!
//! ```text
//!  capture ──PacketRef──▶ decode ──TcpPacket──▶ flow ──stream bytes──▶ classify
//!  (file, stdin,           (link layers,         (table, reassembly,    (TLS, HTTP/1,
//!   live, pod)              IP, TCP, tunnels)     timeouts)              HTTP/2, other)
//!                                                      │
//!                                                      ▼ FlowRecord
//!                       verdict + identity ──▶ report (table, JSON) | tui
//!                       (certificates, mesh, JA4)
//! ```
//!
//! [`engine::Engine`] wires decode, flow and classify together; [`capture`] turns bytes from any
//! `Read` into packets; [`report`] renders what the engine found.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod capture;
pub mod check;
pub mod classify;
pub mod cli;
pub mod decode;
pub mod engine;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod inventory;
pub mod keylog;
pub mod link;
pub mod live;
pub mod pod;
pub mod redact;
pub mod report;
pub mod tui;
pub mod verdict;

mod common;
pub use common::{Dir, Rfc3339, Timestamp};
