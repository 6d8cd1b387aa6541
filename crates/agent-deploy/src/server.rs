//! The HTTP(S) front of the deployment server: axum routes under `/<site>/check_mk/`, a hyper
//! HTTP/1.1 accept loop with rustls (ring), limits, timeouts and a graceful shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::store::{DeployAnswer, DeployStore, ServerError};
use agent_wire::{
    DEPLOY_PAGE, DOWNLOAD_AGENT_PAGE, DeployForm, DeployMode, DownloadAgentRequest, Envelope,
    LOGIN_PAGE, LoginForm, RECEIVER_PREFIX, REGISTER_PAGE, RegisterForm, TargetAgent,
    UPDATE_STATUS_PAGE, UpdateStatusRequest, UpdateStatusResponse,
};

/// Limits and timeouts of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body (form posts are small).
    pub max_body_bytes: usize,
    /// Time allowed for a request's headers.
    pub header_read_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for one request, from the end of its headers to the response (body
    /// upload included).
    pub request_timeout: Duration,
    /// Concurrent connections. When all are taken, the oldest connection without a request in
    /// progress (TLS handshake, headers not yet complete, or idle between requests) is closed to
    /// make room, so idle and slow clients cannot lock well-behaved ones out; only when every
    /// connection is busy do further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Time a response may make no progress (a client that stops reading) before its
    /// connection is closed.
    pub send_timeout: Duration,
    /// Bytes of package answers (downloads) held in memory at once, from the moment an answer
    /// is built until its last chunk is handed to the connection. A download beyond it is
    /// answered 503 (the updater tries again at its next run), so that clients that never
    /// read their downloads cannot exhaust the server's memory.
    pub max_answer_bytes: usize,
    /// How often contact times are written to the status files.
    pub flush_interval: Duration,
    /// How long a shutdown waits for open connections.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 4096,
            send_timeout: Duration::from_secs(30),
            max_answer_bytes: 256 * 1024 * 1024,
            flush_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Configuration of [`serve`] and [`spawn`].
#[derive(Clone)]
pub struct ServerOptions {
    /// The site name: URLs are `/<site>/check_mk/<page>`.
    pub site: String,
    /// Limits and timeouts.
    pub limits: Limits,
    /// TLS configuration; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("site", &self.site)
            .field("limits", &self.limits)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Loads a certificate chain and private key (PEM files) into a rustls server configuration
/// (ring provider, TLS 1.2 and 1.3, HTTP/1.1).
pub fn load_tls(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let tls_err = |path: &Path, reason: String| ServerError::Tls {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| tls_err(cert_path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(cert_path, "no certificate found".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| tls_err(key_path, e.to_string()))?;
    tls_config(certs, key).map_err(|reason| tls_err(cert_path, reason))
}

/// Builds a rustls server configuration from DER certificates and a key.
pub fn tls_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Loads a server certificate chain and key plus the CA (PEM) that issues the hosts' client
/// certificates: the server asks for a client certificate (mTLS) and, when one is presented,
/// identifies the host by its subject CN ([`ClientHost`]) for the 2.5 API. Connections without
/// a client certificate are still accepted for the legacy, host-secret protocol.
pub fn load_mtls(
    cert_path: &Path,
    key_path: &Path,
    client_ca_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let tls_err = |path: &Path, reason: String| ServerError::Tls {
        path: path.to_owned(),
        reason,
    };
    let read_certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, ServerError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| tls_err(path, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| tls_err(path, e.to_string()))?;
        if certs.is_empty() {
            return Err(tls_err(path, "no certificate found".into()));
        }
        Ok(certs)
    };
    let certs = read_certs(cert_path)?;
    let client_roots = read_certs(client_ca_path)?;
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| tls_err(key_path, e.to_string()))?;
    mtls_config(certs, key, client_roots).map_err(|reason| tls_err(client_ca_path, reason))
}

/// Like [`tls_config`], but asks for a client certificate issued by one of `client_roots`
/// (optional, so that legacy updaters can still connect).
pub fn mtls_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in client_roots {
        roots.add(c).map_err(|e| format!("client CA: {e}"))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("client CA: {e}"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The host a verified TLS client certificate authenticates: its subject CN. Set as a request
/// extension by [`serve`]; the 2.5 API answers only requests that carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHost(pub String);

pub(crate) struct App {
    pub(crate) store: Arc<DeployStore>,
    pub(crate) site: String,
    request_timeout: Duration,
    /// Registrations hash the user's secret with many PBKDF2 rounds: at most this many run at
    /// once, so that a flood of registrations cannot starve the status checks.
    pub(crate) register_slots: Semaphore,
    /// Package answers are built (package read, encoded) by at most this many requests at once.
    download_slots: Semaphore,
    /// [`Limits::max_answer_bytes`] in KiB.
    answer_budget: Arc<Semaphore>,
    answer_budget_kib: u32,
    /// The status view's CSRF key and cookie settings.
    pub(crate) view: crate::view::web::ViewKeys,
}

/// Concurrent registrations (see [`App::register_slots`]).
const REGISTER_CONCURRENCY: usize = 2;

/// Concurrent package answers being built (see [`App::download_slots`]).
const DOWNLOAD_CONCURRENCY: usize = 4;

/// A package answer is handed to the connection in chunks of this size.
const ANSWER_CHUNK_BYTES: usize = 64 * 1024;

/// A package answer with its share of the answer budget, released when its last chunk has
/// been handed to the connection or the connection is dropped.
struct BudgetedBody {
    bytes: axum::body::Bytes,
    permit: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for BudgetedBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.bytes.is_empty() {
            this.permit = None;
            return Poll::Ready(None);
        }
        let chunk = this
            .bytes
            .split_to(this.bytes.len().min(ANSWER_CHUNK_BYTES));
        if this.bytes.is_empty() {
            this.permit = None;
        }
        Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.bytes.len() as u64)
    }
}

impl App {
    /// Runs `build` (which reads and encodes a package) in one of the download slots, then
    /// answers its bytes within the answer budget: 503 when the budget is spent.
    async fn package_answer(
        &self,
        content_type: &'static str,
        build: impl std::future::Future<Output = Result<Vec<u8>, Response>>,
    ) -> Response {
        let bytes = {
            let Ok(_slot) = self.download_slots.acquire().await else {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            };
            match build.await {
                Ok(b) => b,
                Err(resp) => return resp,
            }
        };
        let kib = u32::try_from(bytes.len().div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.answer_budget_kib);
        let Ok(permit) = Arc::clone(&self.answer_budget).try_acquire_many_owned(kib) else {
            tracing::warn!("answer budget spent: download refused with 503");
            return envelope(
                StatusCode::SERVICE_UNAVAILABLE,
                Envelope::error("the deployment server is busy; try again later"),
            );
        };
        let body = BudgetedBody {
            bytes: bytes.into(),
            permit: Some(permit),
        };
        (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, content_type)],
            axum::body::Body::new(body),
        )
            .into_response()
    }
}

