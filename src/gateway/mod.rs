pub mod callhome;
pub mod message;
