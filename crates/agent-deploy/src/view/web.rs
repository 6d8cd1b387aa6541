//! The status view over HTTP: `GET login.py` (the form), `POST login.py` with the form's CSRF
//! token (a view session), `GET agent_update_status.py` (HTML, or JSON with
//! `?output_format=json`), `POST logout.py`.
//!
//! - Anonymous requests get no data: HTML is redirected to `login.py`, JSON answers 401.
//! - CSRF: the login form carries an HMAC of a pre-session id that is also set as a cookie;
//!   the logout form an HMAC of the session token. The HMAC key is drawn at start, so tokens
//!   die with the process, as sessions do. GET requests change nothing.
//! - A `login.py` post without a token is the updater's login (`register_agent.py` with a
//!   GUI session): it is answered as before, and its session is not accepted by the view, so
//!   a cross-site post of someone else's credentials cannot plant a view session.
//! - Cookies are `HttpOnly`, `SameSite` and, over TLS, `Secure`; every answer carries a
//!   content security policy without scripts, `no-store` and `nosniff`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Response};
use serde::Deserialize;

use super::html::{self, LoginContext, PageContext};
use super::{StatusView, VIEW_PAGE, ViewQuery};
use crate::server::{App, cookie_value, login, login_page, run_blocking, session_cookie};
use crate::store::{VIEW_SESSION_LIFETIME_SECS, generate_host_secret};
use agent_wire::{LOGIN_PAGE, LoginForm};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The CSRF key and cookie settings of one server.
pub(crate) struct ViewKeys {
    /// `None` when the system had no randomness: every token check then fails (closed).
    key: Option<ring::hmac::Key>,
    /// Cookies get `Secure` (the server speaks TLS).
    secure: bool,
}

impl ViewKeys {
    pub(crate) fn new(secure: bool) -> ViewKeys {
        let key =
            ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .ok();
        if key.is_none() {
            tracing::error!("no randomness for CSRF tokens: status view logins are refused");
        }
        ViewKeys { key, secure }
    }

    fn token(&self, purpose: &str, id: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let tag = ring::hmac::sign(key, format!("{purpose}\0{id}").as_bytes());
        Some(hex::encode(tag.as_ref()))
    }