/// How often a running server expires registrations of hosts in no site (and once at start).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

/// The axum router: `POST /<site>/check_mk/register_agent.py` and `…/deploy_agent.py`, the
/// 2.5 API, and the status view (`GET …/agent_update_status.py`, `GET`/`POST …/login.py`,
/// `POST …/logout.py`; see [`view`](crate::view)). Its cookies are not marked `Secure`
/// ([`serve`] marks them when it speaks TLS).
pub fn router(store: Arc<DeployStore>, site: &str, limits: &Limits) -> Router {
    router_with(store, site, limits, false)
}

fn router_with(store: Arc<DeployStore>, site: &str, limits: &Limits, tls: bool) -> Router {
    let answer_budget_kib = u32::try_from(limits.max_answer_bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
    let app = Arc::new(App {
        store,
        site: site.to_owned(),
        request_timeout: limits.request_timeout,
        register_slots: Semaphore::new(REGISTER_CONCURRENCY),
        download_slots: Semaphore::new(DOWNLOAD_CONCURRENCY),
        answer_budget: Arc::new(Semaphore::new(answer_budget_kib as usize)),
        answer_budget_kib,
        view: crate::view::web::ViewKeys::new(tls),
    });
    Router::new()
        .route(
            &format!("/{{site}}/check_mk/{REGISTER_PAGE}"),
            post(register),
        )
        .route(&format!("/{{site}}/check_mk/{DEPLOY_PAGE}"), post(deploy))
        .route(
            &format!("/{{site}}/check_mk/{LOGIN_PAGE}"),
            post(crate::view::web::login_post).get(crate::view::web::login_get),
        )
        .route(
            &format!("/{{site}}/check_mk/{}", crate::view::VIEW_PAGE),
            get(crate::view::web::view_get),
        )
        .route(
            &format!("/{{site}}/check_mk/{}", crate::view::LOGOUT_PAGE),
            post(crate::view::web::logout_post),
        )
        .route(
            &format!("/{{site}}/{RECEIVER_PREFIX}/{UPDATE_STATUS_PAGE}"),
            post(update_status),
        )
        .route(
            &format!("/{{site}}/{RECEIVER_PREFIX}/{DOWNLOAD_AGENT_PAGE}"),
            post(download_agent),
        )
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            request_deadline,
        ))
}

