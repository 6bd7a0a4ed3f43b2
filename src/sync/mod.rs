//! Synchronisation with upstream: the signed sync file and its members.
//! One format, two transports (files carried by hand, or POSTed online).

pub mod archive;
pub mod model;
