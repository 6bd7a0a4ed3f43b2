//! Operations on a deployment: backup, doctor, metrics, request logs, syslog alerts, health probe.
//! None of it decides licensing; it copies, inspects and counts what other modules hold.

pub mod backup;
pub mod csv;
pub mod doctor;
pub mod health;
pub mod metrics;
pub mod request_log;
pub mod slow_body;
pub mod syslog;
