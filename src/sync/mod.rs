//! Synchronisation with upstream: the signed sync file, its members and the online transport.
//! One format, two transports (files carried by hand, or POSTed online).

pub mod archive;
pub mod model;
pub mod online;
