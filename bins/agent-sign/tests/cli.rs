//! Runs the real `agent-sign` binary on temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PASS: &str = "cli test passphrase";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/agent-sign/tests/data")
        .join(name)
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs with the store in the temp dir and the passphrase in an env var.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, Some(PASS))
    }

    fn run_with(&self, args: &[&str], pass: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-sign"));
        cmd.current_dir(self.dir.path())
            .env("AGENT_SIGN_STORE", self.path("store"))
            .env_remove("AGENT_SIGN_PASSPHRASE")
            .args(args)
            .stdin(std::process::Stdio::null());
        if let Some(p) = pass {
            cmd.env("AGENT_SIGN_PASSPHRASE", p);
        }
        cmd.output().unwrap()
    }

    /// `key import <pem> --alias <alias>`, the passphrase from `pass.txt`, none in the environment.
    fn import_key_with_passphrase_file(&self, pem: &Path, alias: &str) -> Output {
        self.run_with(
            &[
                "key",
                "import",
                pem.to_str().unwrap(),
                "--alias",
                alias,
                "--passphrase-file",
                "pass.txt",
            ],
            None,
        )
    }

    /// `metadata targets <package> --out <out>` for `web01` on `linux_deb` with the hash
    /// `aghash` at `version`, then the `extra` arguments (such as `--key`).
    fn metadata_targets(
        &self,
        package: &str,
        out: &str,
        aghash: &str,
        version: &str,
        extra: &[&str],
    ) -> Output {
        let args = [
            "metadata",
            "targets",
            package,
            "--out",
            out,
            "--host",
            "web01",
            "--platform",
            "linux_deb",
            "--aghash",
            aghash,
            "--version",
            version,
        ];
        self.run(&[&args[..], extra].concat())
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert_eq!(code(out), 0, "stderr: {}", stderr(out));
    stdout(out)
}

/// Asserts that the command failed with exit code `expected` and `message` on stderr.
#[track_caller]
fn assert_fails_with(out: &Output, expected: i32, message: &str) {
    assert_eq!(code(out), expected, "stderr: {}", stderr(out));
    assert!(stderr(out).contains(message), "{}", stderr(out));
}

