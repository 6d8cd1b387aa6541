//! A test CA and a server certificate for 127.0.0.1, written as PEM files the way an operator
//! would hand them to `agent-deploy serve --cert --key`. Shared by the tests of both binaries
//! (`cmk-update-agent`'s tests include this file by path).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The files of [`write_tls_files`].
pub(crate) struct TlsFiles {
    /// The CA certificate (PEM) updaters must trust.
    pub(crate) ca_pem: String,
    /// Server certificate chain (leaf, then CA).
    pub(crate) cert: PathBuf,
    /// Server key (PKCS#8 PEM).
    pub(crate) key: PathBuf,
}

pub(crate) fn write_tls_files(dir: &Path) -> TlsFiles {
    write_tls_files_with_clients(dir, &[]).0
}

/// Like [`write_tls_files`], and also the CA file (`ca.pem`, for `serve --client-ca`) and one
/// client certificate and key per CN (`client-<cn>.pem`, `client-<cn>.key`), issued by the CA.
#[allow(dead_code)]
pub(crate) fn write_tls_files_with_clients(
    dir: &Path,
    client_cns: &[&str],
) -> (TlsFiles, PathBuf, Vec<(PathBuf, PathBuf)>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "cli test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, format!("{}{}", leaf.pem(), ca_cert.pem())).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let mut clients = Vec::new();
    for cn in client_cns {
        let client_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, *cn);
        let client = params.signed_by(&client_key, &issuer).unwrap();
        let c = dir.join(format!("client-{cn}.pem"));
        let k = dir.join(format!("client-{cn}.key"));
        std::fs::write(&c, client.pem()).unwrap();
        std::fs::write(&k, client_key.serialize_pem()).unwrap();
        clients.push((c, k));
    }
    (
        TlsFiles {
            ca_pem: ca_cert.pem(),
            cert,
            key,
        },
        ca_file,
        clients,
    )
}
