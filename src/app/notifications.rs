//! Where alerts are sent besides syslog: an SMTP server and a webhook, kept in the settings
//! table, and how the last delivery went. The SMTP password is stored but never returned.

use super::{require, Ctx};
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::storage::audit;
use crate::storage::settings::{delete_setting, get_setting, put_setting};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::fmt;

mod keys {
    pub const EMAIL: &str = "notify.email";
    pub const PASSWORD: &str = "notify.email.password";
    pub const WEBHOOK: &str = "notify.webhook";
    pub const EMAIL_LAST: &str = "notify.email.last_delivery";
    pub const WEBHOOK_LAST: &str = "notify.webhook.last_delivery";
}

const MAX_HOST: usize = 253;
const MAX_ADDRESS: usize = 320;
const MAX_RECIPIENTS: usize = 50;
const MAX_USERNAME: usize = 256;
const MAX_PASSWORD: usize = 1024;
const MAX_URL: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain SMTP, for a relay on the same host or network.
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl Security {
    pub fn parse(s: &str) -> AppResult<Security> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Security::None),
            "starttls" => Ok(Security::Starttls),
            "tls" => Ok(Security::Tls),
            other => Err(AppError::Invalid(format!(
                "SMTP security {other:?} is not one of none, starttls, tls"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        }
    }
}

/// Checked SMTP settings, without the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub url: String,
}

/// A stored secret: its text never reaches `Debug`, `Display` or serialisation.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// SMTP settings as submitted. `password`: absent keeps the stored one, empty removes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailInput {
    pub host: String,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: String,
}

/// The whole notification setup; a channel left out is switched off.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationInput {
    pub email: Option<EmailInput>,
    pub webhook: Option<WebhookInput>,
}

/// How the last delivery on a channel went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailView {
    #[serde(flatten)]
    pub settings: EmailSettings,
    pub password_set: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub email: Option<EmailView>,
    pub webhook: Option<WebhookSettings>,
    pub last_email_delivery: Option<Delivery>,
    pub last_webhook_delivery: Option<Delivery>,
}

/// What the delivery loop sends to.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub email: Option<(EmailSettings, Option<Secret>)>,
    pub webhook: Option<WebhookSettings>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn parse(s: &str) -> AppResult<Channel> {
        match s.trim() {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            other => Err(AppError::Invalid(format!(
                "channel {other:?} is not one of email, webhook"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    fn last_key(self) -> &'static str {
        match self {
            Channel::Email => keys::EMAIL_LAST,
            Channel::Webhook => keys::WEBHOOK_LAST,
        }
    }
}

fn invalid(msg: String) -> AppError {
    AppError::Invalid(msg)
}

fn no_control(field: &str, v: &str) -> AppResult<()> {
    if v.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

fn check_host(host: &str) -> AppResult<String> {
    let host = host.trim();
    if host.is_empty() || host.len() > MAX_HOST {
        return Err(invalid(format!(
            "SMTP host must be 1 to {MAX_HOST} characters"
        )));
    }
    let name_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['-', '.']);
    if !name_ok && host.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(format!(
            "SMTP host {host:?} is neither a host name nor an IP address"
        )));
    }
    Ok(host.to_string())
}

fn check_mailbox(field: &str, v: &str) -> AppResult<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > MAX_ADDRESS {
        return Err(invalid(format!(
            "{field} must be an email address of 1 to {MAX_ADDRESS} characters"
        )));
    }
    no_control(field, v)?;
    v.parse::<lettre::message::Mailbox>()
        .map_err(|e| invalid(format!("{field} {v:?} is not a valid email address: {e}")))?;
    Ok(v.to_string())
}

