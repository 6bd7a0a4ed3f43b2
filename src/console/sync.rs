//! Sync with upstream: a satellite's status, run-now, request download and response upload;
//! an authority's satellites, enrollment and public key. An enrollment token is shown only once.

use super::{
    account_picker, csrf_field, is_admin, layout, pick_account, respond, state_of, when,
    ConsoleError, ConsoleResult, HeaderPosted, Posted, Signed,
};
use crate::api::error::{public_message, status_of};
use crate::app::sync::{self as app_sync, Enrollment, SyncStatus};
use crate::app::{accounts, require};
use crate::config::ServerRole;
use crate::domain::roles::{Permission, Principal};
use crate::error::AppError;
use crate::server::AppState;
use crate::sync::archive::Limits;
use crate::sync::online::{self, RetryPolicy};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::html;
use std::collections::HashSet;
use std::time::Duration;

/// Largest response file the upload route reads: the same bound the archive reader applies.
pub fn import_limit() -> usize {
    usize::try_from(Limits::default().max_archive_bytes).unwrap_or(usize::MAX)
}

/// Someone waits in front of the page: fewer and shorter retries than the scheduled run.
fn interactive_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_secs(1),
        timeout: Duration::from_secs(120),
    }
}

#[derive(serde::Deserialize)]
pub struct SyncQuery {
    account: Option<String>,
}

/// What a run-now produced, shown above the status.
struct Outcome {
    ok: bool,
    text: String,
}

fn at(t: Option<&str>) -> String {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| when(t.with_timezone(&Utc)))
        .unwrap_or_else(|| "never".into())
}

fn on_satellite(state: &AppState, what: &str) -> ConsoleResult<()> {
    if state.ctx.role == ServerRole::Satellite {
        Ok(())
    } else {
        Err(AppError::Conflict(format!(
            "{what} is done on a satellite, not on the authority"
        ))
        .into())
    }
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<SyncQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    match state.ctx.role {
        ServerRole::Satellite => satellite_page(&state, &s, None).await,
        ServerRole::Authority => authority_page(&state, &s, q.account.as_deref(), None).await,
    }
}

// ---------------------------------------------------------------- satellite

async fn satellite_page(
    state: &AppState,
    s: &Signed,
    outcome: Option<Outcome>,
) -> ConsoleResult<HttpResponse> {
    let who = s.principal();
    require(who, Permission::Read, None)?;
    let schedule = state.sync_schedule.cron();
    let next = schedule.after(&state.ctx.clock.now()).next();
    let st: SyncStatus = app_sync::status(&state.ctx, Some(schedule)).await?;
    let admin = is_admin(who);
    let body = html! {
        @if !st.alerts.is_empty() {
            div.alerts #sync-alerts role="alert" {
                strong { "Attention" }
                ul { @for a in &st.alerts { li { (a) } } }
            }
        }
        @if let Some(o) = &outcome {
            p #run-result role="status" class=(if o.ok { "notice" } else { "error" }) { (o.text) }
        }
        @if !st.configured {
            p.muted { "No upstream is configured. On this host run "
                code { "satellite upstream set --url … --enrollment-token … --authority-key …" }
                " with the token and key from the authority." }
        }
        h2 { "Upstream" }
        dl.facts #upstream {
            dt { "Authority URL" } dd { (st.url.as_deref().unwrap_or("not configured")) }
            dt { "Satellite id" } dd { code { (st.satellite_id.as_deref().unwrap_or("-")) } }
            dt { "Enrolled" } dd #enrolled { @if st.enrolled { "yes" } @else { "no" } }
        }
        h2 { "Status" }
        dl.facts #sync-status {
            dt { "Last success" } dd #last-success { (at(st.last_success_at.as_deref())) }
            dt { "Last failure" } dd #last-failure {
                (at(st.last_failure_at.as_deref()))
                @if let Some(r) = &st.last_failure { br; span.muted { (r) } }
            }
            dt { "Next scheduled run" } dd {
                @match next { Some(t) => { (when(t)) " " span.muted { "(" (state.sync_schedule.current().schedule.as_str()) ")" } }, None => { "none" } }
            }
            dt { "Requests sent" } dd { (st.request_sequence) }
            dt { "Responses imported" } dd { (st.last_imported_response) }
            dt { "Pending changes" } dd #pending { (st.pending_changes) }
            dt { "Last request file" } dd { (at(st.last_export_at.as_deref())) }
        }
        @if admin && st.configured {
            h2 { "Synchronise" }
            p #import-result role="status" hidden {}
            div.actions {
                form.row #run-now method="post" action="/sync/run" {
                    (csrf_field(&s.0))
                    span.muted { "Connected: send a request and apply the answer now." }
                    button.primary type="submit" #run-now-button { "Run now" }
                }
                form.row #export method="post" action="/sync/export" {
                    (csrf_field(&s.0))
                    span.muted { "Disconnected: carry this file to the authority." }
                    button type="submit" #export-button { "Download request file" }
                }
                form.row #import-form method="post" action="/sync/import"
                    data-upload="/sync/import" data-result="import-result" {
                    (csrf_field(&s.0))
                    label { "Response file from the authority"
                        input #import-file type="file" name="file" accept=".zip,application/zip"; }
                    button type="submit" #import-button { "Import response file" }
                }
            }
        }
    };
    Ok(respond(layout(&s.0, "/sync", "Sync with upstream", body)))
}