#[test]
fn keys_sign_verify_round_trip() {
    let env = Env::new();
    // Create an RSA-4096 key (passphrase from the environment).
    assert_eq!(
        ok(&env.run(&["key", "create", "--alias", "Agent key", "--owner", "ops"])).trim(),
        "1"
    );
    // Import the Checkmk-style fixture with a passphrase file.
    std::fs::write(env.path("pass.txt"), "checkmk-fixture-pass\n").unwrap();
    let combined = fixture("pyca.combined.pem");
    let out = env.import_key_with_passphrase_file(&combined, "From Checkmk");
    assert_eq!(ok(&out).trim(), "2");
    // A duplicate is refused with Checkmk's message.
    let out = env.import_key_with_passphrase_file(&combined, "again");
    assert_fails_with(
        &out,
        2,
        "The key / certificate already exists (Key: 2, Description: From Checkmk)",
    );

    // list / show
    let list: serde_json::Value =
        serde_json::from_str(&ok(&env.run(&["key", "list", "--json"]))).unwrap();
    assert_eq!(list["schema"], 1);
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["alias"], "Agent key");
    assert_eq!(keys[0]["bits"], 4096);
    assert_eq!(keys[0]["expiry_state"], "OK");
    assert_eq!(keys[1]["subject_organization"], "Checkmk Site mysite");
    assert_eq!(keys[1]["digest_md5"].as_str().unwrap().len(), 47);
    let human = ok(&env.run(&["key", "list"]));
    assert!(
        human.contains("Digest (MD5)") && human.contains("From Checkmk"),
        "{human}"
    );
    let show: serde_json::Value =
        serde_json::from_str(&ok(&env.run(&["key", "show", "1", "--json"]))).unwrap();
    assert_eq!(show["subject_common_name"], "Agent key");
    assert_eq!(show["subject_organizational_unit"], "ops");
    assert_eq!(show["signature_algorithm"], "sha512WithRSAEncryption");
    let pem = ok(&env.run(&["key", "show", "2", "--pem"]));
    std::fs::write(env.path("cert2.pem"), &pem).unwrap();
    std::fs::write(
        env.path("cert1.pem"),
        ok(&env.run(&["key", "show", "1", "--pem"])),
    )
    .unwrap();

    // sign with both keys
    std::fs::write(env.path("agent.deb"), b"a package".repeat(1000)).unwrap();
    ok(&env.run(&[
        "sign",
        "agent.deb",
        "--key",
        "1",
        "--log",
        "signing.log",
        "--host",
        "web01",
    ]));
    ok(&env.run_with(
        &[
            "sign",
            "agent.deb",
            "--key",
            "2",
            "--passphrase-file",
            "pass.txt",
        ],
        None,
    ));
    let sigs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.path("agent.deb.signatures.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sigs.as_array().unwrap().len(), 2);
    assert!(
        sigs[0]["certificate"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let log = ok(&env.run(&["log-verify", "signing.log"]));
    assert!(
        log.contains("hosts web01") && log.ends_with("chain intact: 1 entries\n"),
        "{log}"
    );
    let text = std::fs::read_to_string(env.path("signing.log")).unwrap();
    std::fs::write(env.path("signing.log"), text.replace("web01", "web02")).unwrap();
    let out = env.run(&["log-verify", "signing.log"]);
    assert_eq!(
        code(&out),
        0,
        "a single entry has no successor to break: still canonical"
    );
    std::fs::write(
        env.path("signing.log"),
        text.replace("\"seq\":1", "\"seq\":2"),
    )
    .unwrap();
    assert_eq!(code(&env.run(&["log-verify", "signing.log"])), 1);

    // verify: only key 2 trusted -> #1 unknown, then OK
    let out = env.run(&["verify", "agent.deb", "--trust", "cert2.pem"]);
    assert_eq!(
        ok(&out),
        "Ignoring signature #1 for certificate: certificate is unknown.\nSignature check OK.\n"
    );
    let out = env.run(&[
        "verify",
        "agent.deb",
        "--trust",
        "cert1.pem",
        "--trust",
        "cert2.pem",
        "--threshold",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["accepted"], true);
    assert_eq!(v["valid_signatures"], serde_json::json!([1, 2]));
    // tampered byte -> exit 1
    let mut bytes = std::fs::read(env.path("agent.deb")).unwrap();
    bytes[10] ^= 1;
    std::fs::write(env.path("agent.deb"), &bytes).unwrap();
    let out = env.run(&[
        "verify",
        "agent.deb",
        "--trust",
        "cert1.pem",
        "--trust",
        "cert2.pem",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stdout(&out),
        "Signature #1 is invalid.\nSignature #2 is invalid.\nNo valid signature found.\n"
    );

    // export: wrong passphrase -> 2; right one -> key then certificate, mode 0600
    let out = env.run_with(
        &["key", "export", "1", "-o", "k1.pem"],
        Some("wrong passphrase"),
    );
    assert_fails_with(&out, 2, "wrong passphrase");
    ok(&env.run(&["key", "export", "1", "-o", "k1.pem"]));
    let exported = std::fs::read_to_string(env.path("k1.pem")).unwrap();
    assert!(exported.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(exported.trim_end().ends_with("-----END CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.path("k1.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // openssl decrypts the exported key with the passphrase
    let out = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(env.path("k1.pem"))
        .args(["-passin", &format!("pass:{PASS}"), "-noout"])
        .output()
        .expect("openssl is required");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // delete: refused while trusted, then allowed
    let out = env.run(&["key", "delete", "2", "--yes", "--trusted-by", "cert2.pem"]);
    assert_fails_with(&out, 2, "This key is still used.");
    // Key 2's passphrase is the one in pass.txt, not the environment's.
    let out = env.run(&["key", "delete", "2", "--yes"]);
    assert_fails_with(&out, 2, "wrong passphrase");
    ok(&env.run_with(
        &[
            "key",
            "delete",
            "2",
            "--yes",
            "--passphrase-file",
            "pass.txt",
        ],
        None,
    ));
    let out = env.run(&["key", "show", "2"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn passphrases_never_come_from_arguments_or_a_missing_terminal() {
    let env = Env::new();
    let out = env.run(&[
        "key",
        "create",
        "--alias",
        "x",
        "--passphrase",
        "abcdefghijklmn",
    ]);
    assert_eq!(code(&out), 2, "clap rejects the unknown flag");
    let out = env.run_with(
        &["key", "create", "--alias", "x", "--type", "ed25519"],
        None,
    );
    assert_fails_with(&out, 2, "no passphrase");
    let out = env.run_with(
        &["key", "create", "--alias", "x", "--type", "ed25519"],
        Some("short"),
    );
    assert_fails_with(&out, 2, "at least 12 characters");
    let out = env.run(&[
        "key",
        "create",
        "--alias",
        "x",
        "--type",
        "ed25519",
        "--kdf-iterations",
        "2048",
    ]);
    assert_fails_with(&out, 2, "too few");
    let help = ok(&env.run(&["--help"]));
    assert!(help.contains("Exit codes:"));
}

#[test]
fn hardened_metadata_flow() {
    let env = Env::new();
    for alias in ["root", "targets", "timestamp"] {
        ok(&env.run(&["key", "create", "--alias", alias, "--type", "ed25519"]));
    }
    std::fs::write(env.path("agent.deb"), b"package v2").unwrap();
    std::fs::write(env.path("old.deb"), b"package v1").unwrap();
    ok(&env.run(&[
        "metadata",
        "root",
        "--out",
        "root.json",
        "--version",
        "1",
        "--root-key",
        "1",
        "--targets-key",
        "2",
        "--timestamp-key",
        "3",
        "--sign-with",
        "1",
    ]));
    ok(&env.metadata_targets(
        "old.deb",
        "old.json",
        "0123456789abcdef",
        "1",
        &["--key", "2"],
    ));
    ok(&env.metadata_targets(
        "agent.deb",
        "t.json",
        "fedcba9876543210",
        "2",
        &["--key", "2"],
    ));
    ok(&env.run(&[
        "metadata",
        "timestamp",
        "--targets",
        "t.json",
        "--out",
        "ts.json",
        "--version",
        "1",
        "--key",
        "3",
    ]));
    let verify = |targets: &str, package: &str, host: &str| {
        env.run(&[
            "metadata",
            "verify",
            "--state",
            "state.json",
            "--root",
            "root.json",
            "--targets",
            targets,
            "--package",
            package,
            "--host",
            host,
            "--platform",
            "linux_deb",
            "--json",
        ])
    };
    // Another host's metadata is refused before any state exists.
    let out = verify("t.json", "agent.deb", "db01");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    // The package must match the signed hash.
    let out = verify("t.json", "old.deb", "web01");
    assert_fails_with(&out, 1, "hash mismatch");
    assert!(
        !env.path("state.json").exists(),
        "no state written on failure"
    );
    // Good.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&verify("t.json", "agent.deb", "web01"))).unwrap();
    assert_eq!(v["targets"]["version"], 2);
    assert_eq!(v["targets"]["aghash"], "fedcba9876543210");
    let state = std::fs::read_to_string(env.path("state.json")).unwrap();
    // Replaying the older version is a rollback; the state is unchanged.
    let out = verify("old.json", "old.deb", "web01");
    assert_fails_with(&out, 1, "rollback");
    assert_eq!(
        std::fs::read_to_string(env.path("state.json")).unwrap(),
        state
    );
    // With the timestamp.
    ok(&env.run(&[
        "metadata",
        "verify",
        "--state",
        "state.json",
        "--targets",
        "t.json",
        "--timestamp",
        "ts.json",
        "--host",
        "web01",
        "--platform",
        "linux_deb",
    ]));
    // Expired metadata.
    ok(&env.metadata_targets(
        "agent.deb",
        "exp.json",
        "fedcba9876543210",
        "3",
        &["--expires-days", "0", "--key", "2"],
    ));
    let out = verify("exp.json", "agent.deb", "web01");
    assert_fails_with(&out, 1, "expired");
    // Unsigned targets (no --key): threshold not met.
    ok(&env.metadata_targets("agent.deb", "unsigned.json", "fedcba9876543210", "4", &[]));
    let out = verify("unsigned.json", "agent.deb", "web01");
    assert_eq!(code(&out), 1);
    // ...until it is signed.
    ok(&env.run(&["metadata", "sign", "unsigned.json", "--key", "2"]));
    ok(&verify("unsigned.json", "agent.deb", "web01"));
}

/// An Ed25519 key #1 in the store (fast), passphrase `PASS`.
fn env_with_a_key() -> Env {
    let env = Env::new();
    ok(&env.run(&["key", "create", "--alias", "only key", "--type", "ed25519"]));
    env
}

#[test]
fn verify_takes_the_package_after_trust() {
    let env = Env::new();
    std::fs::write(env.path("pass.txt"), "checkmk-fixture-pass\n").unwrap();
    ok(&env.import_key_with_passphrase_file(&fixture("pyca.combined.pem"), "k"));
    std::fs::write(
        env.path("trust.pem"),
        ok(&env.run(&["key", "show", "1", "--pem"])),
    )
    .unwrap();
    std::fs::write(env.path("pkg.deb"), b"package bytes").unwrap();
    ok(&env.run_with(
        &[
            "sign",
            "pkg.deb",
            "--key",
            "1",
            "--passphrase-file",
            "pass.txt",
        ],
        None,
    ));
    // The order the usage line shows: the option, then the package.
    let out = env.run(&["verify", "--trust", "trust.pem", "pkg.deb"]);
    assert_eq!(ok(&out), "Signature check OK.\n");
}

#[test]
fn read_commands_need_an_existing_store_and_create_nothing() {
    let env = Env::new();
    for args in [
        &["--store", "typo", "key", "list"][..],
        &["--store", "typo", "key", "show", "1"],
        &["--store", "typo", "key", "delete", "1", "--yes"],
    ] {
        let out = env.run(args);
        assert_fails_with(&out, 2, "no key store at typo: it does not exist");
    }
    assert!(!env.path("typo").exists());
    std::fs::write(env.path("file"), "x").unwrap();
    let out = env.run(&["--store", "file", "key", "list"]);
    assert_fails_with(&out, 2, "not a directory");
    // key create makes the store.
    ok(&env.run(&[
        "--store", "new", "key", "create", "--alias", "a", "--type", "ed25519",
    ]));
    assert!(env.path("new/1.json").is_file());
    let help = stdout(&env.run(&["--help"]));
    assert!(
        help.contains("created only by `key create` and `key import`"),
        "{help}"
    );
}

#[test]
fn errors_name_their_cause_once_and_json_errors_are_json() {
    let env = Env::new();
    std::fs::write(env.path("file"), "x").unwrap();
    let out = env.run(&["--store", "file/sub", "key", "list"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    let out = env.run(&["key", "import", "missing.pem", "--alias", "x"]);
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    let env = env_with_a_key();
    let out = env.run(&["key", "show", "7", "--json"]);
    assert_eq!(code(&out), 2);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["exit_code"], 2);
    assert_eq!(doc["error"], "no key with id 7 in the key store");
}

#[test]
fn key_delete_needs_the_passphrase_and_a_confirmation() {
    let env = env_with_a_key();
    // No terminal, no --yes: refused, the key stays.
    let out = env.run(&["key", "delete", "1"]);
    assert_fails_with(&out, 2, "pass --yes");
    let out = env.run_with(&["key", "delete", "1", "--yes"], Some("a wrong passphrase"));
    assert_fails_with(&out, 2, "wrong passphrase");
    ok(&env.run(&["key", "show", "1"]));
    ok(&env.run(&["key", "delete", "1", "--yes"]));
    assert_eq!(code(&env.run(&["key", "show", "1"])), 2);
}

/// Runs `agent-sign key delete 1` on a pseudo-terminal (util-linux `script`), typing
/// `answer`; the terminal text and exit status, or `None` (with a skip message).
fn delete_on_a_terminal(env: &Env, answer: &str) -> Option<(String, i32)> {
    use std::io::Write as _;
    let command = format!(
        "'{}' --store '{}' key delete 1; echo \"exit=$?\"",
        env!("CARGO_BIN_EXE_agent-sign"),
        env.path("store").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("AGENT_SIGN_PASSPHRASE", PASS)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(answer.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let Some((shown, code)) = text.rsplit_once("exit=") else {
        testkit::skip(
            "util-linux `script` did not provide a terminal (install it with `apt-get install util-linux`)",
        );
        return None;
    };
    Some((shown.to_string(), code.trim().parse().ok()?))
}

#[test]
fn key_delete_asks_on_a_terminal() {
    let env = env_with_a_key();
    let Some((shown, status)) = delete_on_a_terminal(&env, "n\n") else {
        return;
    };
    assert_eq!(status, 1, "{shown}");
    assert!(
        shown.contains("Delete key #1 (only key, SHA-256 ") && shown.contains("[y/N]"),
        "{shown}"
    );
    assert!(shown.contains("Aborted"), "{shown}");
    ok(&env.run(&["key", "show", "1"]));
    let Some((shown, status)) = delete_on_a_terminal(&env, "y\n") else {
        return;
    };
    assert_eq!(status, 0, "{shown}");
    assert!(shown.contains("deleted key #1"), "{shown}");
    assert_eq!(code(&env.run(&["key", "show", "1"])), 2);
}

#[test]
fn key_import_reads_a_key_from_a_plain_openssl_req() {
    let env = Env::new();
    let out = Command::new("openssl")
        .current_dir(env.dir.path())
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-subj",
            "/CN=from openssl",
            "-days",
            "30",
            "-passout",
        ])
        .arg(format!("pass:{PASS}"))
        .output()
        .expect("openssl is required");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let combined = std::fs::read_to_string(env.path("k.pem")).unwrap()
        + &std::fs::read_to_string(env.path("c.pem")).unwrap();
    std::fs::write(env.path("combined.pem"), combined).unwrap();
    let out = env.run(&["key", "import", "combined.pem", "--alias", "openssl req"]);
    assert_eq!(ok(&out).trim(), "1");
    let list = ok(&env.run(&["key", "list"]));
    assert!(
        list.contains("openssl req") && list.contains("rsa2048"),
        "{list}"
    );
}
