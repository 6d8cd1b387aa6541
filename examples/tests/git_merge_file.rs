//! `merge_file`'s command line against the real `git merge-file`: for the
//! same arguments in the same directory, the same exit status, standard
//! output, standard error and resulting first file. (`--help` is left out:
//! git shows its manual page there, `merge_file` the usage.)
// Tests may unwrap: a failure is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use toolkit_examples::git_merge_file;

/// What one run left behind.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
    /// The first file (`A`) afterwards.
    current: String,
}

/// Three inputs named `A` (current), `B` (base) and `C` (other) in a
/// directory of their own.
struct Inputs {
    dir: tempfile::TempDir,
    files: [(&'static str, Vec<u8>); 3],
}

impl Inputs {
    fn new(current: &[u8], base: &[u8], other: &[u8]) -> Self {
        let inputs = Inputs {
            dir: tempfile::tempdir().unwrap(),
            files: [
                ("A", current.to_vec()),
                ("B", base.to_vec()),
                ("C", other.to_vec()),
            ],
        };
        inputs.restore();
        inputs
    }

    fn restore(&self) {
        for (name, data) in &self.files {
            std::fs::write(self.dir.path().join(name), data).unwrap();
        }
    }

    /// `args` with every file name (`A`, `B`, `C`, `missing`) made absolute,
    /// so that both runs name the files, and label them, alike; `A B C` is
    /// appended unless a file is named.
    fn argv(&self, args: &[&str]) -> Vec<OsString> {
        let is_file = |a: &&str| ["A", "B", "C", "missing"].contains(a);
        let mut argv: Vec<&str> = args.to_vec();
        if !args.iter().any(is_file) {
            argv.extend(["A", "B", "C"]);
        }
        argv.iter()
            .map(|a| {
                if is_file(a) {
                    self.dir.path().join(a).into_os_string()
                } else {
                    OsString::from(a)
                }
            })
            .collect()
    }

    fn current(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.path().join("A")).unwrap()).into_owned()
    }

    fn git(&self, args: &[&str]) -> Outcome {
        self.restore();
        let out = testkit::git_in(self.dir.path())
            .arg("merge-file")
            .args(self.argv(args))
            .output()
            .unwrap();
        Outcome {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            current: self.current(),
        }
    }

    fn ours(&self, args: &[&str]) -> Outcome {
        self.restore();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let status = git_merge_file::run(self.argv(args), &mut stdout, &mut stderr);
        Outcome {
            status: i32::from(status),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            current: self.current(),
        }
    }

