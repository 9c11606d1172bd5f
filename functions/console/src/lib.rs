//! `/dashboard`: the console. Pages rendered on the server (maud: every value escaped), usable
//! without JavaScript, for people who log in with email and password. A session is an item
//! with a TTL behind an `HttpOnly`, `SameSite=Lax` cookie (`__Host-` and `Secure` except on
//! plain-HTTP localhost); every form that changes something carries the session's CSRF token
//! and is refused from another site (`Sec-Fetch-Site`, `Origin`). Roles decide what each
//! person sees and may change; every change is in the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use crm_app::access::{self, AccessError};
use crm_core::access::{Actor, AuditEntry, Role, Session};
use crm_core::input::FieldError;
use crm_http::{AppState, HttpFunction};
use crm_providers::parked::ParkedQueues;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

mod customers;
mod exports;
mod feeds;
mod journeys;
mod pages;
mod partner;
use partner::Of;
mod partners;
mod reports;
mod settings;
mod sources;
mod suppressions;
mod templates;
mod users;

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "ConsoleFunction",
    binary: "console",
    needs: &[
        crm_app::config::Needs::UnsubscribeSecret,
        crm_app::config::Needs::SourceSecret,
    ],
    routes: &["/dashboard", "/dashboard/{proxy+}"],
    router,
};

/// What the console reaches besides the table: the dead-letter queues an erasure clears of
/// the person's copies, and the messaging adapters a test send goes through.
#[derive(Clone)]
pub struct Dependencies {
    pub parked: Arc<ParkedQueues>,
    pub messaging: Arc<crm_messaging::Deps>,
}

impl Dependencies {
    /// Cold start in AWS (`PARKED_QUEUE_URLS`, the messaging configuration).
    pub async fn from_env(store: crm_store::Store) -> Result<Self, crm_app::config::ConfigError> {
        let messaging = crm_messaging::Deps::from_env(store).await?;
        let Ok(parked) = ParkedQueues::from_env(()).await;
        Ok(Self {
            parked: Arc::new(parked),
            messaging: Arc::new(messaging),
        })
    }
}

/// The console's state: the app's, and its dependencies.
#[derive(Clone)]
pub struct Console {
    app: AppState,
    deps: Arc<Dependencies>,
}

/// The session cookie: `__Host-` (which browsers only accept with `Secure`, `Path=/` and no
/// domain) wherever the console is reached over HTTPS; a plain name on `http://localhost`.
#[derive(Clone, Copy)]
struct Cookie {
    secure: bool,
}

impl Cookie {
    /// Plain HTTP only for a request to this machine that no proxy says came over HTTPS
    /// (API Gateway always answers on HTTPS, under its own host name).
    fn for_request(headers: &HeaderMap) -> Self {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let local = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        Self {
            secure: https || !local,
        }
    }

    fn name(self) -> &'static str {
        if self.secure {
            "__Host-crm_session"
        } else {
            "crm_session"
        }
    }

    /// The login form's cookie: the form's own CSRF token, before there is a session.
    fn login_name(self) -> &'static str {
        if self.secure { "__Host-crm_login" } else { "crm_login" }
    }

    fn set(self, token: &str) -> String {
        let max_age = crm_core::access::SESSION_LIFETIME.whole_seconds();
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.name()
        )
    }

    fn set_login(self, token: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={LOGIN_FORM_SECONDS}{secure}",
            self.login_name()
        )
    }

    fn clear_login(self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            self.login_name()
        )
    }

    fn clear(self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}", self.name())
    }

    fn read(name: &str, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    }

    fn token(self, headers: &HeaderMap) -> Option<String> {
        Self::read(self.name(), headers)
    }

    fn login_token(self, headers: &HeaderMap) -> Option<String> {
        Self::read(self.login_name(), headers)
    }
}

/// How long a login form may be left open before it is sent.
const LOGIN_FORM_SECONDS: i64 = 3600;

/// The login page with its form's token: the one its cookie already holds (another tab's
/// form keeps working), else a new one, set.
fn login_page_with(headers: &HeaderMap, status: StatusCode, email: &str, next: &str, error: Option<&str>) -> Response {
    let cookie = Cookie::for_request(headers);
    let token = cookie.login_token(headers).unwrap_or_else(access::new_token);
    let mut response = pages::login(status, email, next, error, &token);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie.set_login(&token)).expect("a token is ASCII"),
    );
    response
}

