//! Product instances: search and paging, a detail page with entitlements, SIA standing,
//! certificate and events, and transfer or removal. Status is the compliance engine's word.

use super::{
    account_picker, can_write, csrf_field, layout, notice, pick_account, query, respond, see_other,
    segment, state_of, status_badge, when, ConsoleResult, Posted, Signed,
};
use crate::app::devices::SudiRef;
use crate::app::{accounts, devices};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

pub const PAGE_SIZE: i64 = 50;
const EVENTS_SHOWN: i64 = 20;

#[derive(serde::Deserialize)]
pub struct ListQuery {
    account: Option<String>,
    q: Option<String>,
    page: Option<i64>,
    done: Option<String>,
}

pub fn detail_href(account: &str, pid: &str, serial: &str) -> String {
    format!(
        "/devices/{}/{}?{}",
        segment(pid),
        segment(serial),
        query(&[("account", account)])
    )
}

pub async fn list(
    req: HttpRequest,
    s: Signed,
    q: web::Query<ListQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let (all, chosen) = pick_account(&state, who, q.account.as_deref()).await?;
    let Some(acc) = chosen else {
        return Ok(respond(layout(
            &s.0,
            "/devices",
            "Product instances",
            html! { p.muted { "No smart account is visible to you yet." } },
        )));
    };
    let search =
        q.q.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
    let page_no = q.page.unwrap_or(1).max(1);
    let result = devices::list(
        &state.ctx,
        who,
        &acc.name,
        Vec::new(),
        search.clone(),
        PAGE_SIZE,
        (page_no - 1).saturating_mul(PAGE_SIZE),
    )
    .await?;
    let pages = ((result.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let search_text = search.clone().unwrap_or_default();
    let page_link = |n: i64| {
        format!(
            "/devices?{}",
            query(&[
                ("account", &acc.name),
                ("q", &search_text),
                ("page", &n.to_string())
            ])
        )
    };
    let body = html! {
        (account_picker("/devices", &all, Some(&acc)))
        (notice(q.done.as_deref()))
        form.picker method="get" action="/devices" {
            input type="hidden" name="account" value=(acc.name);
            label { "Serial, PID or host name starts with "
                input name="q" value=(search_text) placeholder="e.g. FOC, N540X, pe-"; }
            button type="submit" { "Search" }
        }
        p.muted { (result.total) " product instance" @if result.total != 1 { "s" } }
        table #devices {
            thead { tr {
                th { "Host name" } th { "PID" } th { "Serial" } th { "Virtual account" }
                th { "Status" } th { "Last contact" } th { "Registered" }
            } }
            tbody {
                @if result.devices.is_empty() { tr { td colspan="7" .muted { "No product instances." } } }
                @for d in &result.devices {
                    @let i = &d.instance;
                    tr data-serial=(i.udi_serial) {
                        td { a href=(detail_href(&acc.name, &i.udi_pid, &i.udi_serial)) {
                            (i.hostname.as_deref().unwrap_or("(no host name)")) } }
                        td { (i.udi_pid) }
                        td { (i.udi_serial) }
                        td { (d.virtual_account) }
                        td { (status_badge(d.compliance.overall.as_str())) }
                        td { (when(i.last_contact_at)) }
                        td { (when(i.registered_at)) }
                    }
                }
            }
        }
        div.pager {
            @if page_no > 1 { a href=(page_link(page_no - 1)) { "‹ Previous" } }
            span { "Page " (page_no) " of " (pages) }
            @if page_no < pages { a href=(page_link(page_no + 1)) { "Next ›" } }
        }
        p { a href={ "/reports/devices.csv?" (query(&[("account", &acc.name)])) } { "Download as CSV" } }
    };
    Ok(respond(layout(&s.0, "/devices", "Product instances", body)))
}

#[derive(serde::Deserialize)]
pub struct DetailQuery {
    account: Option<String>,
}

pub async fn detail(
    req: HttpRequest,
    s: Signed,
    path: web::Path<(String, String)>,
    q: web::Query<DetailQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let (_, chosen) = pick_account(&state, who, q.account.as_deref()).await?;
    let Some(acc) = chosen else {
        return Err(crate::error::AppError::NotFound("no smart account".into()).into());
    };
    let (pid, serial) = path.into_inner();
    let d = devices::detail(
        &state.ctx,
        who,
        &acc.name,
        SudiRef {
            pid: pid.clone(),
            serial: serial.clone(),
        },
        EVENTS_SHOWN,
    )
    .await?;
    let vas = accounts::list_vas(&state.ctx, who, &acc.name).await?;
    let v = &d.device;
    let i = &v.instance;
    let c = &v.compliance;
    let now = state.ctx.clock.now();
    let grace_days = i.sia_grace_used_seconds / 86_400;
    let title = format!("{} {}", i.udi_pid, i.udi_serial);
    let body = html! {
        p { a href={ "/devices?" (query(&[("account", &acc.name)])) } { "‹ All product instances" } }
        dl.facts {
            dt { "Host name" } dd { (i.hostname.as_deref().unwrap_or("(not reported)")) }
            dt { "Status" } dd #status { (status_badge(c.overall.as_str())) }
            dt { "Smart account" } dd { (acc.name) }
            dt { "Virtual account" } dd { (v.virtual_account) }
            dt { "Software version" } dd { (i.software_version.as_deref().unwrap_or("-")) }
            dt { "Registered" } dd { (when(i.registered_at)) }
            dt { "Last renewal" } dd { (when(i.last_renewed_at)) }
            dt { "Last contact" } dd { (when(i.last_contact_at)) }
            dt { "Last authorization" } dd { (i.last_authorized_at.map(when).unwrap_or_else(|| "-".into())) }
            dt { "Authorization lapses" } dd { (when(c.communication_deadline)) }
            dt { "ID certificate" } dd {
                "serial " (i.id_cert_serial) ", expires " (when(i.id_cert_not_after))
                @if i.id_cert_not_after <= now { " " span.badge.bad { "EXPIRED" } }
            }
            dt { "Export-controlled" } dd { @if i.export_controlled { "Allowed" } @else { "Not allowed" } }
            dt { "SIA" } dd #sia {
                @match c.sia_out_of_compliance {
                    None => span.badge.ok { "In compliance" },
                    Some(r) => { span.badge.bad { "OUT_OF_COMPLIANCE" } " " (r.describe()) },
                }
                br; span.muted { "Grace used: " (grace_days) " of "
                    (crate::domain::compliance::GRACE_PERIOD_DAYS) " days"
                    @if let Some(since) = i.sia_ooc_since { ", out of compliance since " (when(since)) } }
            }
        }
        h2 { "Entitlements" }
        table #entitlements {
            thead { tr { th { "Tag" } th { "Description" } th.num { "Count" } th { "Status" } th { "Why" } } }
            tbody {
                @if c.entitlements.is_empty() { tr { td colspan="5" .muted { "No usage reported." } } }
                @for e in &c.entitlements {
                    tr { td { (e.tag) } td { (e.description) } td.num { (e.count) }
                         td { (status_badge(e.status.as_str())) } td { (e.why) } }
                }
            }
        }
        @if can_write(who, &acc) {
            h2 { "Actions" }
            div.actions {
                @if vas.len() > 1 {
                    form.row method="post" action="/devices/transfer"
                        data-confirm="Move this product instance and its usage to the other virtual account?" {
                        (csrf_field(&s.0))
                        input type="hidden" name="account" value=(acc.name);
                        input type="hidden" name="pid" value=(i.udi_pid);
                        input type="hidden" name="serial" value=(i.udi_serial);
                        label { "Move to virtual account"
                            select name="va" { @for va in vas.iter().filter(|va| va.id != i.va_id) { option value=(va.name) { (va.name) } } } }
                        button type="submit" { "Transfer" }
                    }
                }
                form.row method="post" action="/devices/remove"
                    data-confirm="Remove this product instance? Its licenses return to the pool and the router must register again." {
                    (csrf_field(&s.0))
                    input type="hidden" name="account" value=(acc.name);
                    input type="hidden" name="pid" value=(i.udi_pid);
                    input type="hidden" name="serial" value=(i.udi_serial);
                    button.danger type="submit" { "Remove" }
                }
            }
        }
        h2 { "Recent events" }
        table #events {
            thead { tr { th { "Received" } th { "Kind" } th { "Message" } th { "Detail" } } }
            tbody {
                @if d.events.is_empty() { tr { td colspan="4" .muted { "No events recorded." } } }
                @for e in &d.events {
                    tr { td { (when(e.received_at)) } td { (e.kind) } td { (e.message_type) } td { (e.detail) } }
                }
            }
        }
    };
    Ok(respond(layout(&s.0, "/devices", &title, body)))
}

fn sudi_of(p: &Posted) -> ConsoleResult<(String, SudiRef)> {
    Ok((
        p.form.required("account", "Account")?,
        SudiRef {
            pid: p.form.required("pid", "PID")?,
            serial: p.form.required("serial", "Serial number")?,
        },
    ))
}

pub async fn transfer(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let (account, sudi) = sudi_of(&p)?;
    let va = p.form.required("va", "Target virtual account")?;
    let back = detail_href(&account, &sudi.pid, &sudi.serial);
    devices::transfer(&state.ctx, p.principal(), &account, vec![sudi], &va).await?;
    Ok(see_other(&back))
}

pub async fn remove(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let (account, sudi) = sudi_of(&p)?;
    devices::remove(&state.ctx, p.principal(), &account, vec![sudi]).await?;
    Ok(see_other(&format!(
        "/devices?{}",
        query(&[("account", &account), ("done", "removed")])
    )))
}
