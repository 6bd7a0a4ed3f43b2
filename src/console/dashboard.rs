//! The dashboard: per virtual account, how many devices are authorized or not and how
//! many license tags are short. Reads only; every figure comes from the app services.

use super::{layout, query, respond, state_of, ConsoleResult, Signed};
use crate::app::{accounts, devices};
use actix_web::{HttpRequest, HttpResponse};
use maud::html;

pub async fn page(req: HttpRequest, s: Signed) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let list = accounts::list_accounts(&state.ctx, who).await?;
    let sources = state.alert_sources();
    let alerts = crate::app::alerts::visible(&state.ctx, who, &sources).await?;
    let mut sections = Vec::with_capacity(list.len());
    for a in list {
        let counts = devices::status_counts(&state.ctx, who, &a.name).await?;
        sections.push((a, counts));
    }
    let body = html! {
        @if !alerts.is_empty() {
            div.alerts #dashboard-alerts role="alert" {
                strong { (alerts.len()) " alert(s)" }
                ul { @for a in alerts.iter().take(5) { li { (a.text) } } }
                a href="/alerts" { "All alerts and notification settings" }
            }
        }
        @if sections.is_empty() {
            p.muted { "No smart account is visible to you yet." }
            @if super::is_admin(who) { p { a href="/accounts" { "Create a smart account" } } }
        }
        @for (a, counts) in &sections {
            h2 { (a.name) }
            @if a.eula_accepted_at.is_none() {
                p.error { "The Smart Software Licensing Agreement is not accepted: routers cannot register. "
                    a href={ "/accounts?" (query(&[("account", &a.name)])) } { "Review and accept" } }
            }
            @if counts.is_empty() { p.muted { "No virtual accounts." } }
            div.cards {
                @for c in counts {
                    @let acc = query(&[("account", &a.name)]);
                    @let accva = query(&[("account", &a.name), ("va", &c.virtual_account)]);
                    div.card data-va=(c.virtual_account) {
                        h3 { (c.virtual_account) }
                        dl {
                            dt { "Product instances" } dd { (c.devices) }
                            dt { "Authorized" } dd.ok { (c.authorized) }
                            dt { "Out of compliance" } dd { (c.out_of_compliance) }
                            dt { "Authorization expired" } dd { (c.authorization_expired) }
                            dt { "Licenses out of compliance" } dd { (c.licenses_out_of_compliance) }
                        }
                        div.links {
                            a href={ "/devices?" (acc) } { "Instances" }
                            a href={ "/licenses?" (acc) } { "Licenses" }
                            a href={ "/tokens?" (accva) } { "Tokens" }
                            a href={ "/trends?" (accva) } { "Trends" }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(layout(&s.0, "/", "Dashboard", body)))
}
