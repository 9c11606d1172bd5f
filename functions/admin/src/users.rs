//! `/api/users` (owners only): the people who log in to the console, and their API keys
//! (machines act with their user's role). A password is never shown; a key only once.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_app::access::{self, AccessError, UserChange};
use crm_core::access::{Actor, Password, Role, User};
use crm_core::values::{Email, Invalid, format_ts};
use crm_http::{ApiError, ApiPath, AppState, JsonResult};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::body::{self, parsed, required};
use crate::field_error;

fn owner_only(actor: &Actor) -> Result<(), ApiError> {
    if actor.role.manages_users() {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: "only an owner manages users".into(),
            field: None,
        })
    }
}

fn access_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Taken => ApiError::Conflict("a user with this email exists".into()),
        AccessError::NoSuchUser => ApiError::NotFound,
        AccessError::LastOwner => ApiError::Conflict(e.to_string()),
        AccessError::Store(e) => e.into(),
        e => ApiError::Internal(e.to_string()),
    }
}

async fn user_json(state: &AppState, u: &User) -> Result<Value, ApiError> {
    let keys = state.store.user_keys(&u.user_id).await?;
    Ok(json!({
        "id": u.user_id,
        "email": u.email,
        "role": u.role,
        "disabled": u.disabled,
        "createdAt": format_ts(u.created_at),
        "updatedAt": format_ts(u.updated_at),
        "keys": keys.iter().map(|(_, k)| json!({
            "last4": k.last4,
            "createdAt": format_ts(k.created_at),
            "revokedAt": k.revoked_at.map(format_ts),
        })).collect::<Vec<_>>(),
    }))
}

fn password(body: &serde_json::Map<String, Value>) -> Result<Option<Password>, ApiError> {
    parsed(body, "password", Password::parse)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    owner_only(&actor)?;
    let body = body::object(&bytes)?;
    let email = Email::parse(&required(&body, "email")?).map_err(|e| field_error("email", e))?;
    let role = Role::parse(&required(&body, "role")?).map_err(|e| field_error("role", e))?;
    let password =
        password(&body)?.ok_or_else(|| field_error("password", Invalid::new("missing", "password is required")))?;
    let user = access::create_user(&state.store, email, role, &password, OffsetDateTime::now_utc())
        .await
        .map_err(access_error)?;
    Ok((StatusCode::CREATED, Json(user_json(&state, &user).await?)).into_response())
}

pub async fn list(State(state): State<AppState>, Extension(actor): Extension<Actor>) -> JsonResult {
    owner_only(&actor)?;
    let mut items = Vec::new();
    for u in state.store.users().await? {
        items.push(user_json(&state, &u).await?);
    }
    Ok(Json(json!({ "items": items })))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> JsonResult {
    owner_only(&actor)?;
    let user = state.store.user(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(user_json(&state, &user).await?))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    bytes: Bytes,
) -> JsonResult {
    owner_only(&actor)?;
    let body = body::object(&bytes)?;
    let disabled = match body.get("disabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(field_error(
                "disabled",
                Invalid::new("invalid_type", "disabled must be true or false"),
            ));
        }
    };
    let change = UserChange {
        role: parsed(&body, "role", Role::parse)?,
        disabled,
        password: password(&body)?,
    };
    let user = access::update_user(&state.store, &id, change, OffsetDateTime::now_utc())
        .await
        .map_err(access_error)?;
    Ok(Json(user_json(&state, &user).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> JsonResult {
    owner_only(&actor)?;
    let user = access::delete_user(&state.store, &id).await.map_err(access_error)?;
    Ok(Json(json!({"id": user.user_id, "deleted": true})))
}

/// `DELETE /api/users/{id}/sessions`: logs the user out everywhere.
pub async fn end_sessions(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> JsonResult {
    owner_only(&actor)?;
    state.store.user(&id).await?.ok_or(ApiError::NotFound)?;
    let ended = access::logout_everywhere(&state.store, &id).await?;
    Ok(Json(json!({"id": id, "sessionsEnded": ended})))
}

pub async fn add_key(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    owner_only(&actor)?;
    let (key, info) = access::new_user_key(&state.store, &id, OffsetDateTime::now_utc())
        .await
        .map_err(access_error)?;
    let body = json!({"key": key, "last4": info.last4, "createdAt": format_ts(info.created_at)});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath((id, last4)): ApiPath<(String, String)>,
) -> JsonResult {
    owner_only(&actor)?;
    match state
        .store
        .revoke_user_key(&id, &last4, OffsetDateTime::now_utc())
        .await?
    {
        0 => Err(ApiError::NotFound),
        n => Ok(Json(json!({"id": id, "last4": last4, "revoked": n}))),
    }
}
