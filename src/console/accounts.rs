//! Smart and virtual accounts: listing, creation for administrators, EULA acceptance.
//! Buttons are hidden from those who may not use them; the services refuse them anyway.

use super::{
    can_write, csrf_field, is_admin, layout, notice, query, respond, see_other, state_of, when,
    ConsoleResult, Posted, Signed,
};
use crate::app::accounts;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

#[derive(serde::Deserialize)]
pub struct AccountsQuery {
    account: Option<String>,
    done: Option<String>,
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<AccountsQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let who = s.principal();
    let list = accounts::list_accounts(&state.ctx, who).await?;
    let mut rows = Vec::with_capacity(list.len());
    for a in list {
        let vas = accounts::list_vas(&state.ctx, who, &a.name).await?;
        rows.push((a, vas));
    }
    let admin = is_admin(who);
    let body = html! {
        (notice(q.done.as_deref()))
        @if admin {
            form.row method="post" action="/accounts" {
                (csrf_field(&s.0))
                label { "New smart account" input name="name" required maxlength="100"; }
                button.primary type="submit" { "Create account" }
            }
        }
        @for (a, vas) in &rows {
            @let focus = q.account.as_deref() == Some(a.name.as_str());
            section.card id={ "account-" (a.id) } class=[focus.then_some("focus")] {
                h2 { (a.name) }
                @match (&a.eula_accepted_at, &a.eula_accepted_by) {
                    (Some(at), by) => {
                        p { span.badge.ok { "EULA accepted" } " " span.muted { (when(*at)) " by " (by.as_deref().unwrap_or("?")) } }
                    }
                    (None, _) => {
                        p { span.badge.bad { "EULA not accepted" } }
                        p.muted { "Routers of this account cannot register until the Smart Software Licensing "
                            "Agreement is accepted on the account's behalf." }
                        @if can_write(who, a) {
                            form.inline method="post" action="/accounts/eula"
                                data-confirm="Accept the Smart Software Licensing Agreement for this account?" {
                                (csrf_field(&s.0))
                                input type="hidden" name="account" value=(a.name);
                                button.primary type="submit" id="accept-eula" { "Accept the agreement" }
                            }
                        }
                    }
                }
                h3 { "Virtual accounts" }
                @if vas.is_empty() { p.muted { "None yet." } }
                ul {
                    @for v in vas {
                        li { (v.name) " — "
                            a href={ "/devices?" (query(&[("account", &a.name)])) } { "instances" } ", "
                            a href={ "/tokens?" (query(&[("account", &a.name), ("va", &v.name)])) } { "tokens" } }
                    }
                }
                @if admin {
                    form.inline method="post" action="/accounts/va" {
                        (csrf_field(&s.0))
                        input type="hidden" name="account" value=(a.name);
                        input name="name" placeholder="New virtual account" required maxlength="100";
                        button type="submit" { "Create virtual account" }
                    }
                }
            }
        }
    };
    Ok(respond(layout(&s.0, "/accounts", "Accounts", body)))
}

fn back(account: &str, done: &str) -> HttpResponse {
    see_other(&format!(
        "/accounts?{}",
        query(&[("account", account), ("done", done)])
    ))
}

pub async fn create_account(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let name = p.form.required("name", "Account name")?;
    let a = accounts::create_account(&state.ctx, p.principal(), &name).await?;
    Ok(back(&a.name, "account"))
}

pub async fn create_va(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let account = p.form.required("account", "Account")?;
    let name = p.form.required("name", "Virtual account name")?;
    accounts::create_va(&state.ctx, p.principal(), &account, &name).await?;
    Ok(back(&account, "va"))
}

pub async fn accept_eula(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let account = p.form.required("account", "Account")?;
    accounts::accept_eula(&state.ctx, p.principal(), &account).await?;
    Ok(back(&account, "eula"))
}
