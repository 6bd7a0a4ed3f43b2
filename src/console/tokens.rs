//! Registration tokens: create, list with state, revoke. A new token is shown once in
//! full with a copy button; people who may only read see a shortened value.

use super::{
    can_write, csrf_field, layout, notice, pick_account, query, respond, see_other, state_of,
    status_badge, when, ConsoleError, ConsoleResult, Posted, Signed,
};
use crate::app::{accounts, tokens};
use crate::domain::roles::Principal;
use crate::domain::tokens::{Token, TokenSpec, TokenState, DEFAULT_DAYS, MAX_DAYS, MIN_DAYS};
use crate::server::AppState;
use crate::storage::accounts::Account;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

#[derive(serde::Deserialize)]
pub struct TokensQuery {
    account: Option<String>,
    va: Option<String>,
    done: Option<String>,
}

pub fn short(token: &str) -> String {
    format!("{}…", token.chars().take(8).collect::<String>())
}

async fn render(
    state: &AppState,
    s: &Signed,
    account: Option<&str>,
    va: Option<&str>,
    done: Option<&str>,
    created: Option<&Token>,
) -> ConsoleResult<HttpResponse> {
    let who: &Principal = s.principal();
    let (all, chosen) = pick_account(state, who, account).await?;
    let Some(acc) = chosen else {
        return Ok(respond(layout(
            &s.0,
            "/tokens",
            "Registration tokens",
            html! { p.muted { "No smart account is visible to you yet." } },
        )));
    };
    let vas = accounts::list_vas(&state.ctx, who, &acc.name).await?;
    let va = va.map(str::trim).filter(|v| !v.is_empty());
    let list = tokens::list(&state.ctx, who, &acc.name, va).await?;
    let now = state.ctx.clock.now();
    let writer = can_write(who, &acc);
    let body = html! {
        form.picker method="get" action="/tokens" {
            label { "Smart account "
                select name="account" { @for a in &all { option value=(a.name) selected[a.id == acc.id] { (a.name) } } } }
            label { "Virtual account "
                select name="va" {
                    option value="" { "(all)" }
                    @for v in &vas { option value=(v.name) selected[va == Some(v.name.as_str())] { (v.name) } }
                } }
            button type="submit" { "Show" }
        }
        (notice(done))
        @if let Some(t) = created {
            div.newtoken #new-token {
                p { strong { "New token for " (t.virtual_account) } " — copy it now and use it with "
                    code { "license smart register idtoken" } " on the router." }
                p { code.token #new-token-value { (t.token) } " "
                    button type="button" data-copy="new-token-value" { "Copy" } }
                p.muted { "Expires " (when(t.expires_at)) "." }
            }
        }
        @if writer && !vas.is_empty() { (create_form(s, &acc, &vas, va)) }
        table #tokens {
            thead { tr {
                th { "Token" } th { "Virtual account" } th { "Description" } th { "Created" }
                th { "Expires" } th.num { "Uses" } th { "Export-controlled" } th { "Created by" } th { "State" }
                @if writer { th {} }
            } }
            tbody {
                @if list.is_empty() { tr { td colspan="10" .muted { "No tokens." } } }
                @for t in &list {
                    @let st = t.state(now);
                    tr data-token-id=(t.id) {
                        td {
                            @if writer {
                                code.token id={ "token-" (t.id) } { (t.token) } " "
                                button type="button" data-copy={ "token-" (t.id) } { "Copy" }
                            } @else { code.token { (short(&t.token)) } }
                        }
                        td { (t.virtual_account) }
                        td.description { (t.description) }
                        td { (when(t.created_at)) }
                        td { (when(t.expires_at)) }
                        td.num { (t.uses) @if let Some(m) = t.max_uses { " / " (m) } }
                        td { @if t.export_controlled { "Allowed" } @else { "Not allowed" } }
                        td { (t.created_by) }
                        td { (status_badge(st.as_str())) }
                        @if writer {
                            td { @if st != TokenState::Revoked {
                                form.inline method="post" action="/tokens/revoke"
                                    data-confirm="Revoke this token? Routers can no longer register with it; registered routers are not affected." {
                                    (csrf_field(&s.0))
                                    input type="hidden" name="account" value=(acc.name);
                                    input type="hidden" name="va" value=[va];
                                    input type="hidden" name="token" value=(t.token);
                                    button.danger type="submit" { "Revoke" }
                                }
                            } }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(layout(
        &s.0,
        "/tokens",
        "Registration tokens",
        body,
    )))
}

fn create_form(
    s: &Signed,
    acc: &Account,
    vas: &[crate::storage::accounts::VirtualAccount],
    va: Option<&str>,
) -> Markup {
    html! {
        form.row #create-token method="post" action="/tokens" {
            (csrf_field(&s.0))
            input type="hidden" name="account" value=(acc.name);
            label { "Virtual account"
                select name="va" { @for v in vas { option value=(v.name) selected[va == Some(v.name.as_str())] { (v.name) } } } }
            label { "Description" input name="description" maxlength="512"; }
            label { "Expires after (days)"
                input type="number" name="days" min=(MIN_DAYS) max=(MAX_DAYS) value=(DEFAULT_DAYS) required; }
            label { "Maximum uses" input type="number" name="max_uses" min="1" placeholder="unlimited"; }
            label.check { input type="checkbox" name="export_controlled" value="1"; "Allow export-controlled functionality" }
            button.primary type="submit" id="create-token-button" { "Create token" }
        }
    }
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<TokensQuery>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    render(
        &state,
        &s,
        q.account.as_deref(),
        q.va.as_deref(),
        q.done.as_deref(),
        None,
    )
    .await
}

fn optional_number(v: Option<&str>, label: &str) -> ConsoleResult<Option<i64>> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ConsoleError::BadRequest(format!("{label} must be a whole number"))),
    }
}

pub async fn create(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &p.form;
    let account = f.required("account", "Account")?;
    let va = f.required("va", "Virtual account")?;
    let spec = TokenSpec::parse(
        optional_number(f.get("days"), "Expiry")?,
        optional_number(f.get("max_uses"), "Maximum uses")?,
        f.checked("export_controlled"),
        f.get("description"),
    )
    .map_err(crate::error::AppError::from)?;
    let t = tokens::create(&state.ctx, p.principal(), &account, &va, spec).await?;
    // Shown in this answer rather than after a redirect: the value must not sit in a URL.
    let s = Signed(p.session);
    render(&state, &s, Some(&account), Some(&va), None, Some(&t)).await
}

pub async fn revoke(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &p.form;
    let account = f.required("account", "Account")?;
    let token = f.required("token", "Token")?;
    let va = f.get("va").map(str::trim).filter(|v| !v.is_empty());
    tokens::revoke(&state.ctx, p.principal(), &account, va, vec![token]).await?;
    let mut pairs = vec![("account", account.as_str()), ("done", "revoked")];
    if let Some(v) = va {
        pairs.push(("va", v));
    }
    Ok(see_other(&format!("/tokens?{}", query(&pairs))))
}