async fn login_page(
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let next = safe_next(q.get("next"));
    login_page_with(&headers, StatusCode::OK, "", &next, None)
}

pub fn router(state: AppState) -> Router {
    let console = Console {
        deps: state.extension(),
        app: state,
    };
    let routes = Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/logout-everywhere", post(logout_everywhere))
        .route("/dashboard/users", get(users::list).post(users::create))
        .route("/dashboard/users/{id}", get(users::user).post(users::change))
        .route("/dashboard/customers", get(customers::list))
        .route("/dashboard/customers/{id}", get(customers::profile))
        .route("/dashboard/customers/{id}/erase", post(customers::erase))
        .route("/dashboard/clicks", get(feeds::clicks))
        .route("/dashboard/leads", get(feeds::leads))
        .route("/dashboard/events", get(feeds::events))
        .route("/dashboard/clicks/live", get(feeds::clicks_live))
        .route("/dashboard/leads/live", get(feeds::leads_live))
        .route("/dashboard/events/live", get(feeds::events_live))
        .route(
            "/dashboard/influencers",
            get(partners::influencers).post(partners::add_influencer),
        )
        .route(
            "/dashboard/campaigns",
            get(partners::campaigns).post(partners::add_campaign),
        )
        .route(
            "/dashboard/influencers/{id}",
            get(|c, v, h, p, q| partner::show(Of::Influencer, c, v, h, p, q))
                .post(|c, h, p, s| partner::change(Of::Influencer, c, h, p, s)),
        )
        .route(
            "/dashboard/campaigns/{id}",
            get(|c, v, h, p, q| partner::show(Of::Campaign, c, v, h, p, q))
                .post(|c, h, p, s| partner::change(Of::Campaign, c, h, p, s)),
        )
        .route(
            "/dashboard/journey-automation",
            get(journeys::page).post(journeys::save),
        )
        .route("/dashboard/settings", get(settings::page).post(settings::save))
        .route("/dashboard/exports", get(exports::page))
        .route("/dashboard/exports/download", get(exports::download))
        .route(
            "/dashboard/message-templates",
            get(templates::list).post(templates::submit),
        )
        .route("/dashboard/reports", get(reports::page))
        .route("/dashboard/sources", get(sources::list).post(sources::create))
        .route("/dashboard/sources/{id}", post(sources::change))
        .route(
            "/dashboard/suppressions",
            get(suppressions::page).post(suppressions::add),
        )
        .route("/dashboard/suppressions/remove", post(suppressions::remove))
        .route("/dashboard/audit", get(pages::audit))
        .route("/dashboard/console.css", get(pages::stylesheet))
        .route(pages::SCRIPT_PATH, get(pages::script))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::not_found)
        .with_state(console)
        .layer(middleware::map_response(pages::headers));
    crm_http::logged(routes)
}

/// A page the console answers instead of what was asked: the reason, as HTML.
pub enum Refusal {
    /// Not logged in (or the session ended): to the login page, then back.
    Login { next: String },
    /// Logged in, but the role may not (403).
    Forbidden,
    /// A form from another site, or without the session's token (403).
    CrossSite,
    /// A dependency failed (503).
    Unavailable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Login { next } => {
                let to = format!("/dashboard/login?next={}", pages::url_encode(&next));
                Redirect::to(&to).into_response()
            }
            Refusal::Forbidden => pages::message(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your role does not allow this. An owner can change roles on the Users page.",
            ),
            Refusal::CrossSite => pages::message(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form did not come from this console, or its page is too old. Go back, reload the page and try again.",
            ),
            Refusal::Unavailable => pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The console cannot reach its data for a moment. Try again shortly.",
            ),
        }
    }
}

impl From<crm_store::StoreError> for Refusal {
    fn from(e: crm_store::StoreError) -> Self {
        tracing::error!(error = %e, "console: the store failed");
        Refusal::Unavailable
    }
}

/// The logged-in person behind a request, with their session's token.
pub struct Viewer {
    pub session: Session,
    token: String,
    ip: Option<String>,
    cookie: Cookie,
}

impl Viewer {
    pub fn role(&self) -> Role {
        self.session.role
    }

    /// Refused unless the role allows it.
    pub fn require(&self, allowed: impl Fn(Role) -> bool) -> Result<(), Refusal> {
        if allowed(self.role()) {
            Ok(())
        } else {
            Err(Refusal::Forbidden)
        }
    }

