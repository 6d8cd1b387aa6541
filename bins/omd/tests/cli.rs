//! Runs the real `omd` binary against temporary OMD roots and compares its
//! output byte for byte with the examples of site-update.md §7.

// Test helpers may panic on unexpected input; that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

/// `omd create`, `rm`, `update`, `start`/`stop`/`status` (same test binary).
mod update;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn omd_cmd(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omd"));
    cmd.env_remove("OMD_ROOT_DIR")
        .env_remove("NO_COLOR")
        .arg("--root")
        .arg(root);
    cmd
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn omd(root: &Path, args: &[&str]) -> Output {
    let mut cmd = omd_cmd(root);
    cmd.args(args);
    run(cmd)
}

/// The layout of upstream's tests: versions 1.2.3p4, 1.6.0p4 (default),
/// 1.6.0p14; sites broken (on a version that is not installed), default,
/// disabled (no apache config), empty (no version link), xyz.
fn spec_root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for v in ["1.2.3p4", "1.6.0p4", "1.6.0p14"] {
        fs::create_dir_all(root.join("versions").join(v)).unwrap();
    }
    symlink(root.join("versions/1.6.0p4"), root.join("versions/default")).unwrap();
    fs::create_dir_all(root.join("apache")).unwrap();
    for (site, version) in [
        ("broken", Some("1.0.0")),
        ("default", Some("1.6.0p4")),
        ("disabled", Some("1.6.0p4")),
        ("empty", None),
        ("xyz", Some("1.2.3p4")),
    ] {
        let dir = root.join("sites").join(site);
        fs::create_dir_all(&dir).unwrap();
        if let Some(v) = version {
            symlink(format!("../../versions/{v}"), dir.join("version")).unwrap();
        }
        if site != "disabled" {
            fs::write(root.join("apache").join(format!("{site}.conf")), "").unwrap();
        }
    }
    tmp
}

#[test]
fn versions_in_upstream_string_order_match_the_spec() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["versions", "--sort", "string"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(out.stdout, "1.2.3p4\n1.6.0p14\n1.6.0p4 (default)\n");
    let out = omd(tmp.path(), &["versions", "--sort=string", "--bare"]);
    assert_eq!(out.stdout, "1.2.3p4\n1.6.0p14\n1.6.0p4\n");
}

#[test]
fn versions_default_to_checkmk_order() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["versions"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "1.2.3p4\n1.6.0p4 (default)\n1.6.0p14\n");
    let out = omd(tmp.path(), &["versions", "-b"]);
    assert_eq!(out.stdout, "1.2.3p4\n1.6.0p4\n1.6.0p14\n");
}

#[test]
fn upstream_version_list_and_daily_default() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for v in [
        "1.6.0p7",
        "1.6.0i10",
        "2019.12.11.cee",
        "1.2.0p23",
        "1.6.0i1",
    ] {
        fs::create_dir_all(root.join("versions").join(v)).unwrap();
    }
    symlink("2019.12.11.cee", root.join("versions/default")).unwrap();
    let out = omd(root, &["versions", "--sort", "string"]);
    assert_eq!(
        out.stdout,
        "1.2.0p23\n1.6.0i1\n1.6.0i10\n1.6.0p7\n2019.12.11.cee (default)\n"
    );
    let out = omd(root, &["versions"]);
    assert_eq!(
        out.stdout,
        "1.2.0p23\n1.6.0i1\n1.6.0i10\n1.6.0p7\n2019.12.11.cee (default)\n"
    );
    let out = omd(root, &["version"]);
    assert_eq!(
        out.stdout,
        "OMD - Open Monitoring Distribution Version 2019.12.11.cee\n"
    );
}

#[test]
fn sites_match_the_spec_byte_for_byte() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["sites"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        "broken           1.0.0             \n\
         default          1.6.0p4          default version \n\
         disabled         1.6.0p4          default version, disabled \n\
         empty            (none)           empty site dir \n\
         xyz              1.2.3p4           \n"
    );
    let out = omd(tmp.path(), &["sites", "--bare"]);
    assert_eq!(out.stdout, "broken\ndefault\ndisabled\nempty\nxyz\n");
}

#[test]
fn version_of_default_and_of_sites() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["version"]);
    assert_eq!(
        out.stdout,
        "OMD - Open Monitoring Distribution Version 1.6.0p4\n"
    );
    assert_eq!(omd(tmp.path(), &["version", "--bare"]).stdout, "1.6.0p4\n");
    let out = omd(tmp.path(), &["version", "xyz"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "OMD - Open Monitoring Distribution Version 1.2.3p4\n")
    );
    assert_eq!(
        omd(tmp.path(), &["version", "-b", "broken"]).stdout,
        "1.0.0\n"
    );
}

