//! Application services: each operator-facing action as one function that checks who asks,
//! applies the domain's rules and commits one transaction with its audit row.
//! The CLI, the REST API and the console all call these; none of them writes SQL itself.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod compliance;
pub mod devices;
pub mod licenses;
pub mod notifications;
pub mod populate;
pub mod principals;
pub mod sessions;
pub mod settings;
pub mod sync;
pub mod tokens;

use crate::clock::Clock;
use crate::config::ServerRole;
use crate::domain::roles::{Permission, Principal, Role};
use crate::error::{AppError, AppResult};
use crate::storage::Store;

/// What every service needs: the database, the clock and the role this data dir plays.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub clock: Clock,
    pub role: ServerRole,
}

/// The principal used by local shell commands: whoever can read the data dir is its admin.
pub fn cli_principal() -> Principal {
    let who = std::env::var("USER").unwrap_or_else(|_| "local".into());
    Principal {
        name: format!("cli:{who}"),
        role: Role::SystemAdmin,
        accounts: Vec::new(),
    }
}

pub fn require(p: &Principal, perm: Permission, account_id: Option<i64>) -> AppResult<()> {
    if p.can(perm, account_id) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "{} ({}) may not do this",
            p.name,
            p.role.as_str()
        )))
    }
}

pub fn require_authority(ctx: &Ctx, what: &str) -> AppResult<()> {
    if ctx.role == ServerRole::Authority {
        Ok(())
    } else {
        Err(AppError::Conflict(format!(
            "{what} is done on the authority; this satellite receives its licenses from upstream by sync"
        )))
    }
}
