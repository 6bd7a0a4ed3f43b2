//! The pure domain: names, roles, tokens, the product catalog and compliance.
//! No I/O and no clock reads here; time is always a parameter.

pub mod catalog;
pub mod compliance;
pub mod names;
pub mod roles;
pub mod schedule;
pub mod tokens;
