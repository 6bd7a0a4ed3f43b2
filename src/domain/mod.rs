pub mod names;
pub mod roles;
pub mod tokens;
