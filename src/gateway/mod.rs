//! The device gateway: Call Home parsing, the smart-licensing messages, their handling
//! and the HTTP routes routers post to. It knows nothing of the console or the REST API.

pub mod callhome;
pub mod http;
pub mod message;
pub mod service;
