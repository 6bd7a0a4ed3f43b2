pub mod catalog;
pub mod compliance;