    /// Appends to the audit log what this person did (`action` on `target`). A lost line
    /// is logged and counted (`crm_http::record_audit`), never silently dropped.
    pub async fn audit(&self, console: &Console, action: &str, target: &str) {
        let entry = AuditEntry {
            id: uuid::Uuid::now_v7().simple().to_string(),
            at: OffsetDateTime::now_utc(),
            actor: Actor::from(&self.session),
            action: action.to_owned(),
            target: target.to_owned(),
            ip: self.ip.clone(),
            status: 200,
        };
        crm_http::record_audit(&console.app.store, &entry).await;
    }
}

fn client_ip(parts: &Parts) -> Option<String> {
    crm_http::client_ip(&parts.extensions).map(|ip| ip.to_string())
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Refusal> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/dashboard".to_owned(), |p| p.as_str().to_owned());
        let Some(token) = Cookie::for_request(&parts.headers).token(&parts.headers) else {
            return Err(Refusal::Login { next });
        };
        let now = OffsetDateTime::now_utc();
        match access::session(&console.app.store, &token, now).await? {
            Some(session) => Ok(Viewer {
                session,
                token,
                ip: client_ip(parts),
                cookie: Cookie::for_request(&parts.headers),
            }),
            None => Err(Refusal::Login { next }),
        }
    }
}

/// Whether a state-changing request comes from the console's own pages: a browser says so
/// in `Sec-Fetch-Site`; older ones at least send `Origin`, which must be this host.
fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| !host.is_empty() && authority == host)
        }
    }
}

/// A form a logged-in person sent from a console page: same site, with the session's CSRF
/// token; its fields.
pub struct Submitted {
    pub viewer: Viewer,
    pub form: BTreeMap<String, String>,
}

impl Submitted {
    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).map_or("", |v| v.trim())
    }

    /// The form as one of the admin API's request types (every field text, trimmed; an
    /// input left empty is not sent).
    pub fn sent<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let text: BTreeMap<&str, &str> = self
            .form
            .iter()
            .map(|(k, v)| (k.as_str(), v.trim()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        serde_json::to_value(text)
            .and_then(serde_json::from_value)
            .map_err(|e| e.to_string())
    }

    /// The form checked by the admin API's `TryFrom` for that request type; a refusal reads
    /// `name is required`, or `field: why`.
    pub fn read<T: serde::de::DeserializeOwned, F: TryFrom<T, Error = FieldError>>(&self) -> Result<F, String> {
        F::try_from(self.sent::<T>()?).map_err(|e| match e.code {
            "missing" => e.message,
            _ => e.to_string(),
        })
    }
}

/// At most this much form.
const MAX_FORM: usize = 64 * 1024;

async fn read_form(req: Request) -> Result<(Parts, BTreeMap<String, String>), Refusal> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| Refusal::CrossSite)?;
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| Refusal::CrossSite)?;
    Ok((parts, form.into_iter().collect()))
}

impl FromRequest<Console> for Submitted {
    type Rejection = Refusal;

    async fn from_request(req: Request, console: &Console) -> Result<Self, Refusal> {
        if !same_site(req.headers()) {
            return Err(Refusal::CrossSite);
        }
        let (mut parts, form) = read_form(req).await?;
        let viewer = Viewer::from_request_parts(&mut parts, console).await?;
        let sent = form.get("csrf").map_or(&[][..], |v| v.as_bytes());
        if !bool::from(sent.ct_eq(viewer.session.csrf.as_bytes())) {
            return Err(Refusal::CrossSite);
        }
        Ok(Submitted { viewer, form })
    }
}

/// Where a login sends the person: a console path they asked for, never elsewhere.
fn safe_next(next: Option<&String>) -> String {
    next.filter(|n| {
        n.starts_with("/dashboard")
            && !n.starts_with("//")
            && !n.contains('\\')
            && n.chars().all(|c| c.is_ascii_graphic())
    })
    .cloned()
    .unwrap_or_else(|| "/dashboard".into())
}

