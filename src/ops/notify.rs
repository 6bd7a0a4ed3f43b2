//! Sends alert lists by email (SMTP through lettre) and webhook (JSON POST). Errors come
//! back as one line of text for the log and the alerts page; no password or URL in it.

use crate::app::alerts::Alert;
use crate::app::notifications::{
    self, Channel, Delivery, EmailSettings, Secret, Security, WebhookSettings,
};
use crate::app::{require, Ctx};
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use std::time::Duration;

/// How long one delivery may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// What is being sent: the due alerts, or a test asked for by an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Alerts,
    Test,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookBody<'a> {
    source: &'static str,
    host: String,
    kind: Kind,
    sent_at: String,
    alerts: &'a [Alert],
}

/// An error and its causes on one line, as the reader needs it ("connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    // Some errors repeat their kind in their own text ("Connection error: Connection error").
    let mut parts: Vec<&str> = out.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

fn subject(kind: Kind, alerts: &[Alert]) -> String {
    let host = crate::tls::host_name();
    match kind {
        Kind::Test => format!("[satellite {host}] test message"),
        Kind::Alerts => format!("[satellite {host}] {} alert(s)", alerts.len()),
    }
}

fn text_body(kind: Kind, alerts: &[Alert]) -> String {
    let mut body = String::new();
    match kind {
        Kind::Test => body.push_str(
            "This is a test message from satellite: alert notifications by email work.\n",
        ),
        Kind::Alerts => body.push_str("Current alerts on this satellite:\n\n"),
    }
    for a in alerts {
        body.push_str(&format!("- [{}] {}\n", a.severity.as_str(), a.text));
    }
    body
}

pub async fn send_email(
    settings: &EmailSettings,
    password: Option<&Secret>,
    kind: Kind,
    alerts: &[Alert],
) -> Result<String, String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("sender address: {e}"))?;
    let mut message = Message::builder().from(from).subject(subject(kind, alerts));
    for to in &settings.to {
        message = message.to(to.parse().map_err(|e| format!("recipient {to}: {e}"))?);
    }
    let message = message
        .header(ContentType::TEXT_PLAIN)
        .body(text_body(kind, alerts))
        .map_err(|e| format!("building the message: {e}"))?;
    let host = settings.host.as_str();
    let tls =
        || TlsParameters::new(host.to_string()).map_err(|e| format!("TLS setup: {}", chain(&e)));
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.port)
        .timeout(Some(SEND_TIMEOUT))
        .hello_name(ClientId::Domain(crate::tls::host_name()));
    builder = match settings.security {
        Security::None => builder.tls(Tls::None),
        Security::Starttls => builder.tls(Tls::Required(tls()?)),
        Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
    };
    if let (Some(user), Some(pass)) = (&settings.username, password) {
        builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    let transport = builder.build();
    let sent = tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await;
    match sent {
        Ok(Ok(_)) => Ok(format!(
            "sent to {} recipient(s) through {}:{}",
            settings.to.len(),
            settings.host,
            settings.port
        )),
        Ok(Err(e)) => Err(format!(
            "SMTP {}:{}: {}",
            settings.host,
            settings.port,
            chain(&e)
        )),
        Err(_) => Err(format!(
            "SMTP {}:{}: no answer within {} s",
            settings.host,
            settings.port,
            SEND_TIMEOUT.as_secs()
        )),
    }
}

pub async fn send_webhook(
    settings: &WebhookSettings,
    kind: Kind,
    alerts: &[Alert],
) -> Result<String, String> {
    let url = url::Url::parse(&settings.url).map_err(|e| format!("webhook URL: {e}"))?;
    // The path and query may hold the receiver's token: messages name only the host.
    let target = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("webhook client: {}", chain(&e.without_url())))?;
    let body = WebhookBody {
        source: "satellite",
        host: crate::tls::host_name(),
        kind,
        sent_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        alerts,
    };
    let resp = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("webhook {target}: {}", chain(&e.without_url())))?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("{target} answered {}", status.as_u16()))
    } else {
        Err(format!("webhook {target} answered HTTP {status}"))
    }
}

/// The result of a test send, for the page and the API.
#[derive(Clone, Debug, Serialize)]
pub struct TestOutcome {
    pub channel: Channel,
    pub ok: bool,
    pub detail: String,
}

/// Sends a test message on one channel now with the saved settings (system-admin).
pub async fn send_test(ctx: &Ctx, who: &Principal, channel: Channel) -> AppResult<TestOutcome> {
    require(who, Permission::Administer, None)?;
    let targets = notifications::targets(ctx).await?;
    let result = match channel {
        Channel::Email => {
            let (settings, password) = targets.email.ok_or_else(|| {
                AppError::Invalid(
                    "email notifications are not configured: save the SMTP settings first".into(),
                )
            })?;
            send_email(&settings, password.as_ref(), Kind::Test, &[]).await
        }
        Channel::Webhook => {
            let settings = targets.webhook.ok_or_else(|| {
                AppError::Invalid(
                    "webhook notifications are not configured: save a webhook URL first".into(),
                )
            })?;
            send_webhook(&settings, Kind::Test, &[]).await
        }
    };
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => {
            tracing::warn!(channel = channel.as_str(), error = %d, "test notification failed");
            (false, d)
        }
    };
    Ok(TestOutcome {
        channel,
        ok,
        detail,
    })
}

/// Sends due alerts on one channel and records how it went; never fails the caller.
pub async fn deliver(
    ctx: &Ctx,
    channel: Channel,
    targets: &notifications::Targets,
    alerts: &[Alert],
) -> bool {
    let result = match (channel, &targets.email, &targets.webhook) {
        (Channel::Email, Some((settings, password)), _) => {
            send_email(settings, password.as_ref(), Kind::Alerts, alerts).await
        }
        (Channel::Webhook, _, Some(settings)) => send_webhook(settings, Kind::Alerts, alerts).await,
        _ => return false,
    };
    let ok = result.is_ok();
    let detail = match result {
        Ok(d) => format!("{} alert(s) sent: {d}", alerts.len()),
        Err(d) => {
            tracing::warn!(channel = channel.as_str(), error = %d, "alert notification failed");
            d
        }
    };
    let delivery = Delivery {
        at: ctx.clock.now(),
        ok,
        detail,
    };
    if let Err(e) = notifications::record_delivery(ctx, channel, delivery).await {
        tracing::warn!(error = %e, "recording an alert delivery failed");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn error_chains_read_as_one_line_without_repeats() {
        let e = E(
            "Connection error: Connection error",
            Some(Box::new(E("Connection refused", None))),
        );
        assert_eq!(chain(&e), "Connection error: Connection refused");
        let body = text_body(Kind::Test, &[]);
        assert!(body.starts_with("This is a test message"));
    }
}
