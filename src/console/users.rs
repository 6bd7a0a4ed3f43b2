//! Console users (add, disable, enable, delete) and API clients (create, revoke) for system admins.
//! A new client's secret appears once in the creating answer; passwords are never shown or logged.

use super::{
    csrf_field, layout, notice, respond, see_other, state_of, ConsoleError, ConsoleResult,
    FormData, Posted, Signed,
};
use crate::app::{accounts, principals};
use crate::domain::roles::Role;
use crate::storage::accounts::Account;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use std::collections::HashMap;

#[derive(serde::Deserialize)]
pub struct UsersQuery {
    done: Option<String>,
}

fn account_names(ids: &[i64], names: &HashMap<i64, &str>) -> String {
    if ids.is_empty() {
        return "all".into();
    }
    ids.iter()
        .map(|id| names.get(id).copied().unwrap_or("(deleted)"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn role_select() -> Markup {
    html! {
        select name="role" {
            @for r in Role::ALL {
                option value=(r.as_str()) selected[r == Role::Viewer] { (r.as_str()) }
            }
        }
    }
}

fn account_boxes(all: &[Account]) -> Markup {
    html! {
        fieldset.vas {
            legend { "Smart accounts (an account-admin needs one; a viewer is limited to those ticked)" }
            @if all.is_empty() { span.muted { "No smart accounts yet." } }
            @for a in all {
                label.check { input type="checkbox" name="account" value=(a.name); (a.name) }
            }
        }
    }
}

/// One small form posting a user name, with a confirmation question for destructive actions.
fn user_action(s: &Signed, action: &str, name: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_field(&s.0))
            input type="hidden" name="name" value=(name);
            button type="submit" class=[confirm.map(|_| "danger")] { (label) }
        }
    }
}

async fn render(
    req: &HttpRequest,
    s: &Signed,
    done: Option<&str>,
    created: Option<&principals::NewClient>,
) -> ConsoleResult<HttpResponse> {
    let state = state_of(req)?;
    let who = s.principal();
    // Both listings refuse anyone but a system admin; the page has nothing else to show.
    let users = principals::list_users(&state.ctx, who).await?;
    let clients = principals::list_api_clients(&state.ctx, who).await?;
    let all = accounts::list_accounts(&state.ctx, who).await?;
    let names: HashMap<i64, &str> = all.iter().map(|a| (a.id, a.name.as_str())).collect();
    let body = html! {
        (notice(done))
        @if let Some(c) = created {
            div.newtoken #new-client {
                p { strong { "API client " (c.client.name) " created." }
                    " Copy the secret now: it is shown only once and stored only as a hash." }
                dl.facts {
                    dt { "client_id" }
                    dd { code.token #new-client-id { (c.client.client_id) } " "
                        button type="button" data-copy="new-client-id" { "Copy" } }
                    dt { "client_secret" }
                    dd { code.token #new-client-secret { (c.secret) } " "
                        button type="button" data-copy="new-client-secret" { "Copy" } }
                }
            }
        }
        h2 { "Users" }
        table #users {
            thead { tr { th { "Name" } th { "Role" } th { "Smart accounts" } th { "State" } th {} } }
            tbody {
                @for u in &users {
                    tr data-user=(u.name) {
                        td { (u.name) }
                        td { (u.role.as_str()) }
                        td { @if matches!(u.role, Role::AccountAdmin | Role::Viewer) { (account_names(&u.accounts, &names)) } @else { "all" } }
                        td { @if u.disabled { span.badge.bad { "disabled" } } @else { span.badge.ok { "active" } } }
                        td {
                            // Not offered on one's own row; the server refuses it anyway.
                            @if u.name != who.name {
                                @if u.disabled {
                                    (user_action(s, "/users/enable", &u.name, "Enable", None))
                                } @else {
                                    (user_action(s, "/users/disable", &u.name, "Disable",
                                        Some("Disable this user? Their sessions end at once and they can no longer sign in.")))
                                }
                                (user_action(s, "/users/delete", &u.name, "Delete",
                                    Some("Delete this user? This cannot be undone; the audit log keeps their name.")))
                            }
                        }
                    }
                }
            }
        }
        form.row #add-user method="post" action="/users" autocomplete="off" {
            (csrf_field(&s.0))
            label { "User name" input name="name" maxlength="64" required autocomplete="off"; }
            label { "Role" (role_select()) }
            label { "Password" input type="password" name="password" minlength="12" required autocomplete="new-password"; }
            label { "Password again" input type="password" name="confirm" minlength="12" required autocomplete="new-password"; }
            (account_boxes(&all))
            button.primary type="submit" #add-user-button { "Add user" }
        }
        h2 { "API clients" }
        table #clients {
            thead { tr { th { "client_id" } th { "Name" } th { "Role" } th { "Smart accounts" } th { "Created" } th { "State" } th {} } }
            tbody {
                @if clients.is_empty() { tr { td colspan="7" .muted { "No API clients." } } }
                @for k in &clients {
                    tr data-client=(k.client_id) {
                        td { code { (k.client_id) } }
                        td { (k.name) }
                        td { (k.role.as_str()) }
                        td { @if matches!(k.role, Role::AccountAdmin | Role::Viewer) { (account_names(&k.accounts, &names)) } @else { "all" } }
                        td { (super::when(k.created_at)) }
                        td { @if k.revoked { span.badge.bad { "revoked" } } @else { span.badge.ok { "active" } } }
                        td { @if !k.revoked {
                            form.inline method="post" action="/users/clients/revoke"
                                data-confirm="Revoke this API client? Its access tokens stop working at once." {
                                (csrf_field(&s.0))
                                input type="hidden" name="client_id" value=(k.client_id);
                                button.danger type="submit" { "Revoke" }
                            }
                        } }
                    }
                }
            }
        }
        form.row #create-client method="post" action="/users/clients" {
            (csrf_field(&s.0))
            label { "Client name" input name="name" maxlength="64" required; }
            label { "Role" (role_select()) }
            (account_boxes(&all))
            button.primary type="submit" #create-client-button { "Create API client" }
        }
    };
    Ok(respond(layout(
        &s.0,
        "/users",
        "Users and API clients",
        body,
    )))
}

