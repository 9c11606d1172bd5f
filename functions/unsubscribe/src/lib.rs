//! The unsubscribe link of every marketing email, `/u/{token}` (no auth: the token is signed
//! and names only a channel, a brand and an address hash):
//!
//! - `GET` shows a small page in the brand's language: what the address is unsubscribed
//!   from, a confirm button, "all brands", and a way back (resubscribe). It changes nothing,
//!   so mail scanners that follow links unsubscribe nobody.
//! - `POST` unsubscribes at once and answers 200 with the page (RFC 8058 one-click:
//!   `List-Unsubscribe=One-Click` from the mailbox provider, no cookies, no redirect). The
//!   page's own form posts `scope=all` for every brand, or `action=resubscribe`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use crm_app::compliance::{resubscribe, unsubscribe, unsubscribed};
use crm_core::definition::Channel;
use crm_core::identity::Identifier;
use crm_core::unsubscribe::{ConfirmToken, Token};
use crm_core::values::{Brand, CustomerId, Email};
use crm_http::{ApiError, ApiPath, AppState, HttpFunction};
use crm_messaging::Deps;
use time::OffsetDateTime;

pub const PATH: &str = "/u/{token}";
/// The double opt-in link of a confirmation email.
pub const CONFIRM_PATH: &str = "/confirm/{token}";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "UnsubscribeFunction",
    binary: "unsubscribe",
    needs: &[crm_app::config::Needs::UnsubscribeSecret],
    routes: &[PATH, CONFIRM_PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    let deps: Arc<Deps> = state.extension();
    let routes = Router::new()
        .route(PATH, get(page).post(act))
        .route(CONFIRM_PATH, get(confirm_page).post(confirm))
        .with_state(deps)
        .layer(axum::middleware::map_response(crm_http::page_headers));
    crm_http::finish(routes)
}

/// What the page says, in one language.
struct Words {
    title: &'static str,
    email: &'static str,
    sms: &'static str,
    from: &'static str,
    confirm: &'static str,
    all: &'static str,
    done: &'static str,
    done_all: &'static str,
    again: &'static str,
    resubscribed: &'static str,
    invalid: &'static str,
    address: &'static str,
    confirm_title: &'static str,
    confirm_ask: &'static str,
    confirm_button: &'static str,
    confirmed: &'static str,
    confirm_invalid: &'static str,
}

const EN: Words = Words {
    title: "Unsubscribe",
    email: "marketing emails",
    sms: "marketing text messages",
    from: "from",
    confirm: "Unsubscribe",
    all: "Unsubscribe from all brands",
    done: "You are unsubscribed from",
    done_all: "You are unsubscribed from all brands' marketing.",
    again: "Subscribe again",
    resubscribed: "You are subscribed again to",
    invalid: "This unsubscribe link is not valid. Copy the whole link from the message.",
    address: "Address",
    confirm_title: "Confirm your email",
    confirm_ask: "Confirm that you want emails from",
    confirm_button: "Confirm",
    confirmed: "Thank you: your email is confirmed for",
    confirm_invalid: "This confirmation link is not valid. Copy the whole link from the message.",
};

const ES: Words = Words {
    title: "Darse de baja",
    email: "los correos promocionales",
    sms: "los SMS promocionales",
    from: "de",
    confirm: "Darme de baja",
    all: "Darme de baja de todas las marcas",
    done: "Te diste de baja de",
    done_all: "Te diste de baja de la publicidad de todas las marcas.",
    again: "Volver a suscribirme",
    resubscribed: "Te suscribiste de nuevo a",
    invalid: "Este enlace para darse de baja no es válido. Copia el enlace completo del mensaje.",
    address: "Dirección",
    confirm_title: "Confirma tu correo",
    confirm_ask: "Confirma que quieres recibir correos de",
    confirm_button: "Confirmar",
    confirmed: "Gracias: tu correo está confirmado para",
    confirm_invalid: "Este enlace de confirmación no es válido. Copia el enlace completo del mensaje.",
};

