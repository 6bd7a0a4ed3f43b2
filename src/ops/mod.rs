//! Operations on a deployment: backup and restore, the doctor's checks, Prometheus metrics.
//! None of it decides licensing; it copies, inspects and counts what other modules hold.

pub mod backup;
pub mod doctor;
pub mod metrics;