pub async fn page(
    req: HttpRequest,
    s: Signed,
    q: web::Query<UsersQuery>,
) -> ConsoleResult<HttpResponse> {
    render(&req, &s, q.done.as_deref(), None).await
}

/// The accounts ticked on a form, kept only for the roles that are limited by them.
fn scoped_accounts(f: &FormData, role: Role) -> Vec<String> {
    if matches!(role, Role::AccountAdmin | Role::Viewer) {
        f.all("account").into_iter().map(str::to_string).collect()
    } else {
        Vec::new()
    }
}

fn role_of(f: &FormData) -> ConsoleResult<Role> {
    Role::parse(&f.required("role", "Role")?).map_err(|e| ConsoleError::BadRequest(e.to_string()))
}

pub async fn add_user(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &p.form;
    let name = f.required("name", "User name")?;
    let role = role_of(f)?;
    // Not trimmed: spaces may be part of a password.
    let password = f.get("password").unwrap_or_default();
    if !super::same_secret(password, f.get("confirm").unwrap_or_default()) {
        return Err(ConsoleError::BadRequest("the two passwords differ".into()));
    }
    principals::add_user(
        &state.ctx,
        p.principal(),
        &name,
        role,
        password,
        scoped_accounts(f, role),
    )
    .await?;
    Ok(see_other("/users?done=user"))
}

pub async fn create_client(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &p.form;
    let name = f.required("name", "Client name")?;
    let role = role_of(f)?;
    let created = principals::create_api_client(
        &state.ctx,
        p.principal(),
        &name,
        role,
        scoped_accounts(f, role),
    )
    .await?;
    render(&req, &Signed(p.session), None, Some(&created)).await
}

pub async fn revoke_client(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let id = p.form.required("client_id", "client_id")?;
    principals::revoke_api_client(&state.ctx, p.principal(), &id).await?;
    Ok(see_other("/users?done=client-revoked"))
}

pub async fn disable_user(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let name = p.form.required("name", "User name")?;
    principals::set_user_disabled(&state.ctx, p.principal(), &name, true).await?;
    Ok(see_other("/users?done=user-disabled"))
}

pub async fn enable_user(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let name = p.form.required("name", "User name")?;
    principals::set_user_disabled(&state.ctx, p.principal(), &name, false).await?;
    Ok(see_other("/users?done=user-enabled"))
}

pub async fn delete_user(req: HttpRequest, p: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let name = p.form.required("name", "User name")?;
    principals::delete_user(&state.ctx, p.principal(), &name).await?;
    Ok(see_other("/users?done=user-deleted"))
}
