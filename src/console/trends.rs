//! Usage trends of one virtual account: a chart per license tag of in-use against available,
//! from the daily snapshots `app::licenses::usage_history` returns. Reads only.

use super::chart::{line_chart, Series};
use super::{layout, pick_account, respond, state_of, ConsoleResult, Signed};
use crate::app::{accounts, licenses};
use crate::storage::snapshots::Snapshot;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use maud::{html, Markup};
use std::collections::{BTreeMap, BTreeSet};

const PERIODS: [i64; 3] = [30, 90, 365];
const DEFAULT_DAYS: i64 = 90;

#[derive(serde::Deserialize)]
pub struct TrendsQuery {
    account: Option<String>,
    va: Option<String>,
    days: Option<i64>,
}

/// Per tag, its snapshots in day order; rows with an unreadable day are left out.
fn by_tag(rows: &[Snapshot]) -> BTreeMap<&str, Vec<(NaiveDate, i64, i64)>> {
    let mut out: BTreeMap<&str, Vec<(NaiveDate, i64, i64)>> = BTreeMap::new();
    for r in rows {
        if let Ok(d) = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d") {
            out.entry(r.tag.as_str())
                .or_default()
                .push((d, r.in_use, r.available));
        }
    }
    for points in out.values_mut() {
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
    }
    out
}

fn tag_chart(tag: &str, points: &[(NaiveDate, i64, i64)]) -> Markup {
    let days: Vec<NaiveDate> = points.iter().map(|p| p.0).collect();
    let series = [
        Series {
            label: "In use",
            color: "#0b6bcb",
            dashed: false,
            values: points.iter().map(|p| p.1).collect(),
        },
        Series {
            label: "Available",
            color: "#1f7a3a",
            dashed: true,
            values: points.iter().map(|p| p.2).collect(),
        },
    ];
    match line_chart(
        &format!("{tag}: in use and available per day"),
        &days,
        &series,
    ) {
        Ok(svg) => svg,
        Err(e) => html! { p.muted { "No trend for " (tag) " yet: " (e) "." } },
    }
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<TrendsQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let (all, chosen) = pick_account(&state, who, q.account.as_deref()).await?;
    let Some(acc) = chosen else {
        return Ok(respond(layout(
            &s.0,
            "/licenses",
            "Usage trends",
            html! { p.muted { "No smart account is visible to you yet." } },
        )));
    };
    let vas = accounts::list_vas(&state.ctx, who, &acc.name).await?;
    // A VA name left over from another account falls back to this account's first VA.
    let va =
        q.va.as_deref()
            .and_then(|v| vas.iter().find(|x| x.name == v.trim()))
            .or(vas.first());
    let days = q
        .days
        .filter(|d| PERIODS.contains(d))
        .unwrap_or(DEFAULT_DAYS);
    let rows = match va {
        Some(v) => licenses::usage_history(&state.ctx, who, &acc.name, &v.name, days).await?,
        None => Vec::new(),
    };
    let tags = by_tag(&rows);
    let distinct_days: BTreeSet<&str> = rows.iter().map(|r| r.day.as_str()).collect();
    let body = html! {
        form.picker method="get" action="/trends" {
            label { "Smart account "
                select name="account" { @for a in &all { option value=(a.name) selected[a.id == acc.id] { (a.name) } } } }
            label { "Virtual account "
                select name="va" { @for v in &vas {
                    option value=(v.name) selected[va.is_some_and(|x| x.id == v.id)] { (v.name) } } } }
            label { "Period "
                select name="days" { @for d in PERIODS {
                    option value=(d) selected[d == days] { "last " (d) " days" } } } }
            button type="submit" { "Show" }
        }
        @if va.is_none() {
            p.muted #no-trend { "This smart account has no virtual accounts." }
        } @else if distinct_days.len() < 2 {
            p.muted #no-trend {
                @if distinct_days.is_empty() { "No usage snapshot yet." } @else { "Only one usage snapshot so far." }
                " A snapshot is taken every day; trends appear once there are two."
            }
        } @else {
            p.muted { "Daily snapshots of the last " (days) " days: licenses in use (solid) against licenses available (dashed)." }
            @for (tag, points) in &tags {
                section.trend data-tag=(tag) {
                    h2 { (tag) }
                    (tag_chart(tag, points))
                }
            }
        }
    };
    Ok(respond(layout(&s.0, "/licenses", "Usage trends", body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(day: &str, tag: &str, in_use: i64) -> Snapshot {
        Snapshot {
            day: day.into(),
            va_id: 1,
            tag: tag.into(),
            in_use,
            available: 10,
        }
    }

    #[test]
    fn snapshots_group_per_tag_in_day_order() {
        let rows = [
            snap("2026-01-02", "B", 2),
            snap("2026-01-01", "B", 1),
            snap("bad", "B", 9),
            snap("2026-01-01", "A", 5),
        ];
        let g = by_tag(&rows);
        assert_eq!(g.keys().copied().collect::<Vec<_>>(), vec!["A", "B"]);
        assert_eq!(g["B"].iter().map(|p| p.1).collect::<Vec<_>>(), vec![1, 2]);
        let one = tag_chart("A", &g["A"]).into_string();
        assert!(!one.contains("<svg") && one.contains("two days"), "{one}");
        assert!(tag_chart("B", &g["B"]).into_string().starts_with("<svg"));
    }
}
