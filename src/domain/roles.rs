//! Roles and what each may do; the API and console both ask here, so they cannot disagree.
//! Pure rules: the caller supplies who is asking and which account is touched.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    SystemAdmin,
    Operator,
    AccountAdmin,
    Viewer,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}: expected system-admin, operator, account-admin or viewer")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 4] = [
        Role::SystemAdmin,
        Role::Operator,
        Role::AccountAdmin,
        Role::Viewer,
    ];

    pub fn parse(s: &str) -> Result<Role, UnknownRole> {
        match s.trim() {
            "system-admin" => Ok(Role::SystemAdmin),
            "operator" => Ok(Role::Operator),
            "account-admin" => Ok(Role::AccountAdmin),
            "viewer" => Ok(Role::Viewer),
            other => Err(UnknownRole(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system-admin",
            Role::Operator => "operator",
            Role::AccountAdmin => "account-admin",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read data of an account.
    Read,
    /// Change data inside an account: tokens, devices, transfers, EULA.
    WriteAccount,
    /// Change the system: accounts, users, API clients, licenses, sync, settings.
    Administer,
}

/// Who is asking: a role plus, for account-admins, the accounts they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// Account ids an account-admin or viewer is limited to; empty means unlimited
    /// for viewers and nothing for account-admins.
    pub accounts: Vec<i64>,
}

impl Principal {
    pub fn can(&self, perm: Permission, account_id: Option<i64>) -> bool {
        let in_scope = |id: Option<i64>| match id {
            Some(id) => self.accounts.contains(&id),
            None => false,
        };
        match (self.role, perm) {
            (Role::SystemAdmin, _) => true,
            (Role::Operator, Permission::Read | Permission::WriteAccount) => true,
            (Role::Operator, Permission::Administer) => false,
            (Role::AccountAdmin, Permission::Read | Permission::WriteAccount) => {
                in_scope(account_id)
            }
            (Role::AccountAdmin, Permission::Administer) => false,
            (Role::Viewer, Permission::Read) => {
                self.accounts.is_empty() || account_id.is_none() || in_scope(account_id)
            }
            (Role::Viewer, _) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(role: Role, accounts: Vec<i64>) -> Principal {
        Principal {
            name: "t".into(),
            role,
            accounts,
        }
    }

    #[test]
    fn viewer_reads_but_never_writes() {
        let v = p(Role::Viewer, vec![]);
        assert!(v.can(Permission::Read, Some(1)));
        assert!(!v.can(Permission::WriteAccount, Some(1)));
        assert!(!v.can(Permission::Administer, None));
    }

    #[test]
    fn account_admin_is_confined_to_its_accounts() {
        let a = p(Role::AccountAdmin, vec![7]);
        assert!(a.can(Permission::WriteAccount, Some(7)));
        assert!(!a.can(Permission::WriteAccount, Some(8)));
        assert!(!a.can(Permission::Read, Some(8)));
        assert!(!a.can(Permission::Administer, None));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").is_err());
    }
}
