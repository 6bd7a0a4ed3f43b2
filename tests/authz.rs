//! Every documented API route against each role on a real satellite: reads for all,
//! account changes for operators, system changes for system-admins only.

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
    "/api/v1/notifications",
    "/api/v1/notifications/test",
];

/// Done on an authority only; a satellite answers 409 whoever asks.
const AUTHORITY_ONLY: &[&str] = &[
    "/api/v1/accounts/{account}/virtual-accounts/{va}/licenses",
    "/api/v1/satellites",
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
    let mut checked = 0;
    for role in ["viewer", "operator", "system-admin"] {
        let token = bearer(&s, role).await;
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
                let expected_denied = !read
                    && (role == "viewer"
                        || (role == "operator" && ADMIN_ROUTES.contains(&path.as_str())));
                let what = format!("{role} {method} {path}");
                if AUTHORITY_ONLY.contains(&path.as_str()) {
                    assert!(
                        status == 409 || (expected_denied && status == 403),
                        "{what}: {status}"
                    );
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
    assert!(checked >= 3 * 20, "checked {checked} role/route pairs");
}