    /// Runs every argument list with git and with ours; panics listing all
    /// that differ.
    fn compare(&self, what: &str, cases: &[&[&str]]) {
        let mut differ = Vec::new();
        for args in cases {
            let (git, ours) = (self.git(args), self.ours(args));
            if git != ours {
                differ.push(format!(
                    "{what} {args:?}:\n  git:  {git:?}\n  ours: {ours:?}"
                ));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }
}

/// Two edit sites that both sides changed (conflicts) and one only ours did.
fn conflicting() -> Inputs {
    Inputs::new(
        b"one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n",
        b"one\n2\nthree\nfour\nfive\nsix\nseven\neight\n9\nten\n",
        b"one\nTWO\nthree\nfour\nfive\nsix\nseven\neight\nNINE\nten\n",
    )
}

#[test]
fn output_options_match_git() {
    if !testkit::git_available("the merge_file command-line tests") {
        return;
    }
    conflicting().compare(
        "conflicts",
        &[
            &["-p"],
            &["-p", "--diff3"],
            &["-p", "--zdiff3"],
            &["-p", "--no-diff3"],
            &["-p", "-L", "mine", "-L", "old", "-L", "yours"],
            &["-p", "-Lmine", "-Lold"],
            &["-p", "--marker-size=10"],
            &["-p", "--marker-size", "3"],
            &["-p", "--marker-size=0"],
            &["-p", "--marker-size= +4"],
            &["-p", "--marker-size=4294967297"],
            &["-p", "--no-marker-size"],
            &["-p", "--ours"],
            &["-p", "--theirs"],
            &["-p", "--union"],
            &["-p", "--union", "--no-union"],
            &["-pq"],
            &["-p", "--diff-algorithm=histogram"],
            &["-p", "--diff-alg", "minimal"],
            &["-p", "--diff-algorithm=default"],
            &["--stdout"],
            &["--st"],
            &["A", "-p", "B", "C"],
            &["-p", "--", "A", "B", "C"],
        ],
    );
}

#[test]
fn in_place_merges_match_git() {
    if !testkit::git_available("the merge_file command-line tests") {
        return;
    }
    conflicting().compare(
        "conflicts",
        &[
            &[],
            &["-q"],
            &["--diff3"],
            &["-p", "--no-stdout"],
            &["--ours"],
        ],
    );
    let clean = Inputs::new(
        b"1\n2\n3\n4\nfive\n",
        b"1\n2\n3\n4\n5\n",
        b"one\n2\n3\n4\n5\n",
    );
    clean.compare("clean", &[&[], &["-p"]]);
}

#[test]
fn line_ends_match_git() {
    if !testkit::git_available("the merge_file command-line tests") {
        return;
    }
    let crlf = Inputs::new(b"a\r\nB\r\nc\r\n", b"a\r\nb\r\nc\r\n", b"a\r\nX\r\nc\r\n");
    crlf.compare("crlf", &[&["-p"], &["-p", "--diff3"], &[]]);
    let unterminated = Inputs::new(b"a\nb\nours", b"a\nb\nc", b"a\nb\ntheirs");
    unterminated.compare(
        "no final newline",
        &[&["-p"], &["-p", "--zdiff3"], &["-p", "--union"]],
    );
}

#[test]
fn errors_and_usage_match_git() {
    if !testkit::git_available("the merge_file command-line tests") {
        return;
    }
    conflicting().compare(
        "errors",
        &[
            &["-p", "missing", "B", "C"],
            &["-p", "A", "missing", "C"],
            &["-p", "A", "B"],
            &["-p", "A", "B", "C", "A"],
            &["-p", "--bogus"],
            &["-p", "--bogus=1"],
            &["-p", "-x"],
            &["-h"],
            &["-ph"],
            &["--hel"],
            &["-p", "--dif=histogram"],
            &["-p", "--o"],
            &["-p", "--no-o"],
            &["-p", "--n"],
            &["-p", "--=x"],
            &["-p", "--no-dif=3"],
            &["-p", "--no-d"],
            &["-p", "--no-no-stdout"],
            &["-p", "--no-diff-algorithm"],
            &["-p", "--stdout=1"],
            &["-p", "--no-marker-size=5"],
            &["-p", "--marker-size=abc"],
            &["-p", "--marker-size=5k"],
            &["-p", "--marker-size="],
            &["-p", "--marker-size"],
            &["-p", "--diff-algorithm=foo"],
            &["-p", "-L", "1", "-L", "2", "-L", "3", "-L", "4"],
            &["-p", "-L"],
        ],
    );
    let binary = Inputs::new(b"a\0b\n", b"a\n", b"c\n");
    binary.compare("binary", &[&["-p"], &[], &["-q"]]);
}

/// Config-like lines, with the edits of `edit` applied to every 40th line.
fn big(lines: usize, edit: impl Fn(usize) -> Option<String>) -> Vec<u8> {
    (0..lines)
        .map(|i| match edit(i) {
            Some(line) if i % 40 == 7 => line,
            _ => format!("option_{i} = value {} # setting\n", i * 7919 % 1000),
        })
        .collect::<String>()
        .into_bytes()
}

#[test]
fn large_inputs_read_through_huge_page_buffers_match_git() {
    if !testkit::git_available("the merge_file command-line tests") {
        return;
    }
    // About 1.5 MiB per file: over the size where inputs are mapped.
    let n = 40_000;
    let base = big(n, |_| None);
    let ours = big(n, |i| (i % 3 != 0).then(|| format!("ours {i}\n")));
    let theirs = big(n, |i| (i % 3 != 1).then(|| format!("theirs {i}\n")));
    assert!(base.len() > 1 << 20);
    let large = Inputs::new(&ours, &base, &theirs);
    large.compare("large", &[&["-p"], &[], &["-p", "--zdiff3"]]);
}

/// The `merge_file` example next to this test's executable, when cargo
/// built it (`cargo test` builds the examples unless told which target).
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir
        .join("examples")
        .join(format!("merge_file{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

#[test]
fn the_example_program_exits_with_the_conflict_count() {
    let Some(bin) = example_binary() else {
        testkit::skip("the merge_file example is not built (run the whole `cargo test`)");
        return;
    };
    let inputs = conflicting();
    let argv = inputs.argv(&["-p"]);
    let out = std::process::Command::new(&bin)
        .args(&argv)
        .output()
        .unwrap();
    let expected = inputs.ours(&["-p"]);
    assert_eq!(out.status.code(), Some(expected.status));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected.stdout);
    assert!(expected.status > 0, "the inputs conflict");

    // In place: the first file is replaced, nothing else is left behind.
    inputs.restore();
    let status = std::process::Command::new(&bin)
        .args(inputs.argv(&[]))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(expected.status));
    assert_eq!(inputs.current(), expected.stdout);
    let mut names: Vec<String> = std::fs::read_dir(inputs.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["A", "B", "C"]);
}

/// A standard output that is full.
struct Full;

impl std::io::Write for Full {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from_raw_os_error(28))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_is_an_error_that_keeps_the_inputs() {
    let inputs = conflicting();
    let mut stderr = Vec::new();
    let status = git_merge_file::run(inputs.argv(&["-p"]), &mut Full, &mut stderr);
    assert_eq!(status, 255);
    let stderr = String::from_utf8_lossy(&stderr);
    let a: &Path = &inputs.dir.path().join("A");
    assert_eq!(
        stderr,
        format!(
            "error: Could not write to {}: No space left on device\n",
            a.display()
        )
    );
    assert_eq!(inputs.current().as_bytes(), inputs.files[0].1.as_slice());
    // -q silences the message, not the status.
    let mut stderr = Vec::new();
    let status = git_merge_file::run(inputs.argv(&["-pq"]), &mut Full, &mut stderr);
    assert_eq!((status, stderr.len()), (255, 0));
}
