//! `/api/users` (owners only): the people who log in to the console, and their API keys
//! (machines act with their user's role). A password is never shown; a key only once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_app::access::{self, AccessError, UserChange, UserWithKeys};
use crm_core::access::{Actor, Password, Role};
use crm_core::input::{FieldError, optional, required};
use crm_core::source::KeyInfo;
use crm_core::values::{Email, ts};
use crm_http::{ApiError, ApiJson, ApiPath, AppState, Items, JsonResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

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

/// A user as the API shows it: never a password, keys by their last four characters.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    id: String,
    email: Email,
    role: Role,
    disabled: bool,
    #[serde(with = "ts")]
    created_at: OffsetDateTime,
    #[serde(with = "ts")]
    updated_at: OffsetDateTime,
    /// Their API keys by their last four characters: never a key or its hash.
    keys: Vec<KeyInfo>,
}

fn view((u, keys): UserWithKeys) -> UserView {
    UserView {
        id: u.user_id,
        email: u.email,
        role: u.role,
        disabled: u.disabled,
        created_at: u.created_at,
        updated_at: u.updated_at,
        keys,
    }
}

/// `POST /api/users` as sent.
#[derive(Deserialize)]
pub struct NewUserBody {
    email: Option<String>,
    role: Option<String>,
    password: Option<String>,
}

pub struct NewUser {
    email: Email,
    role: Role,
    password: Password,
}

impl TryFrom<NewUserBody> for NewUser {
    type Error = FieldError;
    fn try_from(b: NewUserBody) -> Result<Self, FieldError> {
        Ok(Self {
            email: required("email", b.email.as_deref(), Email::parse)?,
            role: required("role", b.role.as_deref(), Role::parse)?,
            password: required("password", b.password.as_deref(), Password::parse)?,
        })
    }
}

/// `PUT /api/users/{id}` as sent: what changes.
#[derive(Deserialize)]
pub struct UserChangeBody {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

impl TryFrom<UserChangeBody> for UserChange {
    type Error = FieldError;
    fn try_from(b: UserChangeBody) -> Result<Self, FieldError> {
        Ok(Self {
            role: optional("role", b.role.as_deref(), Role::parse)?,
            disabled: b.disabled,
            password: optional("password", b.password.as_deref(), Password::parse)?,
        })
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<Response, ApiError> {
    owner_only(&actor)?;
    let new = NewUser::try_from(body)?;
    let user = access::create_user(
        &state.store,
        new.email,
        new.role,
        &new.password,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(access_error)?;
    // A new user has no keys yet.
    Ok((StatusCode::CREATED, Json(view((user, Vec::new())))).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Items<UserView>>, ApiError> {
    owner_only(&actor)?;
    let items = access::users_with_keys(&state.store)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(Json(Items { items }))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    owner_only(&actor)?;
    let user = access::user_with_keys(&state.store, &id).await.map_err(access_error)?;
    Ok(Json(view(user)))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UserChangeBody>,
) -> Result<Json<UserView>, ApiError> {
    owner_only(&actor)?;
    let change = UserChange::try_from(body)?;
    let user = access::update_user(&state.store, &id, change, OffsetDateTime::now_utc())
        .await
        .map_err(access_error)?;
    // The user as just written, with their keys: no second read of the user.
    let user = access::with_keys(&state.store, user).await?;
    Ok(Json(view(user)))
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
    access::user(&state.store, &id).await.map_err(access_error)?;
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
    let key = NewKey {
        key,
        last4: info.last4,
        created_at: info.created_at,
    };
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

/// A new key, the only time it is shown.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKey {
    key: String,
    last4: String,
    #[serde(with = "ts")]
    created_at: OffsetDateTime,
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath((id, last4)): ApiPath<(String, String)>,
) -> JsonResult {
    owner_only(&actor)?;
    let n = access::revoke_user_key(&state.store, &id, &last4, OffsetDateTime::now_utc())
        .await
        .map_err(access_error)?;
    Ok(Json(json!({"id": id, "last4": last4, "revoked": n})))
}