/// The whole request, including reading the body, must finish within `limit` (no slow bodies).
async fn request_deadline(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => envelope(
            StatusCode::REQUEST_TIMEOUT,
            Envelope::error("request timed out"),
        ),
    }
}

fn envelope(status: StatusCode, env: Envelope) -> Response {
    (status, Json(env)).into_response()
}

pub(crate) async fn run_blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<Result<T, ServerError>, Response> {
    let task = tokio::task::spawn_blocking(f);
    match tokio::time::timeout(app.request_timeout, task).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            Envelope::error("internal error"),
        )),
        Err(_) => Err(envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            Envelope::error("request timed out"),
        )),
    }
}

fn error_envelope(e: &ServerError) -> Response {
    match e {
        ServerError::Io { .. }
        | ServerError::Corrupt { .. }
        | ServerError::Tls { .. }
        | ServerError::Bakery(_) => {
            tracing::error!("{e}");
            envelope(
                StatusCode::OK,
                Envelope::error("internal error on the deployment server"),
            )
        }
        _ => {
            tracing::info!("refused: {e}");
            envelope(StatusCode::OK, Envelope::error(e.to_string()))
        }
    }
}

/// 413 for oversized bodies, 415 for a wrong content type, 400 otherwise; always an envelope.
fn rejected(rejection: &FormRejection, what: &str) -> Response {
    let status = match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    envelope(
        status,
        Envelope::error(format!(
            "malformed {what} request: {}",
            rejection.body_text()
        )),
    )
}

/// The login page a failed login answers with (Checkmk's updater detects `login.py`/`_login`
/// in a non-JSON answer and reports "Cannot authenticate").
const LOGIN_FAILED_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Checkmk</title></head><body>\n\
<div id=\"login_error\">Invalid credentials.</div>\n\
<form method=\"POST\" action=\"login.py\"><input type=\"hidden\" name=\"_login\" value=\"1\">\
<input name=\"_username\"><input type=\"password\" name=\"_password\"></form>\n</body></html>\n";

pub(crate) fn login_page() -> Response {
    (StatusCode::OK, axum::response::Html(LOGIN_FAILED_PAGE)).into_response()
}

