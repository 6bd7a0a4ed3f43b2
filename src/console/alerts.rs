//! The alerts page: current alerts, the notification settings (changed by system-admins
//! only, read by whoever may read the system) and test sends. Never shows the SMTP password.

use super::{csrf_field, is_admin, layout, respond, state_of, when, ConsoleResult, Posted, Signed};
use crate::api::error::public_message;
use crate::app::alerts::{self, Severity};
use crate::app::notifications::{
    self, split_recipients, Channel, Delivery, EmailInput, NotificationInput, NotificationView,
    WebhookInput,
};
use crate::app::sessions::ActiveSession;
use crate::domain::roles::Permission;
use crate::error::AppError;
use crate::ops::notify;
use crate::server::AppState;
use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup};

/// A result shown above the page after a POST.
struct Outcome {
    id: &'static str,
    ok: bool,
    text: String,
}

pub async fn page(req: HttpRequest, s: Signed) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    render(&state, &s.0, None, None).await
}

fn delivery(d: Option<&Delivery>) -> Markup {
    html! {
        @match d {
            None => { span.muted { "none yet" } },
            Some(d) if d.ok => { span.badge.ok { "ok" } " " (when(d.at)) " " span.muted { (d.detail) } },
            Some(d) => { span.badge.bad { "failed" } " " (when(d.at)) ": " (d.detail) },
        }
    }
}

fn read_only(view: &NotificationView) -> Markup {
    html! {
        dl.facts #notification-settings {
            dt { "Email" }
            dd { @match &view.email {
                None => { "off" },
                Some(e) => {
                    (e.settings.host) ":" (e.settings.port) " (" (e.settings.security.as_str()) "), from "
                    (e.settings.from) " to " (e.settings.to.join(", "))
                },
            } }
            dt { "Webhook" }
            dd { @match &view.webhook { None => { "off" }, Some(w) => { code { (w.url) } } } }
        }
    }
}

fn settings_form(session: &ActiveSession, view: &NotificationView) -> Markup {
    let e = view.email.as_ref();
    let security = e
        .map(|e| e.settings.security.as_str())
        .unwrap_or("starttls");
    html! {
        form.row #notifications method="post" action="/alerts/notifications" {
            (csrf_field(session))
            fieldset {
                legend { "Email (SMTP)" }
                label.check { input type="checkbox" name="email_on" value="1" checked[e.is_some()]; "Send alerts by email" }
                label { "SMTP host" input name="smtp_host" maxlength="253" value=[e.map(|e| e.settings.host.as_str())]; }
                label { "Port" input name="smtp_port" type="number" min="1" max="65535" value=[e.map(|e| e.settings.port)]; }
                label { "Security"
                    select name="smtp_security" {
                        @for (v, l) in [("starttls", "STARTTLS"), ("tls", "TLS (SMTPS)"), ("none", "none")] {
                            option value=(v) selected[v == security] { (l) }
                        }
                    }
                }
                label { "Username (optional)" input name="smtp_username" maxlength="256" autocomplete="off"
                    value=[e.and_then(|e| e.settings.username.as_deref())]; }
                label { "Password"
                    input name="smtp_password" type="password" maxlength="1024" autocomplete="new-password"
                        placeholder=(if e.is_some_and(|e| e.password_set) { "stored; leave empty to keep" } else { "none" }); }
                label.check { input type="checkbox" name="smtp_clear_password" value="1"; "Remove the stored password" }
                label { "From" input name="mail_from" maxlength="320" value=[e.map(|e| e.settings.from.as_str())]; }
                label { "To (comma-separated)" input name="mail_to" maxlength="16000"
                    value=[e.map(|e| e.settings.to.join(", "))]; }
            }
            fieldset {
                legend { "Webhook" }
                label { "URL (http or https; receives a JSON POST; empty: off)"
                    input name="webhook_url" type="url" maxlength="2048"
                        value=[view.webhook.as_ref().map(|w| w.url.as_str())]; }
            }
            button.primary type="submit" #save-notifications { "Save" }
        }
        div.actions {
            @for (ch, label) in [(Channel::Email, "Send test email"), (Channel::Webhook, "Send test webhook")] {
                form.row method="post" action="/alerts/test" {
                    (csrf_field(session))
                    input type="hidden" name="channel" value=(ch.as_str());
                    button type="submit" id={ "test-" (ch.as_str()) } { (label) }
                }
            }
        }
    }
}

