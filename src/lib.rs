//! satellite: a local Smart Licensing authority for IOS XR routers.
//! The library holds every capability; `main.rs` only parses arguments and wires.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod ops;
pub mod scheduler;
pub mod server;
pub mod simulate;
pub mod storage;
pub mod sync;
pub mod tls;