/// The session cookie's name: `auth_<site>`.
pub(crate) fn session_cookie(site: &str) -> String {
    format!("auth_{site}")
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `login.py`: a GUI login with `_login=1`, `_username`, `_password`. Success: 302 to
/// `index.py` with the session cookie; failure: the login page again (200, HTML).
pub(crate) async fn login(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(Form(form)) = form else {
        return login_page();
    };
    if let Some(relay) = app.store.relay().map(Arc::clone) {
        return match run_blocking(&app, move || Ok(relay.login(&form))).await {
            Ok(Ok(Ok(raw))) => relayed_page(raw),
            Ok(Ok(Err(e))) => {
                tracing::warn!("relay: {e}");
                (StatusCode::BAD_GATEWAY, e.to_string()).into_response()
            }
            Ok(Err(e)) => error_envelope(&e),
            Err(resp) => resp,
        };
    }
    let Ok(_slot) = app.register_slots.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let store = Arc::clone(&app.store);
    let result = run_blocking(&app, move || {
        if form.login != "1" {
            return Err(ServerError::UserAuth {
                user: form.username.clone(),
            });
        }
        store.login(&form.username, &form.password, SystemTime::now())
    })
    .await;
    match result {
        Ok(Ok(token)) => {
            let cookie = app.view.cookie(
                &session_cookie(&app.site),
                token.as_str(),
                &format!("/{}/", app.site),
                None,
            );
            (
                StatusCode::FOUND,
                [
                    (axum::http::header::LOCATION, "index.py".to_owned()),
                    (axum::http::header::SET_COOKIE, cookie),
                ],
            )
                .into_response()
        }
        Ok(Err(_)) => login_page(),
        Err(resp) => resp,
    }
}

async fn register(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    headers: axum::http::HeaderMap,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return rejected(&rejection, "registration"),
    };
    if let Some(relay) = app.store.relay().map(Arc::clone) {
        let cookie = headers
            .get(axum::http::header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        return match run_blocking(&app, move || Ok(relay.register(&form, cookie.as_deref()))).await
        {
            Ok(Ok(crate::relay::RelayAnswer::Page(html))) => (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Ok(Ok(crate::relay::RelayAnswer::Envelope(env))) => envelope(StatusCode::OK, env),
            Ok(Ok(crate::relay::RelayAnswer::Package(_))) => envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                Envelope::error("internal error"),
            ),
            Ok(Err(e)) => error_envelope(&e),
            Err(resp) => resp,
        };
    }
    // A GUI session (`login.py` first) instead of automation credentials.
    if form.secret.is_empty()
        && let Some(token) = cookie_value(&headers, &session_cookie(&app.site))
    {
        let store = Arc::clone(&app.store);
        return match run_blocking(&app, move || {
            store.register_with_session(&form, &token, SystemTime::now())
        })
        .await
        {
            Ok(Ok(result)) => envelope(StatusCode::OK, Envelope::ok(&result)),
            // Like the GUI: an invalid or expired session gets the login page.
            Ok(Err(ServerError::UserAuth { .. })) => login_page(),
            Ok(Err(e)) => error_envelope(&e),
            Err(resp) => resp,
        };
    }
    let Ok(_slot) = app.register_slots.acquire().await else {
        return envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            Envelope::error("shutting down"),
        );
    };
    let store = Arc::clone(&app.store);
    match run_blocking(&app, move || store.register(&form, SystemTime::now())).await {
        Ok(Ok(result)) => envelope(StatusCode::OK, Envelope::ok(&result)),
        Ok(Err(e)) => error_envelope(&e),
        Err(resp) => resp,
    }
}

