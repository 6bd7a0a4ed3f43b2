//! Settings for system admins: the certificate of the HTTPS listeners and the job schedules.
//! Changes go through the settings service; a private key is never echoed back into a page.

use super::{
    csrf_field, layout, notice, state_of, when, with_page_headers, ConsoleError, ConsoleResult,
    Posted, Signed,
};
use crate::api::error::public_message;
use crate::app::settings as app_settings;
use crate::domain::roles::Permission;
use crate::error::AppError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

/// Largest certificate form: a full chain and key, URL-encoded.
pub const CERT_FORM_LIMIT: usize = 192 * 1024;
/// Certificates expiring sooner than this are flagged on the page.
const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(serde::Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

/// A refusal shown next to the form it concerns.
enum Refusal {
    Certificate(String),
    Schedule(String),
}

async fn render(
    req: &HttpRequest,
    s: &Signed,
    done: Option<&str>,
    refusal: Option<Refusal>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(req)?;
    let who = s.principal();
    let cert = app_settings::certificate(who, &state.tls)?;
    let schedules = app_settings::schedules(&state.ctx, who, &state.sync_schedule)?;
    let now = state.ctx.clock.now();
    let left = cert.not_after - now;
    let (cert_error, schedule_error) = match &refusal {
        Some(Refusal::Certificate(t)) => (Some(t.as_str()), None),
        Some(Refusal::Schedule(t)) => (None, Some(t.as_str())),
        None => (None, None),
    };
    let sync = &schedules.sync;
    let body = html! {
        (notice(done))
        h2 { "TLS certificate" }
        p.muted { "Presented by the console and the device HTTPS listener." }
        dl.facts #current-cert {
            dt { "Subject" } dd #cert-subject { (cert.subject) }
            dt { "Names" } dd #cert-names {
                @let names = cert.names();
                @if names.is_empty() { span.muted { "none (no subjectAltName)" } } @else { (names.join(", ")) }
            }
            dt { "Issuer" } dd #cert-issuer { (cert.issuer) }
            dt { "Valid from" } dd { (when(cert.not_before)) }
            dt { "Expires" } dd #cert-expiry {
                (when(cert.not_after))
                @if left.num_seconds() <= 0 { " " span.badge.bad { "expired" } }
                @else if left.num_days() < EXPIRY_WARNING_DAYS { " " span.badge.warn { "in " (left.num_days()) " days" } }
            }
            dt { "SHA-256 fingerprint" } dd { code #cert-fingerprint { (cert.fingerprint_sha256) } }
            dt { "Chain" } dd { (cert.chain_length) " certificate(s)" }
            dt { "File" } dd { code { (state.tls.cert_path().display()) } }
        }
        h3 { "Replace the certificate" }
        @if let Some(e) = cert_error { p.error #cert-error role="alert" { (e) } }
        form.stack #cert-form method="post" action="/settings/certificate" {
            (csrf_field(&s.0))
            label { "Certificate chain (PEM, server certificate first, then its issuers)"
                textarea name="certificate" rows="8" cols="70" spellcheck="false"
                    placeholder="-----BEGIN CERTIFICATE-----" required {} }
            label { "Private key (PEM, without passphrase)"
                textarea name="private_key" rows="6" cols="70" spellcheck="false" autocomplete="off"
                    placeholder="-----BEGIN PRIVATE KEY-----" required {} }
            p.muted { "The key must match the certificate and the certificate must be valid now. "
                "New connections get it at once; no restart. The key is written with mode 0600." }
            button.primary type="submit" #cert-submit { "Replace certificate" }
        }
        h2 { "Schedules" }
        p.muted { "Cron with seconds, in UTC: " code { "sec min hour day month weekday" }
            ", e.g. " code { "0 0 2 * * *" } " for 02:00 every day." }
        table #schedules {
            thead { tr { th { "Job" } th { "Schedule" } th { "Source" } th { "Next runs" } } }
            tbody {
                tr #sync-row {
                    td { "Online sync" @if !sync.active { br; span.muted { "runs on a satellite only" } } }
                    td { code #sync-schedule { (sync.schedule) } }
                    td { (source_text(sync.source)) }
                    td #sync-next { @for t in &sync.next_runs { (when(*t)) br; } }
                }
                tr #snapshot-row {
                    td { "Daily usage snapshot" }
                    td { code { (schedules.snapshot.schedule) } }
                    td { (source_text(schedules.snapshot.source)) }
                    td #snapshot-next { @for t in &schedules.snapshot.next_runs { (when(*t)) br; } }
                }
            }
        }
        @if let Some(e) = schedule_error { p.error #schedule-error role="alert" { (e) } }
        form.row #schedule-form method="post" action="/settings/schedule" {
            (csrf_field(&s.0))
            label { "Online sync schedule "
                input name="sync_schedule" value=(sync.schedule) maxlength="128" required; }
            button.primary type="submit" #schedule-submit { "Save schedule" }
        }
        @if sync.source == "settings" {
            form.row #schedule-reset method="post" action="/settings/schedule" {
                (csrf_field(&s.0))
                input type="hidden" name="reset" value="1";
                span.muted { "Configured: " code { (sync.configured.as_deref().unwrap_or("")) } }
                button type="submit" #schedule-reset-button { "Return to the configured schedule" }
            }
        }
    };
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(with_page_headers(&mut HttpResponse::build(status))
        .body(layout(&s.0, "/settings", "Settings", body).into_string()))
}

fn source_text(source: &str) -> &'static str {
    match source {
        "settings" => "set on this page",
        "config" => "configuration (sync_schedule)",
        _ => "built in",
    }
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<SettingsQuery>,
) -> ConsoleResult<HttpResponse> {
    crate::app::require(s.principal(), Permission::Administer, None)?;
    render(&req, &s, q.done.as_deref(), None).await
}

/// Refusals of the input are shown on the page; anything else is an error page.
fn refusal_text(e: AppError) -> Result<String, ConsoleError> {
    match e {
        AppError::Invalid(_) | AppError::Unavailable(_) => Ok(public_message(&e)),
        other => Err(other.into()),
    }
}

pub async fn replace_certificate(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let chain = p.form.get("certificate").unwrap_or_default();
    let key = p.form.get("private_key").unwrap_or_default();
    let result =
        app_settings::replace_certificate(&state.ctx, p.principal(), &state.tls, chain, key).await;
    let s = Signed(p.session);
    match result {
        Ok(_) => Ok(super::see_other("/settings?done=certificate")),
        Err(e) => {
            let text = refusal_text(e)?;
            render(&req, &s, None, Some(Refusal::Certificate(text))).await
        }
    }
}

pub async fn set_schedule(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let text = if p.form.checked("reset") {
        None
    } else {
        Some(p.form.get("sync_schedule").unwrap_or_default().to_string())
    };
    if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return render(
            &req,
            &Signed(p.session),
            None,
            Some(Refusal::Schedule(
                "enter a schedule, or return to the configured one".into(),
            )),
        )
        .await;
    }
    let result = app_settings::set_sync_schedule(
        &state.ctx,
        p.principal(),
        &state.sync_schedule,
        text.as_deref(),
    )
    .await;
    let s = Signed(p.session);
    match result {
        Ok(_) => Ok(super::see_other("/settings?done=schedule")),
        Err(e) => {
            let text = refusal_text(e)?;
            render(&req, &s, None, Some(Refusal::Schedule(text))).await
        }
    }
}
