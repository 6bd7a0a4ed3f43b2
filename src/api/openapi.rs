//! `GET /api/openapi.json`: an OpenAPI 3 description built from the route table.
//! Every route `api::configure` registers is listed in `ROUTES`.

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Example JSON body, when the route takes one.
    pub body: Option<&'static str>,
    pub public: bool,
}

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc { method: "post", path: "/oauth/token", summary: "Client-credentials grant: form fields grant_type=client_credentials, client_id, client_secret (or HTTP basic auth). Answers access_token, token_type Bearer, expires_in.", body: None, public: true },
    RouteDoc { method: "get", path: "/api/openapi.json", summary: "This document.", body: None, public: true },
    RouteDoc { method: "get", path: "/api/v1/accounts", summary: "Smart accounts the caller may read.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts", summary: "Create a smart account (system-admin).", body: Some(r#"{"name":"Forty-Two uLtd."}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/accounts/{account}/virtual-accounts", summary: "Virtual accounts of a smart account.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/virtual-accounts", summary: "Create a virtual account (system-admin).", body: Some(r#"{"name":"IOSXR"}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/eula", summary: "Accept the Smart Software Licensing Agreement for the account; registrations are refused until then.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", summary: "Registration tokens of a virtual account with their state.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", summary: "Create a registration token (expiresAfterDays 1-365, default 30).", body: Some(r#"{"description":"lab routers","expiresAfterDays":30,"exportControlled":"Not Allowed","maxUses":10}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens/revoke", summary: "Revoke registration tokens; devices already registered are unaffected.", body: Some(r#"{"tokens":["..."]}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/licenses", summary: "Licenses per virtual account and tag: quantity, inUse, available, status, licenseType, substitutions. Paged with limit (max 1000) and offset.", body: Some(r#"{"virtualAccounts":["IOSXR"],"limit":50,"offset":0}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/accounts/{account}/licenses", summary: "Same listing as POST, for every virtual account, first page.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/virtual-accounts/{va}/licenses", summary: "Authority (system-admin): add purchased licenses to a virtual account; licenseType RTU, SIA or TRACKING; optional startDate and endDate for term licenses. Refused with 409 on a satellite.", body: Some(r#"{"license":"ESS-AC-100G-RTU-1","quantity":10,"licenseType":"RTU","endDate":"2029-12-31"}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/virtual-accounts/{va}/licenses/transfer", summary: "Move unused licenses to another virtual account of the same smart account; refused beyond what is available.", body: Some(r#"{"licenses":[{"license":"ESS-AC-100G-RTU-1","quantity":1,"targetVirtualAccount":"LAB"}]}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/devices", summary: "Product instances with status, last contact, registration expiry and licenses. Paged (limit max 1000, offset); search is a prefix of serial, PID or hostname.", body: Some(r#"{"virtualAccounts":["IOSXR"],"limit":50,"offset":0,"search":"FOX"}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/accounts/{account}/devices", summary: "First page of product instances of every virtual account.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/devices/remove", summary: "Remove product instances; their licenses return to the pool.", body: Some(r#"{"productInstanceRemoveRequests":[{"sudi":{"udiPid":"NCS560-4","udiSerialNumber":"FOX2305P81D"}}]}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/accounts/{account}/devices/transfer", summary: "Move product instances, with their usage, to another virtual account.", body: Some(r#"{"devices":[{"sudi":{"udiPid":"NCS560-4","udiSerialNumber":"FOX2305P81D"}}],"targetVirtualAccount":"LAB"}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/accounts/{account}/virtual-accounts/{va}/usage-history", summary: "Daily usage snapshots (date, license, inUse, quantity) of the last ?days=N days (default 90).", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/sync", summary: "Authority: body is a signed sync request file (application/zip); answers the signed response file. The file's signature by the enrolled satellite's key is the credential; an unsigned or unknown sender gets 401.", body: None, public: true },
    RouteDoc { method: "get", path: "/api/v1/sync/status", summary: "Satellite: last success, last failure and why, next scheduled run, pending changes, alerts.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/sync/export", summary: "Satellite: produce the next sync request file (download).", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/sync/import", summary: "Satellite: apply a response file (body application/zip); refused files change nothing.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/sync/now", summary: "Satellite: one online sync now.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/settings/certificate", summary: "System-admin: the certificate the console and device HTTPS listeners present: subject, commonName, issuer, dnsNames, ipAddresses, notBefore, notAfter, fingerprintSha256, chainLength.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/settings/certificate", summary: "System-admin: replace the certificate (PEM chain, server certificate first, and its unencrypted PEM key). Refused with 422 and the reason when the PEM does not parse, the key does not match, the chain is out of order or the certificate is not valid now. Applied to new connections without a restart.", body: Some(r#"{"certificate":"-----BEGIN CERTIFICATE-----\n...","privateKey":"-----BEGIN PRIVATE KEY-----\n..."}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/settings/schedules", summary: "System-admin: the online-sync and daily snapshot schedules (cron with seconds, UTC), where each comes from and their next three runs.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/settings/schedules", summary: "System-admin: set the online-sync schedule (cron with seconds; runs at least 60 s apart), or null to return to the configured sync_schedule. The scheduler follows at once.", body: Some(r#"{"sync":"0 30 3 * * *"}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/accounts/{account}/devices/{pid}/{serial}", summary: "One product instance: licenses with their status, SIA state, certificate and registration dates, and its latest events (?events=N, default 50, at most 500).", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/satellites", summary: "Authority (system-admin): enroll a satellite for an account's virtual accounts; answers its satelliteId and one-time enrollmentToken. Refused with 409 on a satellite.", body: Some(r#"{"account":"Forty-Two uLtd.","name":"site-1","virtualAccounts":["IOSXR"]}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/authority-key", summary: "Authority: its public key (PEM) for satellites to pin with upstream set. Refused with 409 on a satellite.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/audit", summary: "Audit trail, newest first (system-admin): at, actor, action, target, detail. ?q= filters on actor, action or target; limit (at most 500) and offset page.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/alerts", summary: "Current alerts the caller may read: key (stable while the condition lasts), severity, text, since, account and virtualAccount when they concern one.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/notifications", summary: "Alert notification settings: SMTP (host, port, security, username, from, to, passwordSet; never the password), webhook URL, and the last delivery on each channel.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/notifications", summary: "Replace the notification settings (system-admin). A channel left out is switched off; an absent SMTP password keeps the stored one, an empty one removes it. security: none, starttls or tls.", body: Some(r#"{"email":{"host":"mail.example.net","port":587,"security":"starttls","username":"satellite","password":"...","from":"satellite@example.net","to":["noc@example.net"]},"webhook":{"url":"https://hooks.example.net/satellite"}}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/notifications/test", summary: "Send a test message now on channel email or webhook with the saved settings (system-admin). Answers ok and detail: the delivery or the error, such as connection refused.", body: Some(r#"{"channel":"webhook"}"#), public: false },
    RouteDoc { method: "get", path: "/api/v1/satellites", summary: "Authority: enrolled satellites, the virtual accounts each serves, last sync and reported instances.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/users", summary: "System-admin: console users with role, smart-account scope and whether disabled.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/users", summary: "System-admin: add a console user (password at least 12 characters; when omitted one is generated and returned once as password). accounts is required for account-admin.", body: Some(r#"{"name":"alice","role":"operator","password":"correct horse battery","accounts":[]}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/users/{name}/disable", summary: "System-admin: disable a user; logins are refused and their sessions end at once. Refused (409) for yourself and for the last enabled system-admin.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/users/{name}/enable", summary: "System-admin: enable a disabled user again.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/users/{name}/delete", summary: "System-admin: delete a user and their sessions; the audit log keeps the name. Refused (409) for yourself and for the last enabled system-admin.", body: None, public: false },
    RouteDoc { method: "get", path: "/api/v1/api-clients", summary: "System-admin: API clients with role, scope, creation time and whether revoked; never secrets.", body: None, public: false },
    RouteDoc { method: "post", path: "/api/v1/api-clients", summary: "System-admin: create an API client; the answer holds clientSecret, shown this once and stored only as a hash.", body: Some(r#"{"name":"inventory","role":"viewer","accounts":["Acme"]}"#), public: false },
    RouteDoc { method: "post", path: "/api/v1/api-clients/{client_id}/revoke", summary: "System-admin: revoke an API client; its access tokens stop working at once.", body: None, public: false },
];

pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {}}},
                "401": {"description": "No or invalid credentials", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "403": {"description": "Role does not allow this", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "404": {"description": "Not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "422": {"description": "Invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if let Some(example) = r.body {
            let example: Value = serde_json::from_str(example).unwrap_or(Value::Null);
            op["requestBody"] = json!({"content": {"application/json": {"example": example}}});
        }
        if r.path == "/oauth/token" {
            op["requestBody"] = json!({"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"grant_type": {"type": "string"}, "client_id": {"type": "string"}, "client_secret": {"type": "string"}}}}}});
        }
        if r.public {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "satellite API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Smart Licensing on-prem API. Authenticate with POST /oauth/token, then send Authorization: Bearer <token>. A signed-in console session is accepted too: its cookie, plus its CSRF token in the X-CSRF-Token header on anything but GET."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "__Host-satellite",
                            "description": "A console session; requests other than GET also need the session's CSRF token in the X-CSRF-Token header."}
            },
            "schemas": {"Error": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ERROR"]}, "statusMessage": {"type": "string"}}}}
        },
        "security": [{"bearer": []}, {"session": []}]
    })
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(build())
}