    fn check(&self, purpose: &str, id: &str, token: &str) -> bool {
        match (&self.key, hex::decode(token)) {
            (Some(key), Ok(tag)) => {
                ring::hmac::verify(key, format!("{purpose}\0{id}").as_bytes(), &tag).is_ok()
            }
            _ => false,
        }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
    pub(crate) fn cookie(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: Option<u64>,
    ) -> String {
        let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }
}

/// The pre-session cookie of the login form.
fn pre_cookie(site: &str) -> String {
    format!("csrf_{site}")
}

fn with_security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn see_other(location: &'static str) -> Response {
    with_security_headers((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}

fn internal_error() -> Response {
    with_security_headers(
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error on the deployment server",
        )
            .into_response(),
    )
}

/// The login form with a fresh pre-session.
fn login_form(app: &App, error: Option<&str>, status: StatusCode) -> Response {
    let Ok(pre) = generate_host_secret() else {
        return internal_error();
    };
    let Some(token) = app.view.token("login", &pre) else {
        return internal_error();
    };
    let body = html::login_page(&LoginContext {
        site: &app.site,
        csrf_token: &token,
        error,
    });
    let cookie = app.view.cookie(
        &pre_cookie(&app.site),
        &pre,
        &format!("/{}/check_mk/", app.site),
        None,
    );
    with_security_headers((status, [(header::SET_COOKIE, cookie)], Html(body)).into_response())
}

fn view_user(app: &App, headers: &HeaderMap, now: SystemTime) -> Option<(String, String)> {
    let token = cookie_value(headers, &session_cookie(&app.site))?;
    let user = app.store.view_session_user(&token, now)?;
    Some((token, user))
}

/// `GET login.py`: the login form (or the view, for a live view session).
pub(crate) async fn login_get(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    if view_user(&app, &headers, SystemTime::now()).is_some() {
        return see_other(VIEW_PAGE);
    }
    login_form(&app, None, StatusCode::OK)
}

/// The `login.py` form: the updater's fields plus the view's CSRF token.
#[derive(Deserialize)]
pub(crate) struct LoginPost {
    #[serde(flatten)]
    form: LoginForm,
    #[serde(rename = "_csrf_token", default)]
    csrf: String,
}

/// `POST login.py`: with a CSRF token the view's login, without one the updater's.
pub(crate) async fn login_post(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
    form: Result<Form<LoginPost>, FormRejection>,
) -> Response {
    let post = match form {
        Ok(Form(post)) => post,
        Err(_) if site != app.site => return StatusCode::NOT_FOUND.into_response(),
        Err(_) => return login_page(),
    };
    if post.csrf.is_empty() {
        return login(State(app), UrlPath(site), Ok(Form(post.form))).await;
    }
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fresh = cookie_value(&headers, &pre_cookie(&app.site))
        .is_some_and(|pre| app.view.check("login", &pre, &post.csrf));
    if !fresh {
        return login_form(
            &app,
            Some("The login form has expired or did not come from this page. Please log in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let Ok(_slot) = app.register_slots.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let store = Arc::clone(&app.store);
    let form = post.form;
    let result = run_blocking(&app, move || {
        store.login_view(&form.username, &form.password, SystemTime::now())
    })
    .await;
    match result {
        Ok(Ok(token)) => {
            let session = app.view.cookie(
                &session_cookie(&app.site),
                token.as_str(),
                &format!("/{}/", app.site),
                Some(VIEW_SESSION_LIFETIME_SECS),
            );
            let pre = app.view.cookie(
                &pre_cookie(&app.site),
                "",
                &format!("/{}/check_mk/", app.site),
                Some(0),
            );
            with_security_headers(
                (
                    StatusCode::SEE_OTHER,
                    AppendHeaders([
                        (header::LOCATION, VIEW_PAGE.to_owned()),
                        (header::SET_COOKIE, session),
                        (header::SET_COOKIE, pre),
                    ]),
                )
                    .into_response(),
            )
        }
        Ok(Err(_)) => login_form(
            &app,
            Some("Invalid user name or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(resp) => resp,
    }
}

/// The view's URL parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ViewParams {
    q: Option<String>,
    state: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    output_format: Option<String>,
}

/// `GET agent_update_status.py`: the page, or with `?output_format=json` the JSON document.
pub(crate) async fn view_get(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
    params: Result<Form<ViewParams>, FormRejection>,
) -> Response {
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    let params = params.map(|Form(p)| p).unwrap_or_default();
    let json = params.output_format.as_deref() == Some("json");
    let now = SystemTime::now();
    let Some((token, user)) = view_user(&app, &headers, now) else {
        return if json {
            with_security_headers(
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({
                        "detail": "not logged in: log in with the form of login.py first"
                    })),
                )
                    .into_response(),
            )
        } else {
            see_other(LOGIN_PAGE)
        };
    };
    let query = ViewQuery::parse(
        params.q.as_deref(),
        params.state.as_deref(),
        params.sort.as_deref(),
        params.dir.as_deref(),
    );
    let store = Arc::clone(&app.store);
    let view = match run_blocking(&app, move || StatusView::build(&store, query, now)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!("status view: {e}");
            return internal_error();
        }
        Err(resp) => return resp,
    };
    if json {
        return with_security_headers(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                view.to_json(),
            )
                .into_response(),
        );
    }
    let Some(csrf) = app.view.token("session", &token) else {
        return internal_error();
    };
    let body = html::page(
        &view,
        &PageContext {
            user: &user,
            csrf_token: &csrf,
        },
    );
    with_security_headers((StatusCode::OK, Html(body)).into_response())
}

/// The logout form.
#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(rename = "_csrf_token", default)]
    csrf: String,
}

/// `POST logout.py` with the session's CSRF token: ends the session.
pub(crate) async fn logout_post(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let token = cookie_value(&headers, &session_cookie(&app.site));
    match token {
        Some(t) if app.view.check("session", &t, &csrf) => {
            app.store.logout(&t);
            let gone = app.view.cookie(
                &session_cookie(&app.site),
                "",
                &format!("/{}/", app.site),
                Some(0),
            );
            with_security_headers(
                (
                    StatusCode::SEE_OTHER,
                    AppendHeaders([
                        (header::LOCATION, LOGIN_PAGE.to_owned()),
                        (header::SET_COOKIE, gone),
                    ]),
                )
                    .into_response(),
            )
        }
        _ => with_security_headers(
            (
                StatusCode::FORBIDDEN,
                "logout refused: the form's CSRF token is missing or does not fit the session",
            )
                .into_response(),
        ),
    }
}
