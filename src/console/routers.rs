//! "Configure your routers": the IOS XR Call Home profile filled in with this satellite's
//! address and a registration line with a chosen active token. Display only; changes nothing.

use super::{can_write, layout, pick_account, respond, state_of, ConsoleResult, Signed};
use crate::app::{accounts, tokens};
use crate::domain::tokens::TokenState;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

pub const GATEWAY_PATH: &str = "/Transportgateway/services/DeviceRequestHandler";

#[derive(serde::Deserialize)]
pub struct RoutersQuery {
    account: Option<String>,
    va: Option<String>,
    token: Option<String>,
    transport: Option<String>,
}

/// The host part of a Host header, without its port (IPv6 literals keep their brackets).
pub fn host_only(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.split(':').next().unwrap_or(host)
}

/// The device gateway's URL as routers must write it.
pub fn gateway_url(scheme: &str, host: &str, port: u16) -> String {
    let default = if scheme == "https" { 443 } else { 80 };
    if port == default {
        format!("{scheme}://{host}{GATEWAY_PATH}")
    } else if port == 0 {
        format!("{scheme}://{host}:<port>{GATEWAY_PATH}")
    } else {
        format!("{scheme}://{host}:{port}{GATEWAY_PATH}")
    }
}

/// The configuration lines, as an operator pastes them after `configure terminal`.
pub fn call_home_config(url: &str, https: bool) -> String {
    let mut s = String::from(
        "call-home\n service active\n contact-email-addr netops@example.com\n profile satellite\n  reporting smart-licensing-data\n  destination transport-method http\n",
    );
    s.push_str(&format!("  destination address http {url}\n"));
    s.push_str("  destination preferred-msg-format xml\n  active\n !\n!\n");
    if https {
        // The guide's advice for an on-prem server: skip CRL fetches the router cannot make.
        s.push_str("crypto ca trustpool policy crl optional\n");
    }
    s.push_str("commit\n");
    s
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<RoutersQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let (all, chosen) = pick_account(&state, who, q.account.as_deref()).await?;
    let https = q.transport.as_deref() == Some("https");
    let host = match state.config.public_host.as_deref() {
        Some(h) if !h.trim().is_empty() => h.trim().to_string(),
        _ => host_only(req.connection_info().host()).to_string(),
    };
    let port = if https {
        state.config.device_https_addr.port()
    } else {
        state.config.device_http_addr.port()
    };
    let url = gateway_url(if https { "https" } else { "http" }, &host, port);
    let mut active = Vec::new();
    let mut vas = Vec::new();
    if let Some(acc) = &chosen {
        vas = accounts::list_vas(&state.ctx, who, &acc.name).await?;
        // The token is a credential: only those who could create one are offered it.
        if can_write(who, acc) {
            let now = state.ctx.clock.now();
            let va = q.va.as_deref().filter(|v| !v.is_empty());
            active = tokens::list(&state.ctx, who, &acc.name, va)
                .await?
                .into_iter()
                .filter(|t| t.state(now) == TokenState::Active)
                .collect();
        }
    }
    let token = q
        .token
        .as_deref()
        .and_then(|want| active.iter().find(|t| t.token == want))
        .or(active.first());
    let register = format!(
        "license smart register idtoken {}",
        token.map(|t| t.token.as_str()).unwrap_or("<token>")
    );
    let body = html! {
        form.picker method="get" action="/routers" {
            label { "Smart account "
                select name="account" { @for a in &all {
                    option value=(a.name) selected[chosen.as_ref().is_some_and(|c| c.id == a.id)] { (a.name) } } } }
            label { "Virtual account "
                select name="va" { option value="" { "(all)" }
                    @for v in &vas { option value=(v.name) selected[q.va.as_deref() == Some(v.name.as_str())] { (v.name) } } } }
            label { "Transport "
                select name="transport" {
                    option value="http" selected[!https] { "HTTP" }
                    option value="https" selected[https] { "HTTPS" } } }
            @if !active.is_empty() {
                label { "Token "
                    select name="token" { @for t in &active {
                        option value=(t.token) selected[token.is_some_and(|x| x.id == t.id)] {
                            (t.virtual_account) ": " (super::tokens::short(&t.token))
                            @if !t.description.is_empty() { " (" (t.description) ")" } } } } }
            }
            button type="submit" { "Show" }
        }
        p { "On each IOS XR router, in " code { "configure terminal" } ", point a Call Home profile at this satellite. "
            "The address must match the host name in the satellite's certificate when you use HTTPS." }
        pre.config #call-home { (call_home_config(&url, https)) }
        button type="button" data-copy="call-home" { "Copy" }
        h2 { "Register" }
        p { "Then, in exec mode:" }
        pre.config #register { (register) }
        button type="button" data-copy="register" { "Copy" }
        @if token.is_none() {
            p.muted { "No active token to offer here. "
                @if chosen.as_ref().is_some_and(|a| can_write(who, a)) { a href="/tokens" { "Create one" } }
                @else { "Ask an operator for one." } }
        }
        p.muted { "Check the result on the router with " code { "show license status" } " and "
            code { "show license summary" } "." }
    };
    Ok(respond(layout(
        &s.0,
        "/routers",
        "Configure your routers",
        body,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_loses_its_port_but_not_ipv6_brackets() {
        assert_eq!(host_only("sat.example.net:8443"), "sat.example.net");
        assert_eq!(host_only("[2001:db8::1]:8443"), "[2001:db8::1]");
        assert_eq!(host_only("10.0.0.5"), "10.0.0.5");
    }

    #[test]
    fn default_ports_are_left_out_of_the_url() {
        assert_eq!(
            gateway_url("http", "sat", 80),
            "http://sat/Transportgateway/services/DeviceRequestHandler"
        );
        assert_eq!(
            gateway_url("https", "sat", 8444),
            "https://sat:8444/Transportgateway/services/DeviceRequestHandler"
        );
        let cfg = call_home_config("http://sat/x", false);
        assert!(cfg.contains("  destination address http http://sat/x\n"));
        assert!(cfg.starts_with("call-home\n service active\n"));
    }
}
