//! `/dashboard/users` (owners only): who may log in, with which role; add, change role,
//! disable, end sessions, remove; and each user's page with their API keys (a new one shown
//! once, revoke). Every change is in the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use crm_app::access::{self, AccessError, UserChange};
use crm_core::access::{Password, Role};
use crm_core::values::{Email, format_ts};
use maud::{Markup, html};
use time::OffsetDateTime;

use crate::pages::respond_status;
use crate::{Console, Refusal, Submitted, Viewer};

fn role_options(selected: Role) -> Markup {
    html! {
        @for r in Role::ALL {
            option value=(r.as_str()) selected[r == selected] { (r.as_str()) }
        }
    }
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let users = access::users(&console.app.store).await?;
    let csrf = &viewer.session.csrf;
    let body = html! {
        @if let Some(n) = notice {
            p.notice role="status" { (n) }
        }
        table {
            caption { "People who can log in" }
            thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Since" } th scope="col" { "Actions" } } }
            tbody {
                @for u in &users {
                    tr {
                        th scope="row" { a href={ "/dashboard/users/" (u.user_id) } { (u.email.as_str()) } }
                        td {
                            form.inline method="post" action={ "/dashboard/users/" (u.user_id) } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="do" value="role";
                                label.visually-hidden for={ "role-" (u.user_id) } { "Role of " (u.email.as_str()) }
                                select id={ "role-" (u.user_id) } name="role" { (role_options(u.role)) }
                                button type="submit" { "Save role" }
                            }
                        }
                        td { @if u.disabled { "disabled" } @else { "active" } }
                        td { (format_ts(u.created_at)[..10]) }
                        td.actions {
                            @for (action, label) in [
                                (if u.disabled { "enable" } else { "disable" }, if u.disabled { "Enable" } else { "Disable" }),
                                ("revoke", "End sessions"),
                                ("delete", "Remove"),
                            ] {
                                form.inline method="post" action={ "/dashboard/users/" (u.user_id) } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="do" value=(action);
                                    button type="submit" aria-label={ (label) " " (u.email.as_str()) } { (label) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a user" }
        form.stacked method="post" action="/dashboard/users" {
            input type="hidden" name="csrf" value=(csrf);
            label for="new-email" { "Email" }
            input #new-email type="email" name="email" required autocomplete="off";
            label for="new-role" { "Role" }
            select #new-role name="role" { (role_options(Role::Analyst)) }
            label for="new-password" { "Password (at least 12 characters; tell them in person)" }
            input #new-password type="password" name="password" required minlength="12" autocomplete="new-password";
            button type="submit" { "Add user" }
        }
        p { "Owners manage users; managers change everything else (sources and settings included); analysts read, with personal data masked." }
    };
    Ok(respond_status(viewer, status, "Users", "/dashboard/users", body))
}

/// One user's page: their API keys (machines act with the user's role), a new key shown
/// once, each live key revocable.
async fn render_user(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    issued: Option<&str>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let store = &console.app.store;
    let found = match crm_core::partners::parse_id(id) {
        Ok(_) => access::user_with_keys(store, id).await,
        Err(_) => Err(AccessError::NoSuchUser),
    };
    let (user, keys) = match found {
        Ok(found) => found,
        Err(AccessError::Store(e)) => return Err(e.into()),
        Err(_) => {
            return Ok(crate::pages::message(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such user.",
            ));
        }
    };
    let here = format!("/dashboard/users/{}", user.user_id);
    let csrf = &viewer.session.csrf;
    let body = html! {
        @if let Some(key) = issued {
            div.notice role="status" {
                p { "The new key (shown this once: copy it now; it acts as " (user.role.as_str()) "):" }
                pre.preview { (key) }
            }
        }
        dl.facts {
            dt { "Role" } dd { (user.role.as_str()) }
            dt { "Status" } dd { @if user.disabled { "disabled" } @else { "active" } }
        }
        table {
            caption { "API keys (Authorization: Bearer …)" }
            thead { tr { th scope="col" { "Key" } th scope="col" { "Created (UTC)" } th scope="col" { "Requests" } th scope="col" { "Last used (UTC)" } th scope="col" { "Status" } th scope="col" { "Actions" } } }
            tbody {
                @if keys.is_empty() { tr { td colspan="6" { "No keys." } } }
                @for k in &keys {
                    tr {
                        td { "…" (k.last4) }
                        td { (format_ts(k.created_at)) }
                        td.num { (k.requests) }
                        td { @if let Some(at) = k.last_used_at { (format_ts(at)) } }
                        td { @match k.revoked_at { Some(at) => { "revoked " (format_ts(at)) } None => { "live" } } }
                        td {
                            @if k.revoked_at.is_none() {
                                form.inline method="post" action=(here) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="do" value="revoke-key";
                                    input type="hidden" name="last4" value=(k.last4);
                                    button.secondary type="submit" aria-label={ "Revoke key …" (k.last4) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.inline method="post" action=(here) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="do" value="new-key";
            button type="submit" { "New API key" }
        }
        p { a href="/dashboard/users" { "Back to users" } }
    };
    Ok(respond_status(
        viewer,
        status,
        user.email.as_str(),
        "/dashboard/users",
        body,
    ))
}

pub async fn user(State(console): State<Console>, viewer: Viewer, Path(id): Path<String>) -> Result<Response, Refusal> {
    viewer.require(Role::manages_users)?;
    render_user(&console, &viewer, &id, None, StatusCode::OK).await
}

pub async fn list(State(console): State<Console>, viewer: Viewer) -> Result<Response, Refusal> {
    viewer.require(Role::manages_users)?;
    render(&console, &viewer, None, StatusCode::OK).await
}

pub async fn create(State(console): State<Console>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(Role::manages_users)?;
    let parsed = (|| {
        let email = Email::parse(s.field("email")).map_err(|e| format!("Email: {}", e.message))?;
        let role = Role::parse(s.field("role")).map_err(|e| format!("Role: {}", e.message))?;
        let password = Password::parse(s.form.get("password").map_or("", String::as_str))
            .map_err(|e| format!("Password: {}", e.message))?;
        Ok::<_, String>((email, role, password))
    })();
    let (email, role, password) = match parsed {
        Ok(p) => p,
        Err(message) => return render(&console, &s.viewer, Some(&message), StatusCode::BAD_REQUEST).await,
    };
    match access::create_user(&console.app.store, email, role, &password, OffsetDateTime::now_utc()).await {
        Ok(user) => {
            s.viewer
                .audit(&console, "user.create", &format!("{} as {}", user.user_id, role))
                .await;
            Ok(Redirect::to("/dashboard/users").into_response())
        }
        Err(AccessError::Taken) => {
            render(
                &console,
                &s.viewer,
                Some("A user with this email exists."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(AccessError::Store(e)) => Err(e.into()),
        Err(e) => render(&console, &s.viewer, Some(&e.to_string()), StatusCode::BAD_REQUEST).await,
    }
}

pub async fn change(State(console): State<Console>, Path(id): Path<String>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(Role::manages_users)?;
    let store = &console.app.store;
    let now = OffsetDateTime::now_utc();
    let action = s.field("do").to_owned();
    match action.as_str() {
        "new-key" => {
            return match access::new_user_key(store, &id, now).await {
                Ok((key, info)) => {
                    s.viewer
                        .audit(&console, "user.key.create", &format!("{id} …{}", info.last4))
                        .await;
                    render_user(&console, &s.viewer, &id, Some(&key), StatusCode::OK).await
                }
                Err(AccessError::Store(e)) => Err(e.into()),
                Err(_) => render_user(&console, &s.viewer, &id, None, StatusCode::NOT_FOUND).await,
            };
        }
        "revoke-key" => {
            let last4 = s.field("last4");
            match access::revoke_user_key(store, &id, last4, now).await {
                Ok(_) => {
                    s.viewer
                        .audit(&console, "user.key.revoke", &format!("{id} …{last4}"))
                        .await
                }
                Err(AccessError::Store(e)) => return Err(e.into()),
                Err(_) => {}
            }
            return render_user(&console, &s.viewer, &id, None, StatusCode::OK).await;
        }
        _ => {}
    }
    let outcome = match action.as_str() {
        "role" => match Role::parse(s.field("role")) {
            Ok(role) => access::update_user(
                store,
                &id,
                UserChange {
                    role: Some(role),
                    ..UserChange::default()
                },
                now,
            )
            .await
            .map(|_| ()),
            Err(e) => return render(&console, &s.viewer, Some(&e.message), StatusCode::BAD_REQUEST).await,
        },
        "disable" | "enable" => {
            let change = UserChange {
                disabled: Some(action == "disable"),
                ..UserChange::default()
            };
            access::update_user(store, &id, change, now).await.map(|_| ())
        }
        "revoke" => access::logout_everywhere(store, &id)
            .await
            .map(|_| ())
            .map_err(AccessError::from),
        "delete" => access::delete_user(store, &id).await.map(|_| ()),
        _ => return render(&console, &s.viewer, Some("Unknown action."), StatusCode::BAD_REQUEST).await,
    };
    match outcome {
        Ok(()) => {
            s.viewer.audit(&console, &format!("user.{action}"), &id).await;
            Ok(Redirect::to("/dashboard/users").into_response())
        }
        Err(AccessError::Store(e)) => Err(e.into()),
        Err(AccessError::NoSuchUser) => render(&console, &s.viewer, Some("No such user."), StatusCode::NOT_FOUND).await,
        Err(e) => render(&console, &s.viewer, Some(&e.to_string()), StatusCode::CONFLICT).await,
    }
}