fn admin_on_satellite(state: &AppState, who: &Principal, what: &str) -> ConsoleResult<()> {
    require(who, Permission::Administer, None)?;
    on_satellite(state, what)
}

pub async fn run_now(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    admin_on_satellite(&state, p.principal(), "running a sync")?;
    let outcome =
        match online::sync_now(&state.ctx, &state.config.data_dir, &interactive_policy()).await {
            Ok(r) => Outcome {
                ok: true,
                text: format!(
                    "Synchronised: response {} applied, {} virtual account(s), {} license line(s), {} change(s) acknowledged.",
                    r.sequence, r.virtual_accounts, r.licenses, r.changes_acknowledged
                ),
            },
            Err(e) => {
                tracing::warn!(error = %e, "sync from the console failed");
                Outcome {
                    ok: false,
                    text: format!("The sync failed: {}", public_message(&e)),
                }
            }
        };
    satellite_page(&state, &Signed(p.session), Some(outcome)).await
}

pub async fn export(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    admin_on_satellite(&state, p.principal(), "exporting a request file")?;
    let bytes = app_sync::export(&state.ctx, &state.config.data_dir).await?;
    let name = format!(
        "sync-request-{}.zip",
        state.ctx.clock.now().format("%Y%m%d-%H%M%S")
    );
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}

fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text.to_string())
}

/// Applies an uploaded response file. Answers with one line of text the page shows as is:
/// the import's summary, or why the file was refused.
pub async fn import(req: HttpRequest, h: HeaderPosted, body: web::Bytes) -> HttpResponse {
    let result = async {
        let state = state_of(&req)?;
        admin_on_satellite(&state, &h.0.principal, "importing a response file")?;
        if body.is_empty() {
            return Err(ConsoleError::BadRequest(
                "choose a response file first".into(),
            ));
        }
        let r = app_sync::import(&state.ctx, &h.0.principal.name, body.to_vec()).await?;
        Ok(format!(
            "Imported response {}: {} virtual account(s), {} license line(s), {} change(s) acknowledged.",
            r.sequence, r.virtual_accounts, r.licenses, r.changes_acknowledged
        ))
    }
    .await;
    match result {
        Ok(text) => plain(StatusCode::OK, &text),
        Err(ConsoleError::App(e)) => {
            let status = status_of(&e);
            if status.is_server_error() {
                tracing::error!(error = %e, "console import failed");
            }
            // Refusals are already one line; keep it so even if a reason ever carries more.
            let reason = public_message(&e);
            let line = reason.lines().next().unwrap_or_default();
            plain(status, line)
        }
        Err(other) => plain(
            actix_web::ResponseError::status_code(&other),
            &other.to_string(),
        ),
    }
}

// ---------------------------------------------------------------- authority

