//! Wire types: JSON-RPC framing and one module per protocol area. No
//! behaviour lives here.

pub mod jsonrpc;
pub mod notifications;
pub mod params;

/// The protocol version clients must match on MAJOR.
pub const PROTOCOL_VERSION: &str = "2.0.0";