#[test]
fn version_errors_name_what_is_wrong() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["version", "testsite"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", "No such site: testsite\n")
    );
    let out = omd(tmp.path(), &["version", "empty"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Failed to determine site version\n")
    );
    let out = omd(tmp.path(), &["version", "0bad"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("Invalid site name \"0bad\""),
        "{}",
        out.stderr
    );

    let empty = tempfile::tempdir().unwrap();
    let out = omd(empty.path(), &["version"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("No default version is set"),
        "{}",
        out.stderr
    );
}

#[test]
fn setversion_changes_the_default() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["setversion", "1.6.0p14"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    assert_eq!(
        omd(tmp.path(), &["versions"]).stdout,
        "1.2.3p4\n1.6.0p4\n1.6.0p14 (default)\n"
    );
    // Sites on 1.6.0p4 no longer use the default version.
    let sites = omd(tmp.path(), &["sites"]).stdout;
    assert!(
        sites.contains("default          1.6.0p4           \n"),
        "{sites}"
    );

    let out = omd(tmp.path(), &["setversion", "1.6.0p14"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "The given version is already default.\n")
    );
    let out = omd(tmp.path(), &["setversion", "9.9.9"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "The given version does not exist.\n")
    );
    // Without a version and without a terminal there is nobody to ask.
    let out = omd(tmp.path(), &["setversion"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("stdin is not a terminal"),
        "{}",
        out.stderr
    );
}

/// Runs `omd setversion` on a pseudo-terminal, typing `keys`; the terminal
/// output and exit status, or `None` (and a skip message) without `script`.
fn setversion_on_a_terminal(root: &Path, keys: &str) -> Option<(String, i32)> {
    use std::io::Write as _;
    let command = format!(
        "'{}' --root '{}' setversion; echo \"exit=$?\"",
        env!("CARGO_BIN_EXE_omd"),
        root.display()
    );
    let spawned = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("OMD_ROOT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            testkit::require(
                false,
                "util-linux `script` (to provide a terminal)",
                "apt-get install util-linux",
            );
            return None;
        }
        Err(e) => panic!("cannot run `script`: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(keys.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let Some((shown, code)) = text.rsplit_once("exit=") else {
        panic!(
            "`script` did not run omd on a terminal ({}): {text}",
            out.status
        );
    };
    let code = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no exit code in {text:?}"));
    Some((shown.to_string(), code))
}

#[test]
fn setversion_without_a_version_asks_on_a_terminal() {
    let tmp = spec_root();
    let Some((shown, code)) = setversion_on_a_terminal(tmp.path(), "2") else {
        return;
    };
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains(
            " Choose new default\n\n Please choose the version to make the new default\n\n \
             1  1.2.3p4\n 2  1.6.0p14\n c  Cancel\nMake default: 1/2/c ==> 2\n"
        ),
        "{shown}"
    );
    assert_eq!(
        omd(tmp.path(), &["versions"]).stdout,
        "1.2.3p4\n1.6.0p4\n1.6.0p14 (default)\n"
    );

    let Some((shown, code)) = setversion_on_a_terminal(tmp.path(), "c") else {
        return;
    };
    assert_eq!(code, 1, "{shown}");
    assert!(shown.ends_with("==> c\nAborted.\n"), "{shown}");
    assert_eq!(
        omd(tmp.path(), &["versions"]).stdout,
        "1.2.3p4\n1.6.0p4\n1.6.0p14 (default)\n"
    );
}

#[test]
fn json_documents_carry_a_schema() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["versions", "--json"]);
    assert_eq!(out.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["order"], "checkmk");
    assert_eq!(doc["default"], "1.6.0p4");
    let names: Vec<&str> = doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1.2.3p4", "1.6.0p4", "1.6.0p14"]);
    assert_eq!(doc["versions"][1]["default"], true);

    let out = omd(tmp.path(), &["sites", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    let sites = doc["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 5);
    assert_eq!(sites[2]["name"], "disabled");
    assert_eq!(sites[2]["disabled"], true);
    assert_eq!(sites[2]["default_version"], true);
    assert_eq!(sites[3]["empty"], true);
    assert_eq!(sites[3]["version"], serde_json::Value::Null);

    assert_eq!(omd(tmp.path(), &["sites", "--json", "--bare"]).code, 2);
}

#[test]
fn root_from_the_environment() {
    let tmp = spec_root();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omd"));
    cmd.env("OMD_ROOT_DIR", tmp.path())
        .args(["versions", "--bare"]);
    let out = run(cmd);
    assert_eq!(out.stdout, "1.2.3p4\n1.6.0p4\n1.6.0p14\n");
    // --root wins over the environment.
    let other = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omd"));
    cmd.env("OMD_ROOT_DIR", tmp.path())
        .arg("--root")
        .arg(other.path())
        .arg("versions");
    assert_eq!(run(cmd).stdout, "");
}

#[test]
fn help_documents_order_and_exit_codes() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Exit codes:"), "{}", out.stdout);
    assert!(out.stdout.contains("OMD_ROOT_DIR"), "{}", out.stdout);
    let out = omd(tmp.path(), &["versions", "--help"]);
    let text = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("sorted in true Checkmk order"),
        "{}",
        out.stdout
    );
    assert!(
        text.contains("which `--sort string` reproduces byte for byte"),
        "{text}"
    );
    let out = omd(tmp.path(), &["-h"]);
    assert!(out.stdout.contains("in Checkmk order"), "{}", out.stdout);
    let out = omd(tmp.path(), &["no-such-command"]);
    assert_eq!(out.code, 2);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    // More than a pipe buffer (64 KiB) of output from a few hundred entries.
    fs::create_dir(tmp.path().join("versions")).unwrap();
    let padding = "x".repeat(200);
    for i in 0..400 {
        fs::create_dir(tmp.path().join(format!("versions/{i:03}{padding}"))).unwrap();
    }
    let mut cmd = omd_cmd(tmp.path());
    cmd.arg("versions")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"000xxx");
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(stderr, "");
    assert_eq!(status.code(), Some(0));
}