async fn deploy(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    headers: axum::http::HeaderMap,
    form: Result<Form<DeployForm>, FormRejection>,
) -> Response {
    if site != app.site {
        return StatusCode::NOT_FOUND.into_response();
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return rejected(&rejection, "deployment"),
    };
    if let Some(relay) = app.store.relay().map(Arc::clone) {
        return relay_deploy(&app, relay, form).await;
    }
    let store = Arc::clone(&app.store);
    let for_relay = headers.contains_key(crate::relay::RELAY_SITE_HEADER);
    let answer = move |store: Arc<DeployStore>, form: DeployForm| {
        if for_relay {
            store.deploy_for_relay(&form, SystemTime::now())
        } else {
            store.deploy(&form, SystemTime::now())
        }
    };
    if form.mode == DeployMode::Agent {
        let build = async {
            match run_blocking(&app, move || answer(store, form)).await {
                Ok(Ok(env)) => serde_json::to_vec(&env).map_err(|_| {
                    envelope(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Envelope::error("internal error"),
                    )
                }),
                Ok(Err(e)) => Err(error_envelope(&e)),
                Err(resp) => Err(resp),
            }
        };
        return app.package_answer("application/json", build).await;
    }
    match run_blocking(&app, move || answer(store, form)).await {
        Ok(Ok(env)) => envelope(StatusCode::OK, env),
        Ok(Err(e)) => error_envelope(&e),
        Err(resp) => resp,
    }
}

/// The central's login answer, passed on: status, redirect, session cookies and page.
fn relayed_page(raw: crate::relay::RawAnswer) -> Response {
    let status = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = (status, raw.body).into_response();
    let headers = resp.headers_mut();
    let location: Vec<String> = raw.location.into_iter().collect();
    for (name, values) in [
        (axum::http::header::LOCATION, location),
        (axum::http::header::SET_COOKIE, raw.set_cookie),
    ] {
        for v in values {
            if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                headers.append(name.clone(), v);
            }
        }
    }
    resp
}

/// `deploy_agent.py` in relay mode ([`crate::relay::Relay::deploy`], off the runtime).
async fn relay_deploy(app: &App, relay: Arc<crate::relay::Relay>, form: DeployForm) -> Response {
    use crate::relay::RelayAnswer;
    let mode = form.mode;
    let call = run_blocking(app, move || Ok(relay.deploy(&form)));
    if mode == DeployMode::Agent {
        let build = async {
            match call.await {
                Ok(Ok(RelayAnswer::Package(bytes))) => Ok(bytes),
                Ok(Ok(RelayAnswer::Envelope(env))) => Err(envelope(StatusCode::OK, env)),
                Ok(Ok(RelayAnswer::Page(_))) => Err(envelope(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Envelope::error("internal error"),
                )),
                Ok(Err(e)) => Err(error_envelope(&e)),
                Err(resp) => Err(resp),
            }
        };
        return app.package_answer("application/json", build).await;
    }
    match call.await {
        Ok(Ok(RelayAnswer::Envelope(env))) => envelope(StatusCode::OK, env),
        Ok(Ok(RelayAnswer::Package(_) | RelayAnswer::Page(_))) => envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            Envelope::error("internal error"),
        ),
        Ok(Err(e)) => error_envelope(&e),
        Err(resp) => resp,
    }
}

fn detail(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "detail": text.into() }))).into_response()
}

/// Runs a 2.5 API call for the host of the client certificate.
async fn receiver_call(
    app: &App,
    site: &str,
    host: Result<axum::Extension<ClientHost>, axum::extract::rejection::ExtensionRejection>,
    form: DeployForm,
) -> Result<DeployAnswer, Response> {
    if site != app.site {
        return Err(StatusCode::NOT_FOUND.into_response());
    }
    let Ok(axum::Extension(ClientHost(host))) = host else {
        return Err(detail(
            StatusCode::UNAUTHORIZED,
            "a TLS client certificate is required",
        ));
    };
    let store = Arc::clone(&app.store);
    let h = host.clone();
    match run_blocking(app, move || {
        store.deploy_authenticated(&h, &form, SystemTime::now())
    })
    .await
    {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e @ ServerError::NoSuchAgent { .. })) => {
            Err(detail(StatusCode::NOT_FOUND, e.to_string()))
        }
        Ok(Err(e @ ServerError::Refused(_))) => Err(detail(StatusCode::FORBIDDEN, e.to_string())),
        Ok(Err(
            e @ (ServerError::Io { .. } | ServerError::Corrupt { .. } | ServerError::Bakery(_)),
        )) => {
            tracing::error!(%host, "{e}");
            Err(detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error on the deployment server",
            ))
        }
        Ok(Err(e)) => Err(detail(StatusCode::BAD_REQUEST, e.to_string())),
        Err(resp) => Err(resp),
    }
}

