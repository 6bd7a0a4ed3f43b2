pub mod client;
pub mod device;
pub mod fleet;
pub mod show;
