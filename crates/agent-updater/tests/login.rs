//! Registration with a GUI login session (Checkmk 2.2-2.4 `register -P`, spec section 3.1):
//! `login.py` with `_login=1`, `_username`, `_password`, then `register_agent.py` with the
//! session cookie instead of `_secret`.

use std::time::{Duration, SystemTime};

use agent_deploy::SESSION_LIFETIME_SECS;
use agent_updater::{RegisterOptions, UpdateError};
use zeroize::Zeroizing;

use crate::support::{
    SITE, TestHost, TestServer, USER, USER_SECRET, host_status, https_config, register_options,
};

#[test]
fn register_with_a_gui_session() {
    let srv = TestServer::start();
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[]);
    let up = host.updater(std::sync::Arc::new(
        agent_updater::AgentSignVerifier::checkmk(),
    ));
    // Wrong password: the login page comes back -> "Cannot authenticate", nothing saved.
    let wrong = RegisterOptions {
        secret: Zeroizing::new("wrong password".into()),
        gui_login: true,
        ..register_options(srv.server(), "web01")
    };
    let err = up.register(&wrong).unwrap_err();
    assert!(matches!(err, UpdateError::CannotAuthenticate), "{err:?}");
    assert!(!up.paths().state_file.exists());

    // The right password: logged in, registered with the session.
    let opts = RegisterOptions {
        gui_login: true,
        ..register_options(srv.server(), "web01")
    };
    up.register(&opts).unwrap();
    let state = host.state();
    assert!(state.contains("'host_secret': '"), "{state}");
    assert!(!state.contains(USER_SECRET), "the password is never stored");
    let status = host_status(&srv.store, "web01");
    assert_eq!(status.registered_by.as_deref(), Some(USER));
}

#[test]
fn login_page_cookie_and_session_expiry_on_the_wire() {
    let srv = TestServer::start();
    // No redirects: the 302 of a successful login is what we look at.
    let agent = https_config(&srv.pki.ca_pem)
        .max_redirects(0)
        .build()
        .new_agent();
    let post = |page: &str, body: &str, cookie: Option<&str>| {
        let mut req = agent
            .post(format!("{}/{page}", srv.base()))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send(body.as_bytes()).unwrap();
        let status = resp.status().as_u16();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.into_body().read_to_string().unwrap();
        (status, set_cookie, text)
    };
    let login = format!("_login=1&_username={USER}&_password=wrong");
    let (status, cookie, text) = post("login.py", &login, None);
    assert_eq!((status, cookie), (200, None));
    assert!(
        text.contains("login.py") && text.contains("_login"),
        "{text}"
    );

    let login = format!(
        "_login=1&_username={USER}&_password={}",
        USER_SECRET.replace(' ', "+")
    );
    let (status, cookie, _) = post("login.py", &login, None);
    assert_eq!(status, 302);
    let cookie = cookie.unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let token = pair
        .strip_prefix(&format!("auth_{SITE}="))
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 64);
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // A made-up session gets the login page; the real one registers.
    let bogus = format!("auth_{SITE}={}", "x".repeat(64));
    let (status, _, text) = post("register_agent.py", "host=web01&au_api=2", Some(&bogus));
    assert_eq!(status, 200);
    assert!(text.contains("login.py"), "{text}");
    let (status, _, text) = post("register_agent.py", "host=web01&au_api=2", Some(&pair));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["result_code"], 0, "{v}");
    assert_eq!(v["result"]["host_secret"].as_str().unwrap().len(), 64);

    // Sessions expire.
    let now = SystemTime::now();
    assert_eq!(srv.store.session_user(&token, now).as_deref(), Some(USER));
    let later = now + Duration::from_secs(SESSION_LIFETIME_SECS + 1);
    assert_eq!(srv.store.session_user(&token, later), None);
}
