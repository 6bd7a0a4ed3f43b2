//! Licenses of a smart account per virtual account and tag, and transfers between VAs.
//! Figures come from the compliance engine through `app::licenses`; nothing is recounted here.

use super::{
    account_picker, can_write, csrf_field, layout, notice, pick_account, query, respond, see_other,
    state_of, status_badge, ConsoleError, ConsoleResult, Posted, Signed,
};
use crate::app::{accounts, licenses};
use crate::domain::names::EntitlementTag;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

#[derive(serde::Deserialize)]
pub struct LicensesQuery {
    account: Option<String>,
    done: Option<String>,
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<LicensesQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let (all, chosen) = pick_account(&state, who, q.account.as_deref()).await?;
    let Some(acc) = chosen else {
        return Ok(respond(layout(
            &s.0,
            "/licenses",
            "Licenses",
            html! { p.muted { "No smart account is visible to you yet." } },
        )));
    };
    let lines = licenses::list(&state.ctx, who, &acc.name, Vec::new()).await?;
    let vas = accounts::list_vas(&state.ctx, who, &acc.name).await?;
    let mut tags: Vec<&str> = lines.iter().map(|l| l.compliance.tag.as_str()).collect();
    tags.sort_unstable();
    tags.dedup();
    let body = html! {
        (account_picker("/licenses", &all, Some(&acc)))
        (notice(q.done.as_deref()))
        table #licenses {
            thead { tr {
                th { "Virtual account" } th { "License" } th { "Type" }
                th.num { "Purchased" } th.num { "Transferred in" } th.num { "Transferred out" }
                th.num { "Available" } th.num { "In use" } th.num { "Spare" }
                th { "Substitution" } th { "Status" }
            } }
            tbody {
                @if lines.is_empty() { tr { td colspan="11" .muted { "No licenses and no usage in this account." } } }
                @for l in &lines {
                    @let c = &l.compliance;
                    tr data-tag=(c.tag) data-va=(l.virtual_account) {
                        td { (l.virtual_account) }
                        td { strong { (c.tag) } br; span.muted { (c.description) } }
                        td { (c.kind.as_str()) }
                        td.num { (c.purchased) }
                        td.num { (c.transferred_in) }
                        td.num { (c.transferred_out) }
                        td.num.available { (c.available) }
                        td.num { (c.in_use) }
                        td.num { (c.spare()) }
                        td {
                            @for (from, units) in &c.substituted_from { (units) " × " (from) " covers " br; }
                            @if c.substituted_to > 0 { (c.substituted_to) " lent to lower tags" }
                        }
                        td { (status_badge(c.status.as_str())) }
                    }
                }
            }
        }
        @if can_write(who, &acc) && vas.len() > 1 && !tags.is_empty() {
            h2 { "Transfer licenses" }
            p.muted { "Moves unused licenses to another virtual account of " (acc.name) "." }
            form.row #transfer method="post" action="/licenses/transfer"
                data-confirm="Transfer these licenses to the other virtual account?" {
                (csrf_field(&s.0))
                input type="hidden" name="account" value=(acc.name);
                label { "From" select name="from" { @for v in &vas { option value=(v.name) { (v.name) } } } }
                label { "License" select name="tag" { @for t in &tags { option value=(t) { (t) } } } }
                label { "Quantity" input type="number" name="quantity" min="1" value="1" required; }
                label { "To" select name="to" { @for v in vas.iter().rev() { option value=(v.name) { (v.name) } } } }
                button.primary type="submit" { "Transfer" }
            }
        }
        p.actions {
            a href={ "/reports/licenses.csv?" (query(&[("account", &acc.name)])) } { "Download as CSV" }
            a #trends-link href={ "/trends?" (query(&[("account", &acc.name)])) } { "Usage trends" }
        }
    };
    Ok(respond(layout(&s.0, "/licenses", "Licenses", body)))
}

pub async fn transfer(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &p.form;
    let account = f.required("account", "Account")?;
    let from = f.required("from", "Source virtual account")?;
    let tag = EntitlementTag::parse(&f.required("tag", "License")?)
        .map_err(|e| ConsoleError::BadRequest(e.0))?;
    let quantity: i64 = f
        .required("quantity", "Quantity")?
        .parse()
        .map_err(|_| ConsoleError::BadRequest("quantity must be a whole number".into()))?;
    let to = f.required("to", "Target virtual account")?;
    licenses::transfer(
        &state.ctx,
        p.principal(),
        &account,
        &from,
        vec![licenses::TransferItem {
            tag,
            quantity,
            target_va: to,
        }],
    )
    .await?;
    Ok(see_other(&format!(
        "/licenses?{}",
        query(&[("account", &account), ("done", "transfer")])
    )))
}
