//! Reading the audit trail: who changed what, newest first.
//! Read-only; rows are written by each service in its own transaction, never here.

use super::{require, Ctx};
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::storage::audit::{self, AuditEntry};

pub const MAX_PAGE: i64 = 500;

/// One page of entries whose actor, action or target contains `filter`.
/// System-wide, so it takes the administrator's permission, not an account's.
pub async fn list(
    ctx: &Ctx,
    who: &Principal,
    filter: Option<&str>,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<AuditEntry>> {
    require(who, Permission::Administer, None)?;
    let filter = filter
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    let (limit, offset) = (limit.clamp(1, MAX_PAGE), offset.max(0));
    ctx.store
        .read(move |c| Ok::<_, AppError>(audit::list(c, filter.as_deref(), limit, offset)?))
        .await
}
