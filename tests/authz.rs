//! Every documented API route against each role on a real satellite: reads for all,
//! account changes for operators and the account's own account-admins, system changes for
//! system-admins only.

mod common;

use common::*;
use serde_json::{json, Value};

/// POST routes that only read (CSSM shapes its listings as POST).
const POST_READS: &[&str] = &[
    "/api/v1/accounts/{account}/licenses",
    "/api/v1/accounts/{account}/devices",
];

/// Routes that change the system rather than an account: system-admin only.
const ADMIN_ROUTES: &[&str] = &[
    "/api/v1/accounts",
    "/api/v1/accounts/{account}/virtual-accounts",
    "/api/v1/sync/export",
    "/api/v1/sync/import",
    "/api/v1/sync/now",
    "/api/v1/users",
    "/api/v1/users/{name}/disable",
    "/api/v1/users/{name}/enable",
    "/api/v1/users/{name}/delete",
    "/api/v1/api-clients",
    "/api/v1/api-clients/{client_id}/revoke",
    "/api/v1/settings/certificate",
    "/api/v1/settings/schedules",
    "/api/v1/notifications",
    "/api/v1/notifications/test",
    "/api/v1/satellites",
    "/api/v1/audit",
];

/// Listings of who may sign in and the server's settings (file paths, the certificate in
/// use): system-admin only, even to read.
const ADMIN_READS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/api-clients",
    "/api/v1/settings/certificate",
    "/api/v1/settings/schedules",
    "/api/v1/audit",
];

/// Listings that show each caller only what its accounts hold.
const FILTERED_READS: &[&str] = &["/api/v1/accounts", "/api/v1/alerts"];

/// Done on an authority only; a satellite answers 409 whoever asks.
const AUTHORITY_ONLY: &[&str] = &[
    "/api/v1/accounts/{account}/virtual-accounts/{va}/licenses",
    "/api/v1/satellites",
    "/api/v1/authority-key",
];

#[tokio::test]
async fn each_role_reaches_exactly_its_routes() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), "Acme", "CORE");
    let s = Server::start(dir.path());
    let doc: Value = s
        .client()
        .get(s.console_url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    seed_account(dir.path(), "Other", "EDGE");
    let mut checked = 0;
    // Account-admins of this account and of another one, then the unscoped roles.
    for who in [
        "acme-admin",
        "other-admin",
        "viewer",
        "operator",
        "system-admin",
    ] {
        let (role, scope) = match who {
            "acme-admin" => ("account-admin", Some("Acme")),
            "other-admin" => ("account-admin", Some("Other")),
            r => (r, None),
        };
        let token = bearer_scoped(&s, &format!("{who}-client"), role, scope.as_slice()).await;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let public = op["security"].as_array().is_some_and(|a| a.is_empty());
                if public {
                    continue;
                }
                let url = s.console_url(&path.replace("{account}", "Acme").replace("{va}", "CORE"));
                let example = op["requestBody"]["content"]["application/json"]["example"].clone();
                let c = s.client();
                let req = if method == "get" {
                    c.get(url)
                } else {
                    c.post(url).json(&if example.is_null() {
                        json!({})
                    } else {
                        example
                    })
                };
                let status = req
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                let read = method == "get" || POST_READS.contains(&path.as_str());
                let admin_only = ADMIN_ROUTES.contains(&path.as_str())
                    && (!read || ADMIN_READS.contains(&path.as_str()));
                let of_account = path.contains("{account}");
                // An account outside an account-admin's scope may be reported as not found.
                let may_hide = of_account && scope == Some("Other");
                let expected_denied = if scope.is_some() {
                    if of_account {
                        scope == Some("Other") || admin_only
                    } else {
                        // Outside accounts only the listings filtered to their accounts
                        // (accounts, alerts) are theirs.
                        !(method == "get" && FILTERED_READS.contains(&path.as_str()))
                    }
                } else {
                    role != "system-admin" && (admin_only || (!read && role == "viewer"))
                };
                let what = format!("{who} {method} {path}");
                if AUTHORITY_ONLY.contains(&path.as_str()) {
                    assert!(
                        status == 409 || (expected_denied && status == 403),
                        "{what}: {status}"
                    );
                } else if expected_denied && may_hide {
                    assert!(status == 403 || status == 404, "{what}: {status}");
                } else if expected_denied {
                    assert_eq!(status, 403, "{what}");
                } else {
                    assert!(
                        status != 401 && status != 403,
                        "{what}: allowed, got {status}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 5 * 20, "checked {checked} role/route pairs");
}
