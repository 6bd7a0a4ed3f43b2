pub mod device;
pub mod show;