/// Checks submitted SMTP settings; returns them and the password change, if any.
pub fn check_email(input: &EmailInput) -> AppResult<(EmailSettings, Option<String>)> {
    let host = check_host(&input.host)?;
    let security = match input.security.as_deref().map(str::trim) {
        None | Some("") => Security::Starttls,
        Some(s) => Security::parse(s)?,
    };
    let port = match input.port {
        None => security.default_port(),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format!("SMTP port {p} is not between 1 and 65535")))?,
    };
    let username = match input.username.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) if u.len() > MAX_USERNAME => {
            return Err(invalid(format!(
                "SMTP username must be at most {MAX_USERNAME} characters"
            )))
        }
        Some(u) => {
            no_control("SMTP username", u)?;
            Some(u.to_string())
        }
    };
    if let Some(p) = &input.password {
        if p.len() > MAX_PASSWORD {
            return Err(invalid(format!(
                "SMTP password must be at most {MAX_PASSWORD} characters"
            )));
        }
        no_control("SMTP password", p)?;
    }
    let from = check_mailbox("sender (from)", &input.from)?;
    let to: Vec<String> = input
        .to
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| check_mailbox("recipient", t))
        .collect::<AppResult<_>>()?;
    if to.is_empty() {
        return Err(invalid("at least one recipient (to) is required".into()));
    }
    if to.len() > MAX_RECIPIENTS {
        return Err(invalid(format!(
            "at most {MAX_RECIPIENTS} recipients are allowed"
        )));
    }
    Ok((
        EmailSettings {
            host,
            port,
            security,
            username,
            from,
            to,
        },
        input.password.clone(),
    ))
}

