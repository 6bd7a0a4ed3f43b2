//! satellite: a local Smart Licensing authority for IOS XR routers.
//! The library holds every capability; `main.rs` only parses arguments and wires.
pub mod crypto;
