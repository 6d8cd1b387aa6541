//! The `agent-deploy` binary as a server process: the state directory's first user, and
//! `serve` over HTTPS on a free loopback port.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};

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

/// Spawns `command`, an `agent-deploy … serve --listen 127.0.0.1:0 …`, with its stderr piped,
/// and waits for its `listening on` line: the process, the rest of its stderr and the address.
pub(crate) fn spawn_listening(command: &mut Command) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = command
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(a) = line.trim().strip_prefix("agent-deploy: listening on ") {
            break a.to_owned();
        }
    };
    (child, stderr, addr)
}

/// Reads and drops the rest of a server's stderr, so that it never blocks on a full pipe.
pub(crate) fn drain(mut stderr: BufReader<ChildStderr>) {
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
}

/// Collects the rest of a server's stderr, line by line, as it comes.
pub(crate) fn collect_lines(stderr: BufReader<ChildStderr>) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for l in stderr.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    log
}

/// `agent-deploy --dir <state> --site-root <site> serve --site mysite` on 127.0.0.1 with the
/// certificate and key: the process and the address it listens on (its later log is read and
/// dropped).
pub(crate) fn serve_site(state: &Path, site: &Path, cert: &Path, key: &Path) -> (Proc, String) {
    let (child, stderr, addr) = spawn_listening(
        Command::new(DEPLOY)
            .arg("--dir")
            .arg(state)
            .arg("--site-root")
            .arg(site)
            .args(["serve", "--site", "mysite", "--listen", "127.0.0.1:0"])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key),
    );
    drain(stderr);
    (Proc(child), addr)
}
