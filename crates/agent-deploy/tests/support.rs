//! Test PKI, agent-sign keys and metadata, servers and an HTTPS client. The updater's tests
//! (`crates/agent-updater/tests`) include this file by path and add the host side.
// Not every helper is used by both crates' tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agent_deploy::{
    Advertise, DeployStore, HostStatus, Limits, ServerError, ServerHandle, ServerOptions,
    package_hash,
};
use agent_sign::{
    Certificate, Clock, FixedClock, MetaKey, PackageSignature, Passphrase, PrivateKey, RoleKeys,
    Roles, Root, SignedDocument, Subject, SystemClock, Targets, Timestamp,
};
use agent_wire::{DeployForm, DeployMode, Platform, RegisterForm, TargetMetadata};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

pub(crate) const SITE: &str = "mysite";
pub(crate) const USER: &str = "agent_registration";
pub(crate) const USER_SECRET: &str = "correct horse battery staple";
pub(crate) const DAY: i64 = 86_400;

/// A CA and a server certificate for 127.0.0.1 / localhost.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) tls: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub(crate) fn new(name: &str) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let tls =
            agent_deploy::tls_config(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
                .unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            tls,
        }
    }
}

/// A blocking HTTPS client that trusts only `ca_pem`.
pub(crate) fn https_agent(ca_pem: &str) -> ureq::Agent {
    https_config(ca_pem).build().new_agent()
}

/// The configuration of [`https_agent`], for a test that changes more of it: trusts only
/// `ca_pem`, takes any status as an answer, no proxy.
pub(crate) fn https_config(
    ca_pem: &str,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .proxy(None)
}

/// agent-sign's fixture keys (decrypting 2048 PBKDF2 iterations is fast; generating RSA-4096
/// is not): the Checkmk-style pyca key and the OpenSSL one.
fn fixture_key(name: &str) -> &'static PrivateKey {
    static PYCA: OnceLock<PrivateKey> = OnceLock::new();
    static OPENSSL: OnceLock<PrivateKey> = OnceLock::new();
    let (cell, pem, pass) = match name {
        "pyca" => (
            &PYCA,
            include_str!("../../agent-sign/tests/data/pyca.key.pem"),
            "checkmk-fixture-pass",
        ),
        _ => (
            &OPENSSL,
            include_str!("../../agent-sign/tests/data/openssl-rsa.key.pem"),
            "openssl-fixture-pass",
        ),
    };
    cell.get_or_init(|| PrivateKey::from_encrypted_pem(pem, &Passphrase::new(pass)).unwrap())
}

/// A package signing key (agent-sign RSA key) with a Checkmk-style self-signed certificate.
pub(crate) struct SigningKey {
    key: &'static PrivateKey,
    pub(crate) cert: Certificate,
    pub(crate) cert_pem: String,
}

impl SigningKey {
    fn make(key: &'static PrivateKey, alias: &str, clock: &dyn Clock, years: u8) -> SigningKey {
        let subject = Subject {
            alias: alias.into(),
            owner: "cmkadmin".into(),
            site: SITE.into(),
        };
        let cert = Certificate::self_signed(key, &subject, years, clock).unwrap();
        SigningKey {
            key,
            cert_pem: cert.to_pem(),
            cert,
        }
    }

    /// The site's key (the pyca fixture), valid for 10 years from now.
    pub(crate) fn new(alias: &str) -> SigningKey {
        Self::make(fixture_key("pyca"), alias, &SystemClock, 10)
    }

    /// Another key (the OpenSSL fixture) that the updater does not trust.
    pub(crate) fn other(alias: &str) -> SigningKey {
        Self::make(fixture_key("openssl"), alias, &SystemClock, 10)
    }

    /// The site's key with a certificate that expired in 2011.
    pub(crate) fn expired(alias: &str) -> SigningKey {
        Self::make(fixture_key("pyca"), alias, &FixedClock(1_262_304_000), 1)
    }

    /// One signature entry, as `agent-sign sign` appends it.
    pub(crate) fn sign(&self, package: &[u8]) -> PackageSignature {
        let mut list = Vec::new();
        agent_sign::sign_package(package, self.key, &self.cert, &mut list).unwrap();
        list.remove(0)
    }
}

pub(crate) fn sigs(keys: &[&SigningKey], package: &[u8]) -> Vec<PackageSignature> {
    keys.iter().map(|k| k.sign(package)).collect()
}

/// Publishes `package` for `host` (Linux DEB) in `store`, signed by each of `keys`.
pub(crate) fn publish_signed(
    store: &DeployStore,
    host: &str,
    package: &[u8],
    keys: &[&SigningKey],
    metadata: Option<&TargetMetadata>,
) -> Result<String, ServerError> {
    store.publish(
        host,
        Platform::LinuxDeb,
        package,
        &sigs(keys, package),
        metadata,
    )
}

/// What the server knows about `host` (which must have been in contact or registered).
pub(crate) fn host_status(store: &DeployStore, host: &str) -> HostStatus {
    store
        .statuses()
        .into_iter()
        .find(|s| s.host_name == host)
        .unwrap()
}

/// The form of `register_agent.py` for `host` as our test user with `secret`.
pub(crate) fn register_form(host: &str, secret: &str) -> RegisterForm {
    RegisterForm {
        host: host.into(),
        username: USER.into(),
        secret: secret.into(),
        au_api: "2".into(),
    }
}

