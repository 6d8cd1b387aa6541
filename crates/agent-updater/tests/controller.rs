//! The 2.5 mode (requirement 28) end to end over loopback: a test CA issues the server's and
//! the hosts' client certificates; the server's mTLS listener identifies the host by the
//! certificate's CN, the updater needs no registration and no secret.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_deploy::{Advertise, DeployStore, Limits, ServerHandle, package_hash};
use agent_sign::Clock;
use agent_updater::{
    AgentSignVerifier, ControllerPaths, ControllerState, Mode, ReceiverConnection, RunOptions,
    UpdateError, UpdateOutcome, Updater, VerifyError, read_agent_info,
};
use agent_wire::{RatingMode, RatingParams, Section, State, rate_section};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::support::{
    SITE, SigningKey, TestClock, host_status, https_agent, installed_file_in, publish_signed,
    section_json, spawn_https, updater_installing_into,
};

/// A CA that issues the server certificate and client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: rustls_pki_types::CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} site CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate with CN `cn` (and SANs); returns (cert PEM, key PEM, cert DER, key DER).
    fn issue(&self, cn: &str, sans: &[&str]) -> (String, String, rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert, key)
    }
}

struct MtlsServer {
    _dir: tempfile::TempDir,
    store: Arc<DeployStore>,
    handle: ServerHandle,
    ca: Ca,
}

impl MtlsServer {
    fn start() -> MtlsServer {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).unwrap());
        let ca = Ca::new("receiver");
        let (_, _, cert, key) = ca.issue("localhost", &["localhost", "127.0.0.1"]);
        let tls = agent_deploy::mtls_config(
            vec![cert.der().clone(), ca.der.clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            vec![ca.der.clone()],
        )
        .unwrap();
        let handle = spawn_https(&store, Limits::default(), tls);
        MtlsServer {
            _dir: dir,
            store,
            handle,
            ca,
        }
    }

    fn base(&self) -> String {
        format!(
            "https://127.0.0.1:{}/{SITE}/agent-receiver",
            self.handle.local_addr().port()
        )
    }
}

/// A 2.5 host: the controller's client certificate from `ca`, a TOML config, the JSON state.
struct Host {
    conf: tempfile::TempDir,
    var: tempfile::TempDir,
    conn: ReceiverConnection,
    clock: Arc<TestClock>,
}

impl Host {
    fn new(srv: &MtlsServer, issuing_ca: &Ca, cn: &str, keys: &[&str], activated: bool) -> Host {
        let conf = tempfile::tempdir().unwrap();
        let var = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem, _, _) = issuing_ca.issue(cn, &[]);
        let write = |name: &str, text: &str| {
            let p = conf.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let conn = ReceiverConnection {
            base_url: srv.base(),
            client_cert: write("client.pem", &cert_pem),
            client_key: write("client.key", &key_pem),
            server_ca: write("site-ca.pem", &srv.ca.pem),
        };
        let toml = format!(
            "activated = {activated}\ninterval = 600\nsignature_keys = {}\nunknown_future_key = \"x\"\n",
            serde_json::to_string(keys).unwrap()
        );
        write("cmk-update-agent.toml", &toml);
        Host {
            conf,
            var,
            conn,
            clock: TestClock::new(),
        }
    }

    fn files(&self) -> ControllerPaths {
        ControllerPaths::in_dirs(self.conf.path(), self.var.path())
    }

    fn installed(&self) -> std::path::PathBuf {
        installed_file_in(self.var.path())
    }

    fn updater(&self) -> Updater {
        let mut paths = agent_updater::Paths::in_dirs(self.conf.path(), self.var.path());
        paths.lock_file = self.var.path().join("cmk-update-agent").join("lock");
        updater_installing_into(
            self.var.path(),
            paths,
            Arc::new(AgentSignVerifier::checkmk()),
            &self.clock,
        )
    }

    fn run(&self) -> Result<UpdateOutcome, UpdateError> {
        self.updater()
            .run_controller(&self.files(), &self.conn, &RunOptions::new(Mode::Plugin))
    }
}

