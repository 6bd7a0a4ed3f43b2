//! Operations on a deployment: backup, doctor, metrics, request logs, alerts (syslog, email, webhook), health probe.
//! None of it decides licensing; it copies, inspects and counts what other modules hold.

pub mod alerts;
pub mod backup;
pub mod csv;
pub mod doctor;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod request_log;
pub mod slow_body;
pub mod syslog;
