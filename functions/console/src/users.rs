//! `/dashboard/users` (owners only): who may log in, with which role; add, change role,
//! disable, end sessions, remove. Every change is in the audit log.

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
    let users = console.app.store.users().await?;
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
                        th scope="row" { (u.email.as_str()) }
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