fn state_keys(path: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn mtls_update_identifies_the_host_by_its_client_certificate() {
    let srv = MtlsServer::start();
    let key = SigningKey::new("signature");
    let pkg1 = b"agent for web01 v1".to_vec();
    let pkg2 = b"agent for web02".to_vec();
    publish_signed(&srv.store, "web01", &pkg1, &[&key], None).unwrap();
    publish_signed(&srv.store, "web02", &pkg2, &[&key], None).unwrap();

    // web01: no registration, no secret; the certificate says who it is.
    let host = Host::new(&srv, &srv.ca, "web01", &[&key.cert_pem], true);
    let outcome = host.run().unwrap();
    assert_eq!(
        outcome,
        UpdateOutcome::Installed {
            hash: package_hash(&pkg1),
            signature: Some(1)
        }
    );
    assert_eq!(std::fs::read(host.installed()).unwrap(), pkg1);
    let info = read_agent_info(&host.files().agent_info_file)
        .unwrap()
        .unwrap();
    assert_eq!(info.hash, package_hash(&pkg1));
    assert_eq!(info.platform, "linux_deb");
    let state_file = host.files().state_file;
    assert!(state_file.ends_with("cmk-update-agent/cmk-update-agent.state"));
    assert_eq!(
        state_keys(&state_file),
        ["last_check", "last_error", "last_update", "pending_hash"]
    );
    assert_eq!(
        std::fs::metadata(&state_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let state = ControllerState::load(&state_file).unwrap();
    assert_eq!(state.last_check, Some(host.clock.now() as u64));
    assert_eq!(state.last_update, Some(host.clock.now() as u64));
    // The server recorded the contact under the certificate's host name.
    let status = host_status(&srv.store, "web01");
    assert_eq!(status.downloaded_aghash, Some(package_hash(&pkg1)));

    // Second run: already installed; the server learns the installed hash.
    assert_eq!(
        host.run().unwrap(),
        UpdateOutcome::AlreadyInstalled {
            hash: package_hash(&pkg1)
        }
    );
    srv.store.flush().unwrap();
    let status = host_status(&srv.store, "web01");
    assert_eq!(status.installed_aghash, Some(package_hash(&pkg1)));

    // The section from the 2.5 files carries the host name and rates OK in 2.5 mode.
    let up = host.updater();
    let (_, section) =
        up.run_controller_and_record(&host.files(), &host.conn, &RunOptions::new(Mode::Plugin));
    let sec = section_json(&section);
    assert_eq!(sec["host_name"], "web01");
    assert_eq!(sec["aghash"], package_hash(&pkg1));
    assert_eq!(sec["error"], serde_json::Value::Null);
    let params = RatingParams {
        host_name: Some("web01".into()),
        ..RatingParams::default()
    };
    let rating = rate_section(
        &Section::parse(&section).unwrap(),
        &params,
        RatingMode::V25,
        host.clock.now(),
    );
    assert_eq!(rating.state, State::Ok, "{rating:?}");

    // Plug-in mode: within the interval (600 s) nothing is fetched, after it the new package.
    let pkg1b = b"agent for web01 v2".to_vec();
    publish_signed(&srv.store, "web01", &pkg1b, &[&key], None).unwrap();
    let plugin = RunOptions::new(Mode::Plugin);
    let sec = section_json(&up.controller_plugin_output(&host.files(), &host.conn, &plugin));
    assert_eq!(sec["aghash"], package_hash(&pkg1));
    host.clock.advance(Duration::from_secs(601));
    let sec = section_json(&up.controller_plugin_output(&host.files(), &host.conn, &plugin));
    assert_eq!(sec["aghash"], package_hash(&pkg1b));
    assert_eq!(std::fs::read(host.installed()).unwrap(), pkg1b);

    // web02's certificate gets web02's package.
    let other = Host::new(&srv, &srv.ca, "web02", &[&key.cert_pem], true);
    assert_eq!(
        other.run().unwrap(),
        UpdateOutcome::Installed {
            hash: package_hash(&pkg2),
            signature: Some(1)
        }
    );
    assert_eq!(std::fs::read(other.installed()).unwrap(), pkg2);
}

#[test]
fn receiver_api_requires_a_certificate_from_the_site_ca() {
    let srv = MtlsServer::start();
    let key = SigningKey::new("signature");
    let pkg = b"agent".to_vec();
    publish_signed(&srv.store, "web01", &pkg, &[&key], None).unwrap();

    // No client certificate: the TLS handshake succeeds (legacy clients still connect), the
    // 2.5 API answers 401.
    let agent = https_agent(&srv.ca.pem);
    let resp = agent
        .post(format!("{}/update_status", srv.base()))
        .header("content-type", "application/json")
        .send(&br#"{"platform": "linux_deb"}"#[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // A client certificate from another CA is refused in the handshake.
    let rogue = Ca::new("rogue");
    let host = Host::new(&srv, &rogue, "web01", &[&key.cert_pem], true);
    let err = host.run().unwrap_err();
    assert!(matches!(err, UpdateError::Connection { .. }), "{err:?}");
    assert!(!host.installed().exists());
    // The error is recorded as last_error.
    let (_, section) = host.updater().run_controller_and_record(
        &host.files(),
        &host.conn,
        &RunOptions::new(Mode::Plugin),
    );
    assert!(
        section_json(&section)["error"]
            .as_str()
            .unwrap()
            .starts_with("Cannot connect to"),
        "{section}"
    );
    let state = ControllerState::load(&host.files().state_file).unwrap();
    assert!(state.last_error.unwrap().starts_with("Cannot connect to"));
    assert_eq!(state.last_check, None);
}

#[test]
fn untrusted_signature_and_deactivated_config() {
    let srv = MtlsServer::start();
    let key = SigningKey::new("signature");
    let other = SigningKey::other("other");
    let pkg = b"agent signed by an untrusted key".to_vec();
    publish_signed(&srv.store, "web01", &pkg, &[&other], None).unwrap();
    let host = Host::new(&srv, &srv.ca, "web01", &[&key.cert_pem], true);
    let err = host.run().unwrap_err();
    assert!(
        matches!(err, UpdateError::Verify(VerifyError::NoValidSignature)),
        "{err:?}"
    );
    assert!(!host.installed().exists());
    assert!(
        read_agent_info(&host.files().agent_info_file)
            .unwrap()
            .is_none()
    );

    // activated = false: nothing happens, not even the status call.
    let off = Host::new(&srv, &srv.ca, "web01", &[&key.cert_pem], false);
    assert_eq!(off.run().unwrap(), UpdateOutcome::Deactivated);
    assert!(!off.files().state_file.exists());
}
