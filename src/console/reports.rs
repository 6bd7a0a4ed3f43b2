//! CSV downloads: licenses, product instances and usage history of a smart account.
//! Text cells that a spreadsheet would run as a formula are defused; nothing is written.

use super::{
    account_picker, layout, pick_account, query, respond, state_of, ConsoleResult, Signed,
};
use crate::app::{accounts, devices, licenses};
use crate::error::AppError;
use crate::ops::csv::cell;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

#[derive(serde::Deserialize)]
pub struct ReportQuery {
    account: Option<String>,
    days: Option<i64>,
}

fn line(out: &mut String, cells: &[String]) {
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

fn csv_response(account: &str, what: &str, body: String) -> HttpResponse {
    let safe: String = account
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{safe}-{what}.csv\""),
        ))
        .body(body)
}

async fn account_of(
    req: &HttpRequest,
    s: &Signed,
    q: &ReportQuery,
) -> ConsoleResult<(web::Data<crate::server::AppState>, String)> {
    let state = state_of(req)?;
    let (_, chosen) = pick_account(&state, s.principal(), q.account.as_deref()).await?;
    let acc = chosen.ok_or_else(|| AppError::NotFound("no smart account".into()))?;
    Ok((state, acc.name))
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<ReportQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let (all, chosen) = pick_account(&state, s.principal(), q.account.as_deref()).await?;
    let body = html! {
        (account_picker("/reports", &all, chosen.as_ref()))
        @if let Some(a) = &chosen {
            @let acc = query(&[("account", &a.name)]);
            ul {
                li { a href={ "/reports/licenses.csv?" (acc) } { "Licenses" } " — pool, transfers, use and status per virtual account and tag" }
                li { a href={ "/reports/devices.csv?" (acc) } { "Product instances" } " — every registered router with its status and usage" }
                li { a href={ "/reports/usage.csv?" (acc) } { "Usage history" } " — daily in-use and available per tag, last 90 days" }
            }
        } @else { p.muted { "No smart account is visible to you yet." } }
    };
    Ok(respond(layout(&s.0, "/reports", "Reports", body)))
}

pub async fn licenses_csv(
    req: HttpRequest,
    s: Signed,
    q: web::Query<ReportQuery>,
) -> ConsoleResult<HttpResponse> {
    let (state, account) = account_of(&req, &s, &q).await?;
    let lines = licenses::list(&state.ctx, s.principal(), &account, Vec::new()).await?;
    let mut out = String::new();
    line(
        &mut out,
        &[
            "virtual_account",
            "tag",
            "description",
            "kind",
            "purchased",
            "transferred_in",
            "transferred_out",
            "available",
            "in_use",
            "substituted_to",
            "covered_by_substitution",
            "status",
        ]
        .map(String::from),
    );
    for l in &lines {
        let c = &l.compliance;
        line(
            &mut out,
            &[
                cell(&l.virtual_account),
                cell(&c.tag),
                cell(&c.description),
                c.kind.as_str().to_string(),
                c.purchased.to_string(),
                c.transferred_in.to_string(),
                c.transferred_out.to_string(),
                c.available.to_string(),
                c.in_use.to_string(),
                c.substituted_to.to_string(),
                c.covered_by_substitution.to_string(),
                c.status.as_str().to_string(),
            ],
        );
    }
    Ok(csv_response(&account, "licenses", out))
}

pub async fn devices_csv(
    req: HttpRequest,
    s: Signed,
    q: web::Query<ReportQuery>,
) -> ConsoleResult<HttpResponse> {
    let (state, account) = account_of(&req, &s, &q).await?;
    let mut out = String::new();
    line(
        &mut out,
        &[
            "pid",
            "serial",
            "hostname",
            "virtual_account",
            "status",
            "sia",
            "registered_at",
            "last_contact_at",
            "id_cert_expires",
            "usage",
        ]
        .map(String::from),
    );
    let mut offset = 0;
    loop {
        let page = devices::list(
            &state.ctx,
            s.principal(),
            &account,
            Vec::new(),
            None,
            devices::MAX_PAGE,
            offset,
        )
        .await?;
        for d in &page.devices {
            let i = &d.instance;
            let usage: Vec<String> = d.usage.iter().map(|(t, n)| format!("{t}={n}")).collect();
            line(
                &mut out,
                &[
                    cell(&i.udi_pid),
                    cell(&i.udi_serial),
                    cell(i.hostname.as_deref().unwrap_or("")),
                    cell(&d.virtual_account),
                    d.compliance.overall.as_str().to_string(),
                    d.compliance
                        .sia_out_of_compliance
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| "IN_COMPLIANCE".into()),
                    i.registered_at.to_rfc3339(),
                    i.last_contact_at.to_rfc3339(),
                    i.id_cert_not_after.to_rfc3339(),
                    cell(&usage.join(";")),
                ],
            );
        }
        offset += page.devices.len() as i64;
        if page.devices.is_empty() || offset >= page.total {
            break;
        }
    }
    Ok(csv_response(&account, "product-instances", out))
}

pub async fn usage_csv(
    req: HttpRequest,
    s: Signed,
    q: web::Query<ReportQuery>,
) -> ConsoleResult<HttpResponse> {
    let (state, account) = account_of(&req, &s, &q).await?;
    let days = q.days.unwrap_or(90);
    let mut out = String::new();
    line(
        &mut out,
        &["day", "virtual_account", "tag", "in_use", "available"].map(String::from),
    );
    for v in accounts::list_vas(&state.ctx, s.principal(), &account).await? {
        for snap in
            licenses::usage_history(&state.ctx, s.principal(), &account, &v.name, days).await?
        {
            line(
                &mut out,
                &[
                    snap.day.clone(),
                    cell(&v.name),
                    cell(&snap.tag),
                    snap.in_use.to_string(),
                    snap.available.to_string(),
                ],
            );
        }
    }
    Ok(csv_response(&account, "usage-history", out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=cmd()"), "'=cmd()");
        assert_eq!(cell("-1+1,2"), "\"'-1+1,2\"");
    }
}