pub fn check_webhook(input: &WebhookInput) -> AppResult<WebhookSettings> {
    let raw = input.url.trim();
    if raw.is_empty() || raw.len() > MAX_URL {
        return Err(invalid(format!(
            "webhook URL must be 1 to {MAX_URL} characters"
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| invalid(format!("webhook URL {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "webhook URL must start with http:// or https://, not {}:",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("webhook URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "webhook URL must not carry a user name or password".into(),
        ));
    }
    Ok(WebhookSettings {
        url: url.to_string(),
    })
}

/// Splits a recipient list typed into one field: commas, semicolons, spaces or lines.
pub fn split_recipients(text: &str) -> Vec<String> {
    text.split([',', ';', '\n', '\r', ' ', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn json_setting<T: serde::de::DeserializeOwned>(c: &Connection, key: &str) -> AppResult<Option<T>> {
    match get_setting(c, key)? {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v)
            .map(Some)
            .map_err(|e| AppError::Internal(format!("setting {key} is unreadable: {e}"))),
    }
}

fn put_json<T: Serialize>(c: &Connection, key: &str, v: &T) -> AppResult<()> {
    let text =
        serde_json::to_string(v).map_err(|e| AppError::Internal(format!("setting {key}: {e}")))?;
    put_setting(c, key, &text)?;
    Ok(())
}

fn view_tx(c: &Connection) -> AppResult<NotificationView> {
    let email: Option<EmailSettings> = json_setting(c, keys::EMAIL)?;
    let password_set = get_setting(c, keys::PASSWORD)?.is_some();
    Ok(NotificationView {
        email: email.map(|settings| EmailView {
            settings,
            password_set,
        }),
        webhook: json_setting(c, keys::WEBHOOK)?,
        last_email_delivery: json_setting(c, keys::EMAIL_LAST)?,
        last_webhook_delivery: json_setting(c, keys::WEBHOOK_LAST)?,
    })
}

/// The settings as anyone who may read the system sees them: never the password.
pub async fn view(ctx: &Ctx, who: &Principal) -> AppResult<NotificationView> {
    require(who, Permission::Read, None)?;
    ctx.store.read(view_tx).await
}

/// Replaces the notification settings (system-admin), in one transaction with its audit row.
pub async fn save(
    ctx: &Ctx,
    who: &Principal,
    input: NotificationInput,
) -> AppResult<NotificationView> {
    require(who, Permission::Administer, None)?;
    let email = input.email.as_ref().map(check_email).transpose()?;
    let webhook = input.webhook.as_ref().map(check_webhook).transpose()?;
    let (now, actor) = (ctx.clock.now(), who.name.clone());
    ctx.store
        .write(move |c| {
            let mut detail = Vec::new();
            match &email {
                Some((settings, password)) => {
                    put_json(c, keys::EMAIL, settings)?;
                    match password.as_deref() {
                        Some("") => delete_setting(c, keys::PASSWORD)?,
                        Some(p) => put_setting(c, keys::PASSWORD, p)?,
                        None => {}
                    }
                    detail.push(format!(
                        "email={}:{} ({}) to {}",
                        settings.host,
                        settings.port,
                        settings.security.as_str(),
                        settings.to.join(",")
                    ));
                }
                None => {
                    delete_setting(c, keys::EMAIL)?;
                    delete_setting(c, keys::PASSWORD)?;
                    delete_setting(c, keys::EMAIL_LAST)?;
                    detail.push("email=off".into());
                }
            }
            match &webhook {
                Some(w) => {
                    put_json(c, keys::WEBHOOK, w)?;
                    let host = url::Url::parse(&w.url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_string))
                        .unwrap_or_default();
                    // The path may hold the receiver's token: only the host is audited.
                    detail.push(format!("webhook={host}"));
                }
                None => {
                    delete_setting(c, keys::WEBHOOK)?;
                    delete_setting(c, keys::WEBHOOK_LAST)?;
                    detail.push("webhook=off".into());
                }
            }
            audit::record(
                c,
                now,
                &actor,
                "notifications.update",
                "notifications",
                &detail.join(" "),
            )?;
            view_tx(c)
        })
        .await
}

/// Where to send, with the password: for the delivery loop and test sends only.
pub async fn targets(ctx: &Ctx) -> AppResult<Targets> {
    ctx.store
        .read(|c| {
            let email: Option<EmailSettings> = json_setting(c, keys::EMAIL)?;
            let password = get_setting(c, keys::PASSWORD)?.map(Secret);
            Ok::<_, AppError>(Targets {
                email: email.map(|e| (e, password)),
                webhook: json_setting(c, keys::WEBHOOK)?,
            })
        })
        .await
}

pub async fn record_delivery(ctx: &Ctx, channel: Channel, delivery: Delivery) -> AppResult<()> {
    ctx.store
        .write(move |c| put_json(c, channel.last_key(), &delivery))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> EmailInput {
        EmailInput {
            host: "mail.example.net".into(),
            from: "satellite@example.net".into(),
            to: vec!["noc@example.net".into()],
            ..Default::default()
        }
    }

    #[test]
    fn email_settings_take_defaults_and_refuse_bad_fields() {
        let (s, pw) = check_email(&email()).unwrap();
        assert_eq!((s.port, s.security), (587, Security::Starttls));
        assert_eq!(pw, None);
        let tls = EmailInput {
            security: Some("TLS".into()),
            ..email()
        };
        assert_eq!(check_email(&tls).unwrap().0.port, 465);
        let cases = [
            (
                EmailInput {
                    host: "bad host".into(),
                    ..email()
                },
                "neither a host name",
            ),
            (
                EmailInput {
                    port: Some(70000),
                    ..email()
                },
                "between 1 and 65535",
            ),
            (
                EmailInput {
                    security: Some("ssl".into()),
                    ..email()
                },
                "none, starttls, tls",
            ),
            (
                EmailInput {
                    from: "not an address".into(),
                    ..email()
                },
                "not a valid email address",
            ),
            (
                EmailInput {
                    to: vec![],
                    ..email()
                },
                "at least one recipient",
            ),
        ];
        for (input, needle) in cases {
            let e = check_email(&input).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn webhook_urls_must_be_http_without_credentials() {
        let ok = |u: &str| check_webhook(&WebhookInput { url: u.into() });
        assert!(ok("https://hooks.example.net/x?y=1").is_ok());
        assert!(ok("ftp://hooks.example.net/")
            .unwrap_err()
            .to_string()
            .contains("http://"));
        assert!(ok("https://u:p@hooks.example.net/")
            .unwrap_err()
            .to_string()
            .contains("user name or password"));
        assert!(ok("not a url").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            split_recipients("a@x, b@y;c@z\nd@w"),
            ["a@x", "b@y", "c@z", "d@w"]
        );
    }
}