fn receiver_form(
    mode: DeployMode,
    platform: String,
    installed: String,
    aghash: String,
    last_error: String,
) -> DeployForm {
    DeployForm {
        mode,
        host: String::new(),
        host_secret: String::new(),
        installed_aghash: installed,
        aghash,
        os: platform,
        last_error,
        au_api: String::new(),
    }
}

/// 2.5 API: `update_status` for the host of the client certificate.
async fn update_status(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    host: Result<axum::Extension<ClientHost>, axum::extract::rejection::ExtensionRejection>,
    body: Result<Json<UpdateStatusRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return detail(e.status(), e.body_text()),
    };
    let form = receiver_form(
        DeployMode::Status,
        req.platform,
        req.installed_aghash.unwrap_or_default(),
        String::new(),
        req.last_error.unwrap_or_default(),
    );
    match receiver_call(&app, &site, host, form).await {
        Ok(DeployAnswer::Status(st)) => {
            let target_agent = match (st.agent_available, st.target_hash) {
                (true, Some(aghash)) => Some(TargetAgent {
                    aghash,
                    signatures: st.signatures,
                    target_metadata: st.target_metadata,
                    root_metadata: st.root_metadata,
                }),
                _ => None,
            };
            Json(UpdateStatusResponse { target_agent }).into_response()
        }
        Ok(DeployAnswer::Agent(_)) => detail(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Err(resp) => resp,
    }
}

/// 2.5 API: `download_agent` for the host of the client certificate; the body is the package.
async fn download_agent(
    State(app): State<Arc<App>>,
    UrlPath(site): UrlPath<String>,
    host: Result<axum::Extension<ClientHost>, axum::extract::rejection::ExtensionRejection>,
    body: Result<Json<DownloadAgentRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return detail(e.status(), e.body_text()),
    };
    let form = receiver_form(
        DeployMode::Agent,
        req.platform,
        String::new(),
        req.aghash,
        String::new(),
    );
    let build = async {
        match receiver_call(&app, &site, host, form).await {
            Ok(DeployAnswer::Agent(bytes)) => Ok(bytes),
            Ok(DeployAnswer::Status(_)) => {
                Err(detail(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
            }
            Err(resp) => Err(resp),
        }
    };
    app.package_answer("application/octet-stream", build).await
}

/// What the accept loop knows of one open connection.
#[derive(Default)]
struct ConnState {
    /// Requests whose handler is running (headers complete, answer not yet produced).
    busy: AtomicUsize,
    /// Set once the connection was chosen to be closed.
    closing: AtomicBool,
    /// Wakes the connection's task to close it.
    close: Notify,
}

/// The open connections, oldest first: when every slot is taken, the oldest one without a
/// request in progress is closed to make room (nginx closes idle keep-alive connections the
/// same way), so that idle, slow or half-open clients cannot lock well-behaved ones out.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: std::sync::Mutex<BTreeMap<u64, Arc<ConnState>>>,
}

impl Connections {
    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnState>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>) -> OpenConnection {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::default());
        self.open().insert(id, Arc::clone(&state));
        OpenConnection {
            id,
            state,
            connections: Arc::clone(self),
        }
    }

    /// Asks the oldest connection without a request in progress to close; false when every
    /// connection is busy.
    fn close_oldest_idle(&self) -> bool {
        let open = self.open();
        for state in open.values() {
            if state.busy.load(Ordering::Acquire) == 0
                && !state.closing.swap(true, Ordering::AcqRel)
            {
                state.close.notify_one();
                return true;
            }
        }
        false
    }
}

/// A registered connection; unregisters itself when dropped.
struct OpenConnection {
    id: u64,
    state: Arc<ConnState>,
    connections: Arc<Connections>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.connections.open().remove(&self.id);
    }
}