/// The form of `deploy_agent.py mode=status` for `host` with its host `secret`, nothing
/// installed.
pub(crate) fn status_form(host: &str, secret: &str) -> DeployForm {
    DeployForm {
        mode: DeployMode::Status,
        host: host.into(),
        host_secret: secret.into(),
        installed_aghash: String::new(),
        aghash: String::new(),
        os: "linux_deb".into(),
        last_error: String::new(),
        au_api: "2".into(),
    }
}

/// The hardened-metadata keys of a site (Ed25519 root, targets and timestamp keys) and the
/// signed root document the updater trusts.
pub(crate) struct MetadataKeys {
    pub(crate) root_key: PrivateKey,
    targets: PrivateKey,
    timestamp: PrivateKey,
    pub(crate) root: SignedDocument,
}

impl MetadataKeys {
    pub(crate) fn new() -> MetadataKeys {
        let root_key = PrivateKey::generate_ed25519().unwrap();
        let targets = PrivateKey::generate_ed25519().unwrap();
        let timestamp = PrivateKey::generate_ed25519().unwrap();
        let root = signed_root(1, [&root_key, &targets, &timestamp], &[&root_key]);
        MetadataKeys {
            root_key,
            targets,
            timestamp,
            root,
        }
    }

    /// Root `version` with `new_root` as the root key (targets and timestamp keys unchanged),
    /// signed by each of `signers`.
    pub(crate) fn rotated(
        &self,
        version: u64,
        new_root: &PrivateKey,
        signers: &[&PrivateKey],
    ) -> SignedDocument {
        signed_root(version, [new_root, &self.targets, &self.timestamp], signers)
    }

    /// Signed targets (and timestamp) for `package`, as `agent-sign metadata targets` and
    /// `agent-sign metadata timestamp` write them; both expire `expires_in` seconds from now.
    pub(crate) fn metadata(
        &self,
        host: &str,
        package: &[u8],
        version: u64,
        expires_in: i64,
    ) -> TargetMetadata {
        let now = SystemClock.now();
        let t = Targets::for_package(
            package,
            host,
            Platform::LinuxDeb.as_str(),
            &package_hash(package),
            version,
            now,
            now + expires_in,
        );
        let mut targets = SignedDocument::new(&t).unwrap();
        targets.sign(&self.targets).unwrap();
        let ts = Timestamp::for_targets(&targets, version, now, now + expires_in).unwrap();
        let mut timestamp = SignedDocument::new(&ts).unwrap();
        timestamp.sign(&self.timestamp).unwrap();
        TargetMetadata {
            targets,
            timestamp: Some(timestamp),
        }
    }
}

/// Root metadata `version` (valid for a year) with one key each for the root, targets and
/// timestamp roles (`[root, targets, timestamp]`), signed by each of `signers`.
fn signed_root(
    version: u64,
    [root, targets, timestamp]: [&PrivateKey; 3],
    signers: &[&PrivateKey],
) -> SignedDocument {
    let mut keys = BTreeMap::new();
    let mut role = |k: &PrivateKey| {
        let (id, meta) = MetaKey::from_public(k.public_key());
        keys.insert(id.clone(), meta);
        RoleKeys {
            keyids: vec![id],
            threshold: 1,
        }
    };
    let roles = Roles {
        root: role(root),
        targets: role(targets),
        timestamp: role(timestamp),
    };
    let content = Root::new(version, SystemClock.now() + 365 * DAY, keys, roles);
    let mut doc = SignedDocument::new(&content).unwrap();
    for k in signers {
        doc.sign(k).unwrap();
    }
    doc
}

/// A clock the test moves (Unix seconds, starting at the real time).
pub(crate) struct TestClock(pub(crate) Mutex<i64>);

impl TestClock {
    pub(crate) fn new() -> Arc<TestClock> {
        Arc::new(TestClock(Mutex::new(SystemClock.now())))
    }
    pub(crate) fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += i64::try_from(d.as_secs()).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        *self.0.lock().unwrap()
    }
}

/// Serves `store` for our site over HTTPS with `tls` on 127.0.0.1 (any port, 2 worker threads).
pub(crate) fn spawn_https(
    store: &Arc<DeployStore>,
    limits: Limits,
    tls: Arc<rustls::ServerConfig>,
) -> ServerHandle {
    let options = ServerOptions {
        site: SITE.into(),
        limits,
        tls: Some(tls),
    };
    agent_deploy::spawn(
        Arc::clone(store),
        options,
        "127.0.0.1:0".parse().unwrap(),
        2,
    )
    .unwrap()
}

/// Our deployment server over HTTPS on 127.0.0.1 with the test CA.
pub(crate) struct TestServer {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Arc<DeployStore>,
    pub(crate) handle: Option<ServerHandle>,
    pub(crate) pki: TestPki,
}

impl TestServer {
    pub(crate) fn start() -> TestServer {
        Self::start_with(Limits::default())
    }

    pub(crate) fn start_with(limits: Limits) -> TestServer {
        Self::start_in(tempfile::tempdir().unwrap(), limits)
    }

    /// A server with its state in `dir` (2 worker threads) and our test user.
    pub(crate) fn start_in(dir: tempfile::TempDir, limits: Limits) -> TestServer {
        DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
        let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).unwrap());
        let pki = TestPki::new("deploy");
        let handle = spawn_https(&store, limits, Arc::clone(&pki.tls));
        TestServer {
            dir,
            store,
            handle: Some(handle),
            pki,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.handle.as_ref().unwrap().local_addr()
    }

    pub(crate) fn server(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    pub(crate) fn base(&self) -> String {
        format!("https://{}/{SITE}/check_mk", self.server())
    }
}