async fn authority_page(
    state: &AppState,
    s: &Signed,
    account: Option<&str>,
    created: Option<&Enrollment>,
) -> ConsoleResult<HttpResponse> {
    let who = s.principal();
    let sats = app_sync::satellites(&state.ctx, who).await?;
    let admin = is_admin(who);
    let enroll_form = if admin {
        let (all, chosen) = pick_account(state, who, account).await?;
        match chosen {
            Some(acc) => {
                let vas = accounts::list_vas(&state.ctx, who, &acc.name).await?;
                let served: HashSet<(&str, &str)> = sats
                    .iter()
                    .flat_map(|v| {
                        v.virtual_accounts
                            .iter()
                            .map(|va| (v.account.as_str(), va.as_str()))
                    })
                    .collect();
                html! {
                    h2 { "Enroll a satellite" }
                    (account_picker("/sync", &all, Some(&acc)))
                    form.row #enroll method="post" action="/sync/enroll" {
                        (csrf_field(&s.0))
                        input type="hidden" name="account" value=(acc.name);
                        label { "Satellite name" input name="name" maxlength="128" required; }
                        fieldset.vas {
                            legend { "Virtual accounts it serves (none ticked: every one not yet served)" }
                            @for v in &vas {
                                @let taken = served.contains(&(acc.name.as_str(), v.name.as_str()));
                                label.check {
                                    input type="checkbox" name="va" value=(v.name) disabled[taken];
                                    (v.name) @if taken { span.muted { " (served)" } }
                                }
                            }
                        }
                        button.primary type="submit" #enroll-button { "Enroll" }
                    }
                }
            }
            None => html! { p.muted { "Create a smart account before enrolling a satellite." } },
        }
    } else {
        html! {}
    };
    let body = html! {
        @if let Some(e) = created {
            div.newtoken #new-enrollment {
                p { strong { "Satellite " code { (e.satellite_id) } " enrolled" }
                    " for " (e.virtual_accounts.join(", ")) ". Copy the token now: it is shown only once "
                    "and is consumed by the satellite's first sync." }
                p { code.token #enrollment-token { (e.token) } " "
                    button type="button" data-copy="enrollment-token" { "Copy" } }
                p.muted { "On the satellite: " code { "satellite upstream set --url <this authority> --enrollment-token <token> --authority-key authority.pem" } }
            }
        }
        p { a #authority-key href="/sync/authority.pem" { "Download the authority public key (PEM)" }
            span.muted { " — satellites pin it to verify every response file." } }
        table #satellites {
            thead { tr {
                th { "Name" } th { "Satellite id" } th { "Smart account" } th { "Virtual accounts served" }
                th { "Enrolled" } th { "Last sync" } th.num { "Instances reported" }
            } }
            tbody {
                @if sats.is_empty() { tr { td colspan="7" .muted { "No satellites enrolled." } } }
                @for v in &sats {
                    @let sat = &v.satellite;
                    tr data-satellite=(sat.satellite_id) {
                        td { (sat.name) }
                        td { code { (sat.satellite_id) } }
                        td { (v.account) }
                        td { (v.virtual_accounts.join(", ")) }
                        td { @match sat.enrolled_at {
                            Some(t) => { "yes, " (when(t)) },
                            None => { span.badge.warn { "awaiting first sync" } },
                        } }
                        td { (sat.last_sync_at.map(when).unwrap_or_else(|| "never".into())) }
                        td.num { (v.instances_reported) }
                    }
                }
            }
        }
        (enroll_form)
    };
    Ok(respond(layout(&s.0, "/sync", "Satellites", body)))
}

pub async fn enroll(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &p.form;
    let account = f.required("account", "Smart account")?;
    let name = f.required("name", "Satellite name")?;
    let vas: Vec<String> = f
        .all("va")
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let e = app_sync::enroll_create(&state.ctx, p.principal(), &account, &name, vas).await?;
    // Answered directly, not through a redirect: the token must not sit in a URL or a reload.
    authority_page(&state, &Signed(p.session), Some(&account), Some(&e)).await
}

pub async fn authority_key(req: HttpRequest, s: Signed) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    require(s.principal(), Permission::Read, None)?;
    crate::app::require_authority(&state.ctx, "serving the authority key")?;
    let pem = app_sync::key_pair(&state.config.data_dir)?.public_key_pem();
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"authority.pem\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(pem))
}