async fn login(State(console): State<Console>, req: Request) -> Response {
    if !same_site(req.headers()) {
        return Refusal::CrossSite.into_response();
    }
    let Ok((parts, form)) = read_form(req).await else {
        return Refusal::CrossSite.into_response();
    };
    let email = form.get("email").map_or("", |v| v.trim());
    let password = form.get("password").map_or("", String::as_str);
    let next = safe_next(form.get("next"));
    // The form's own token (double submit): a login forced from elsewhere is refused even
    // where a browser sends no Sec-Fetch-Site.
    let expected = Cookie::for_request(&parts.headers).login_token(&parts.headers);
    let sent = form.get("login_csrf").map_or(&[][..], |v| v.as_bytes());
    if !expected.is_some_and(|t| bool::from(sent.ct_eq(t.as_bytes()))) {
        let why = "This login form expired or came from elsewhere: please log in again.";
        return login_page_with(&parts.headers, StatusCode::FORBIDDEN, email, &next, Some(why));
    }
    let ip = client_ip(&parts);
    let now = OffsetDateTime::now_utc();
    match access::login(&console.app.store, email, password, ip.as_deref(), now).await {
        Ok((token, session)) => {
            let cookie = Cookie::for_request(&parts.headers);
            let viewer = Viewer {
                session,
                token,
                ip,
                cookie,
            };
            viewer.audit(&console, "login", &viewer.session.user_id).await;
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie.set(&viewer.token)).expect("a token is ASCII"),
            );
            // The login form's token has served: the next login page makes a new one.
            headers.append(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie.clear_login()).expect("ASCII"),
            );
            response
        }
        Err(AccessError::WrongCredentials) => login_page_with(
            &parts.headers,
            StatusCode::UNAUTHORIZED,
            email,
            &next,
            Some("Wrong email or password."),
        ),
        Err(AccessError::TooManyAttempts { scope, until }) => {
            let wait = (until - now).whole_minutes().max(1);
            let message = format!(
                "Too many login attempts {scope}. Try again in {wait} minute{} (after {} UTC).",
                if wait == 1 { "" } else { "s" },
                crm_core::values::format_ts(until)[11..16].to_owned()
            );
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut response = login_page_with(&parts.headers, status, email, &next, Some(&message));
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from((until - now).whole_seconds().max(1)),
            );
            response
        }
        Err(AccessError::Store(e)) => Refusal::from(e).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "login failed");
            Refusal::Unavailable.into_response()
        }
    }
}

fn logged_out(viewer: &Viewer) -> Response {
    let mut response = Redirect::to("/dashboard/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&viewer.cookie.clear()).expect("ASCII"),
    );
    response
}

async fn logout(State(console): State<Console>, submitted: Submitted) -> Result<Response, Refusal> {
    access::logout(&console.app.store, &submitted.viewer.token).await?;
    submitted
        .viewer
        .audit(&console, "logout", &submitted.viewer.session.user_id)
        .await;
    Ok(logged_out(&submitted.viewer))
}

async fn logout_everywhere(State(console): State<Console>, submitted: Submitted) -> Result<Response, Refusal> {
    let user = submitted.viewer.session.user_id.clone();
    access::logout_everywhere(&console.app.store, &user).await?;
    submitted.viewer.audit(&console, "logout everywhere", &user).await;
    Ok(logged_out(&submitted.viewer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_only_ever_leads_back_into_the_console() {
        for (asked, to) in [
            (Some("/dashboard/users"), "/dashboard/users"),
            (Some("https://evil.example/dashboard"), "/dashboard"),
            (Some("//evil.example"), "/dashboard"),
            (Some("/dashboard\\@evil"), "/dashboard"),
            (Some("/dashboard\r\nSet-Cookie: x=1"), "/dashboard"),
            (None, "/dashboard"),
        ] {
            assert_eq!(safe_next(asked.map(str::to_owned).as_ref()), to, "{asked:?}");
        }
    }

    #[test]
    fn the_cookie_is_secure_but_on_plain_http_localhost() {
        let with = |host: &'static str, proto: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static(host));
            if let Some(p) = proto {
                h.insert("x-forwarded-proto", HeaderValue::from_static(p));
            }
            Cookie::for_request(&h)
        };
        assert!(!with("localhost:3005", None).secure);
        assert!(!with("127.0.0.1:3005", None).secure);
        assert!(with("localhost:3005", Some("https")).secure);
        let aws = with("abc.execute-api.eu-west-1.amazonaws.com", None);
        assert!(aws.secure && aws.name() == "__Host-crm_session");
        assert!(aws.set("t").contains("; Secure") && aws.set("t").contains("HttpOnly"));
    }

    #[test]
    fn only_the_consoles_own_pages_may_post() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_site(&headers(&[
            ("origin", "http://localhost:3005"),
            ("host", "localhost:3005")
        ])));
        assert!(!same_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "localhost:3005")
        ])));
    }
}
