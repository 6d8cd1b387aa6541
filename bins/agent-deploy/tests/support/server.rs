//! The `agent-deploy` binary as a server process: the state directory's first user, and
//! `serve` over HTTPS on a free loopback port.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub(crate) const DEPLOY: &str = env!("CARGO_BIN_EXE_agent-deploy");

/// A child process, killed (by its id) when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `agent-deploy --dir <state> user-add <user>` with `secret` on stdin (1000 iterations).
pub(crate) fn user_add(state: &Path, user: &str, secret: &str) {
    let mut add = Command::new(DEPLOY)
        .arg("--dir")
        .arg(state)
        .args(["user-add", user, "--iterations", "1000"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{secret}\n").as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());
}

/// `agent-deploy --dir <state> --site-root <site> serve --site mysite` on 127.0.0.1 with the
/// certificate and key: the process and the address it listens on (its later log is read and
/// dropped).
pub(crate) fn serve_site(state: &Path, site: &Path, cert: &Path, key: &Path) -> (Proc, String) {
    let mut child = Command::new(DEPLOY)
        .arg("--dir")
        .arg(state)
        .arg("--site-root")
        .arg(site)
        .args([
            "serve",
            "--site",
            "mysite",
            "--listen",
            "127.0.0.1:0",
            "--cert",
        ])
        .arg(cert)
        .arg("--key")
        .arg(key)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let server = Proc(child);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(a) = line.trim().strip_prefix("agent-deploy: listening on ") {
            break a.to_owned();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    (server, addr)
}
