//! The audit log page for administrators, filterable by text and paged.
//! Reads through `app::audit`, which refuses everyone but administrators.

use super::{layout, query, respond, state_of, when, ConsoleResult, Signed};
use crate::app::audit;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

const PAGE_SIZE: i64 = 100;

#[derive(serde::Deserialize)]
pub struct AuditQuery {
    q: Option<String>,
    page: Option<i64>,
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<AuditQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let page_no = q.page.unwrap_or(1).clamp(1, 100_000);
    let filter = q.q.clone().unwrap_or_default();
    // One row more than shown tells whether a next page exists without counting.
    let mut rows = audit::list(
        &state.ctx,
        s.principal(),
        Some(&filter),
        PAGE_SIZE + 1,
        (page_no - 1) * PAGE_SIZE,
    )
    .await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let link = |n: i64| {
        format!(
            "/audit?{}",
            query(&[("q", &filter), ("page", &n.to_string())])
        )
    };
    let body = html! {
        form.picker method="get" action="/audit" {
            label { "Actor, action or target contains " input name="q" value=(filter); }
            button type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "Detail" } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="5" .muted { "No entries." } } }
                @for e in &rows {
                    tr { td { (when(e.at)) } td { (e.actor) } td { (e.action) } td { (e.target) } td { (e.detail) } }
                }
            }
        }
        div.pager {
            @if page_no > 1 { a href=(link(page_no - 1)) { "‹ Newer" } }
            span { "Page " (page_no) }
            @if more { a href=(link(page_no + 1)) { "Older ›" } }
        }
    };
    Ok(respond(layout(&s.0, "/audit", "Audit log", body)))
}