async fn render(
    state: &AppState,
    session: &ActiveSession,
    outcome: Option<Outcome>,
    status: Option<actix_web::http::StatusCode>,
) -> ConsoleResult<HttpResponse> {
    let who = &session.principal;
    let sources = state.alert_sources();
    let list = alerts::visible(&state.ctx, who, &sources).await?;
    let view = if who.can(Permission::Read, None) {
        Some(notifications::view(&state.ctx, who).await?)
    } else {
        None
    };
    let body = html! {
        @if let Some(o) = &outcome {
            p id=(o.id) role="status" class=(if o.ok { "notice" } else { "error" }) { (o.text) }
        }
        table #alerts {
            thead { tr { th { "Severity" } th { "Alert" } th { "Since" } } }
            tbody {
                @if list.is_empty() { tr { td colspan="3" .muted { "No alerts." } } }
                @for a in &list {
                    tr data-key=(a.key) {
                        td { @if a.severity == Severity::Error { span.badge.bad { "error" } } @else { span.badge.warn { "warning" } } }
                        td { (a.text) }
                        td { (a.since.map(when).unwrap_or_else(|| "-".into())) }
                    }
                }
            }
        }
        @if let Some(view) = &view {
            h2 { "Notifications" }
            p.muted { "Alerts go to the log (and syslog when enabled), and to the channels below: "
                "new alerts at once, persisting ones again every 24 hours. The checks run hourly "
                "and whenever these settings are saved." }
            dl.facts #deliveries {
                dt { "Last email delivery" } dd #email-delivery { (delivery(view.last_email_delivery.as_ref())) }
                dt { "Last webhook delivery" } dd #webhook-delivery { (delivery(view.last_webhook_delivery.as_ref())) }
            }
            @if is_admin(who) { (settings_form(session, view)) } @else { (read_only(view)) }
        }
    };
    let mut r = respond(layout(session, "/alerts", "Alerts", body));
    if let Some(st) = status {
        *r.status_mut() = st;
    }
    Ok(r)
}

fn input_of(form: &super::FormData) -> ConsoleResult<NotificationInput> {
    let text = |k: &str| form.get(k).map(str::trim).unwrap_or_default().to_string();
    let email = if form.checked("email_on") {
        let port = match text("smtp_port").as_str() {
            "" => None,
            p => Some(
                p.parse::<i64>()
                    .map_err(|_| AppError::Invalid(format!("SMTP port {p:?} is not a number")))?,
            ),
        };
        let password = if form.checked("smtp_clear_password") {
            Some(String::new())
        } else {
            // An empty password field keeps the stored password.
            form.get("smtp_password")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        };
        Some(EmailInput {
            host: text("smtp_host"),
            port,
            security: Some(text("smtp_security")),
            username: Some(text("smtp_username")),
            password,
            from: text("mail_from"),
            to: split_recipients(&text("mail_to")),
        })
    } else {
        None
    };
    let url = text("webhook_url");
    let webhook = (!url.is_empty()).then_some(WebhookInput { url });
    Ok(NotificationInput { email, webhook })
}

pub async fn save(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let result = match input_of(&p.form) {
        Ok(input) => notifications::save(&state.ctx, p.principal(), input)
            .await
            .map_err(super::ConsoleError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            state.alerts.check_now();
            render(
                &state,
                &p.session,
                Some(Outcome {
                    id: "save-result",
                    ok: true,
                    text: "Notification settings saved; current alerts are being sent.".into(),
                }),
                None,
            )
            .await
        }
        // A refused field is shown above the form, which keeps the saved values.
        Err(super::ConsoleError::App(AppError::Invalid(msg))) => {
            render(
                &state,
                &p.session,
                Some(Outcome {
                    id: "save-result",
                    ok: false,
                    text: format!("Not saved: {msg}"),
                }),
                Some(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub async fn test(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let channel = Channel::parse(p.form.get("channel").unwrap_or_default())?;
    let outcome = match notify::send_test(&state.ctx, p.principal(), channel).await {
        Ok(o) if o.ok => Outcome {
            id: "test-result",
            ok: true,
            text: format!("Test {} sent: {}", channel.as_str(), o.detail),
        },
        Ok(o) => Outcome {
            id: "test-result",
            ok: false,
            text: format!("Test {} failed: {}", channel.as_str(), o.detail),
        },
        Err(e @ AppError::Invalid(_)) => Outcome {
            id: "test-result",
            ok: false,
            text: format!("Test {} not sent: {}", channel.as_str(), public_message(&e)),
        },
        Err(e) => return Err(e.into()),
    };
    render(&state, &p.session, Some(outcome), None).await
}