/// Runs `omd` on a pseudo-terminal through util-linux `script`; `None` (and
/// a skip message) when `script` is not available; panics when omd fails.
fn omd_on_a_terminal(root: &Path, args: &str, env: &[(&str, &str)]) -> Option<String> {
    let command = format!(
        "'{}' --root '{}' {args}",
        env!("CARGO_BIN_EXE_omd"),
        root.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("OMD_ROOT_DIR");
    for (key, value) in env {
        cmd.env(key, value);
    }
    match cmd.output() {
        Ok(out) => {
            let text = String::from_utf8(out.stdout).unwrap().replace("\r\n", "\n");
            assert!(
                out.status.success(),
                "omd {args} failed on a terminal ({}): {text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            Some(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            testkit::require(
                false,
                "util-linux `script` (to provide a terminal)",
                "apt-get install util-linux",
            );
            None
        }
        Err(e) => panic!("cannot run `script`: {e}"),
    }
}

#[test]
fn sites_on_a_terminal_have_a_header_and_colour() {
    let tmp = spec_root();
    let Some(out) = omd_on_a_terminal(tmp.path(), "sites", &[]) else {
        return;
    };
    assert_eq!(
        out,
        "SITE             VERSION          COMMENTS\n\
         broken           1.0.0             \n\
         default          1.6.0p4          default version \n\
         disabled         1.6.0p4          default version, \x1b[1m\x1b[31mdisabled\x1b[0m \n\
         empty            (none)           empty site dir \n\
         xyz              1.2.3p4           \n"
    );
    let Some(out) = omd_on_a_terminal(tmp.path(), "sites", &[("NO_COLOR", "1")]) else {
        return;
    };
    assert!(
        out.starts_with("SITE             VERSION          COMMENTS\n"),
        "{out}"
    );
    assert!(out.contains("default version, disabled \n"), "{out}");
    let Some(out) = omd_on_a_terminal(tmp.path(), "sites --bare", &[]) else {
        return;
    };
    assert_eq!(out, "broken\ndefault\ndisabled\nempty\nxyz\n");
}

#[test]
fn global_options_apply_only_where_they_mean_something() {
    let tmp = spec_root();
    let out = omd(tmp.path(), &["-f", "versions"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("-f/--force applies to 'update' and 'rm' only"),
        "{}",
        out.stderr
    );
    let out = omd(tmp.path(), &["-V", "1.6.0p4", "sites"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("-V VERSION applies to 'create' and 'update' only"),
        "{}",
        out.stderr
    );
    // As Checkmk places them, and after the command.
    let out = omd(
        tmp.path(),
        &[
            "-f",
            "-V",
            "1.6.0p4",
            "update",
            "--conflict=install",
            "default",
        ],
    );
    assert_eq!(out.stderr, "Site already has version 1.6.0p4.\n");
    let out = omd(
        tmp.path(),
        &[
            "update",
            "-f",
            "-V",
            "1.6.0p4",
            "--conflict=install",
            "default",
        ],
    );
    assert_eq!(out.stderr, "Site already has version 1.6.0p4.\n");
    // Also under --conflict=ask without a terminal: the version check comes first.
    let out = omd(tmp.path(), &["-V", "1.6.0p4", "update", "default"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Site already has version 1.6.0p4.\n")
    );
}

#[test]
fn a_missing_root_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nonexistent");
    let out = omd(&missing, &["versions"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}