fn words(language: &str) -> &'static Words {
    match language.split(['-', '_']).next().unwrap_or_default() {
        "es" => &ES,
        _ => &EN,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn document(lang: &str, w: &Words, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{}</title>\
         <style>body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:1.0625rem;line-height:1.5;\
         color:#1d1d1f;max-width:32rem;margin:2rem auto;padding:0 1.25rem}}\
         h1{{font-size:1.5rem;margin:.25rem 0 1rem}}.brand{{font-weight:700;letter-spacing:.02em;color:#555;margin:0}}\
         form{{margin:.75rem 0}}button{{font-size:1rem;width:100%;max-width:22rem;min-height:2.75rem;padding:.5rem 1rem;\
         border-radius:.5rem;border:1px solid #1d1d1f;background:#1d1d1f;color:#fff;cursor:pointer}}\
         button[value=all],input[value=resubscribe]+button{{background:#fff;color:#1d1d1f}}</style></head><body>{body}</body></html>",
        w.title
    ))
}

/// The page for a valid token: its state, and the buttons that change it.
fn state_page(
    token: &str,
    t: &Token,
    brand_name: &str,
    language: &str,
    (brand_off, all_off): (bool, bool),
    note: Option<String>,
) -> Html<String> {
    let w = words(language);
    let what = match t.channel {
        Channel::Email => w.email,
        Channel::Sms => w.sms,
    };
    let brand = escape(brand_name);
    let action = format!("/u/{}", escape(token));
    let mut body = format!("<p class=\"brand\">{brand}</p><h1>{}</h1>", w.title);
    if let Some(masked) = &t.masked {
        body.push_str(&format!("<p>{}: <strong>{}</strong></p>", w.address, escape(masked)));
    }
    if let Some(note) = note {
        body.push_str(&format!("<p><strong>{note}</strong></p>"));
    }
    if all_off {
        body.push_str(&format!("<p>{}</p>", w.done_all));
    } else if brand_off {
        body.push_str(&format!("<p>{} {what} {} {brand}.</p>", w.done, w.from));
    } else {
        body.push_str(&format!(
            "<p>{what} {} {brand}</p><form method=\"post\" action=\"{action}\">\
             <button type=\"submit\" name=\"scope\" value=\"brand\">{}</button></form>",
            w.from, w.confirm
        ));
    }
    if !all_off {
        body.push_str(&format!(
            "<form method=\"post\" action=\"{action}\"><button type=\"submit\" name=\"scope\" value=\"all\">{}</button></form>",
            w.all
        ));
    }
    if brand_off || all_off {
        body.push_str(&format!(
            "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"action\" value=\"resubscribe\">\
             <button type=\"submit\">{}</button></form>",
            w.again
        ));
    }
    document(language, w, &body)
}

/// A token this deployment did not sign: a page for people, a JSON 404 for programs.
fn invalid(headers: &HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let w = words("en");
        let body = format!("<h1>{}</h1><p>{}</p><p>{}</p>", w.title, EN.invalid, ES.invalid);
        (StatusCode::NOT_FOUND, document("en", w, &body)).into_response()
    } else {
        ApiError::NotFound.into_response()
    }
}

/// The brand's display name and language.
async fn brand_words(deps: &Deps, t: &Token) -> Result<(String, String), ApiError> {
    let settings = deps.catalog.settings(&t.brand).await?;
    Ok((settings.display_name(&t.brand), settings.language))
}

async fn page(State(deps): State<Arc<Deps>>, headers: HeaderMap, ApiPath(token): ApiPath<String>) -> Response {
    let Some(t) = deps.config.unsubscribe.as_ref().and_then(|k| k.verify(&token)) else {
        return invalid(&headers);
    };
    let shown = async {
        let (name, language) = brand_words(&deps, &t).await?;
        let state = unsubscribed(&deps.store, &t).await?;
        Ok::<_, ApiError>(state_page(&token, &t, &name, &language, state, None))
    };
    shown.await.into_response()
}

/// A confirmation link this deployment did not sign, or whose address is no longer the
/// customer's (erased, merged away and gone).
fn invalid_confirmation(headers: &HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let w = words("en");
        let body = format!(
            "<h1>{}</h1><p>{}</p><p>{}</p>",
            w.confirm_title, EN.confirm_invalid, ES.confirm_invalid
        );
        (StatusCode::NOT_FOUND, document("en", w, &body)).into_response()
    } else {
        ApiError::NotFound.into_response()
    }
}

/// The customer's email the token names (by its keyed hash), following merges.
async fn confirming(deps: &Deps, token: &str) -> Result<Option<(ConfirmToken, CustomerId, Email)>, ApiError> {
    let Some(keys) = deps.config.unsubscribe.as_ref() else {
        return Ok(None);
    };
    let Some(t) = keys.verify_confirm(token) else {
        return Ok(None);
    };
    let Some(profile) = deps.store.current_profile(&t.customer).await? else {
        return Ok(None);
    };
    let email = profile.identifiers.iter().find_map(|i| match i {
        Identifier::Email(e) if keys.address_hash(Channel::Email, e.as_str()) == t.address_hash => Some(e.clone()),
        _ => None,
    });
    Ok(email.map(|e| (t, profile.id, e)))
}

/// The confirmation page: the brand, the masked address and one button. Following the link
/// changes nothing (mail scanners follow links); the button confirms.
fn confirm_document(token: &str, brand: &str, language: &str, email: &Email, done: bool) -> Html<String> {
    let w = words(language);
    let masked = escape(&crm_core::values::mask(email.as_str()));
    let brand = escape(brand);
    let body = if done {
        format!(
            "<p class=\"brand\">{brand}</p><h1>{}</h1><p>{} {brand}: {masked}</p>",
            w.confirm_title, w.confirmed
        )
    } else {
        format!(
            "<p class=\"brand\">{brand}</p><h1>{}</h1><p>{} {brand}: {masked}</p><form method=\"post\" action=\"/confirm/{}\">\
             <button type=\"submit\">{}</button></form>",
            w.confirm_title,
            w.confirm_ask,
            escape(token),
            w.confirm_button
        )
    };
    document(language, w, &body)
}

async fn confirm_page(State(deps): State<Arc<Deps>>, headers: HeaderMap, ApiPath(token): ApiPath<String>) -> Response {
    let shown = async {
        let Some((t, _, email)) = confirming(&deps, &token).await? else {
            return Ok(invalid_confirmation(&headers));
        };
        confirm_answer(&deps, &token, &t.brand, &email, false).await
    };
    shown.await.unwrap_or_else(IntoResponse::into_response)
}

/// Confirms the address (kept once: a second confirmation changes nothing) and says so.
async fn confirm(State(deps): State<Arc<Deps>>, headers: HeaderMap, ApiPath(token): ApiPath<String>) -> Response {
    let done = async {
        let Some((t, customer, email)) = confirming(&deps, &token).await? else {
            return Ok(invalid_confirmation(&headers));
        };
        let now = OffsetDateTime::now_utc();
        if !deps
            .store
            .confirm_contact(&customer, &Identifier::Email(email.clone()), now)
            .await?
        {
            return Ok(invalid_confirmation(&headers));
        }
        tracing::info!(customer_id = %customer, brand = %t.brand, "double opt-in: address confirmed");
        confirm_answer(&deps, &token, &t.brand, &email, true).await
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// The confirmation page in the brand's name and language: asking, or `confirmed`.
async fn confirm_answer(
    deps: &Deps,
    token: &str,
    brand: &Brand,
    email: &Email,
    confirmed: bool,
) -> Result<Response, ApiError> {
    let settings = deps.catalog.settings(brand).await?;
    let page = confirm_document(
        token,
        &settings.display_name(brand),
        &settings.language,
        email,
        confirmed,
    );
    Ok(page.into_response())
}

/// What a POST asks for: the page's own form, or anything else (RFC 8058's
/// `List-Unsubscribe=One-Click`, form-encoded or multipart) as a one-click unsubscribe.
enum Ask {
    Unsubscribe { all_brands: bool, one_click: bool },
    Resubscribe,
}

fn ask(body: &[u8]) -> Ask {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("action") == Some("resubscribe") {
        return Ask::Resubscribe;
    }
    Ask::Unsubscribe {
        all_brands: get("scope") == Some("all"),
        one_click: get("scope").is_none(),
    }
}

async fn act(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    body: Bytes,
) -> Response {
    let Some(t) = deps.config.unsubscribe.as_ref().and_then(|k| k.verify(&token)) else {
        return invalid(&headers);
    };
    let now = OffsetDateTime::now_utc();
    let done = async {
        let (name, language) = brand_words(&deps, &t).await?;
        let note = match ask(&body) {
            Ask::Resubscribe => {
                resubscribe(&deps.store, &t).await?;
                Some(format!("{} {}.", words(&language).resubscribed, escape(&name)))
            }
            Ask::Unsubscribe { all_brands, one_click } => {
                let source = if one_click { "one_click" } else { "unsubscribe_page" };
                unsubscribe(&deps.store, &t, all_brands, source, now).await?;
                None
            }
        };
        let state = unsubscribed(&deps.store, &t).await?;
        Ok::<_, ApiError>(state_page(&token, &t, &name, &language, state, note))
    };
    done.await.into_response()
}