/// Marks its connection busy while a request's handler runs.
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(state: &Arc<ConnState>) -> Busy {
        state.busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(state))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hyper service that marks its connection [`Busy`] while a request is handled.
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        let busy = Busy::new(&self.state);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let _busy = busy;
            answer.await
        })
    }
}

/// A stream whose writes fail once they have made no progress for `limit` (a client that
/// stops reading its answer, e.g. a download, must not hold the connection and the
/// answer's memory for ever).
struct SendTimeout<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> SendTimeout<T> {
    fn new(inner: T, limit: Duration) -> SendTimeout<T> {
        SendTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Called when a write is pending: an error once the stall has lasted `limit`.
    fn stall<U>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<U>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<U>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<U>>) -> Poll<io::Result<U>> {
        match r {
            Poll::Pending => self.stall(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, r)
    }
}

/// Serves until `shutdown` completes, then stops accepting, waits up to
/// `limits.shutdown_grace` for open connections and writes pending status changes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<DeployStore>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = options.limits.clone();
    let app = router_with(
        Arc::clone(&store),
        &options.site,
        &limits,
        options.tls.is_some(),
    );
    let acceptor = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = Arc::new(Connections::default());
    let flusher = {
        let store = Arc::clone(&store);
        let every = limits.flush_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let store = Arc::clone(&store);
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.flush()).await {
                    tracing::error!("writing host status: {e}");
                }
            }
        })
    };
    let housekeeping = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            loop {
                tick.tick().await;
                let store = Arc::clone(&store);
                let expired = tokio::task::spawn_blocking(move || {
                    store.expire_abandoned(SystemTime::now(), false)
                })
                .await;
                if let Ok(Err(e)) = expired {
                    tracing::error!("expiring registrations of hosts in no site: {e}");
                }
            }
        })
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !connections.close_oldest_idle() {
                    tracing::warn!(
                        "all {} connections are busy; waiting",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    p = Arc::clone(&slots).acquire_owned() => p.map_err(io::Error::other)?,
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = SendTimeout::new(stream, limits.send_timeout);
        let conn = connections.register();
        let conn_state = Arc::clone(&conn.state);
        let tracked = move |svc| Tracked {
            inner: TowerToHyperService::new(svc),
            state: Arc::clone(&conn_state),
        };
        let svc = tracked(app.clone());
        let app = app.clone();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(64 * 1024);
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let handshake_timeout = limits.handshake_timeout;
        let serve_connection = async move {
            let result = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let host = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| agent_wire::certificate_host_name(c));
                            let svc = match host {
                                Some(h) => {
                                    tracing::debug!(%peer, host = %h, "client certificate");
                                    tracked(app.layer(axum::Extension(ClientHost(h))))
                                }
                                None => svc,
                            };
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(tls), svc))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), svc))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection: {e}");
            }
        };
        tokio::spawn(async move {
            let _permit = permit;
            let state = Arc::clone(&conn.state);
            tokio::select! {
                () = state.close.notified() => {
                    tracing::debug!(%peer, "closed to make room for a new connection");
                }
                () = serve_connection => {}
            }
            drop(conn);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => tracing::warn!("shutdown: closing open connections"),
    }
    flusher.abort();
    housekeeping.abort();
    let store2 = Arc::clone(&store);
    match tokio::task::spawn_blocking(move || store2.flush()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(io::Error::other(e.to_string())),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// A server running on its own thread and runtime (for tests, load tests and embedding).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for it.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Binds `addr` and serves on a new thread with a `worker_threads` runtime.
pub fn spawn(
    store: Arc<DeployStore>,
    options: ServerOptions,
    addr: SocketAddr,
    worker_threads: usize,
) -> io::Result<ServerHandle> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .enable_all()
        .thread_name("agent-deploy")
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("agent-deploy-server".into())
        .spawn(move || {
            rt.block_on(serve(listener, store, options, async move {
                let _ = rx.await;
            }))
        })?;
    Ok(ServerHandle {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    })
}
