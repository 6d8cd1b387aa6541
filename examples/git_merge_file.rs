//! `git merge-file`'s command line on the `site-merge` text engine, for the
//! `merge_file` example (`cargo run --release --example merge_file -- ...`).
//!
//! ```text
//! cargo run --release --example merge_file -- [-p] [--diff3|--zdiff3] [-L ours -L base -L theirs] \
//!     [--ours|--theirs|--union] [--marker-size N] [--diff-algorithm myers|minimal|histogram] [-q] \
//!     <current-file> <base-file> <other-file>
//! ```
//!
//! Same arguments, output and exit status as git: the number of conflicts
//! (at most 127), 255 on error, 129 on a usage error. Without `-p` the result
//! replaces `<current-file>` (atomically: a temporary file in the same
//! directory, renamed over it). Long options may be abbreviated, short ones
//! bundled (`-pq`), and options may follow the files, as with git.
//! Differences: `merge.conflictStyle` from git's configuration is not read,
//! `--object-id` and the `patience` algorithm are not supported, and
//! `--help` prints the usage (git opens its manual page). The tests in
//! `examples/tests/git_merge_file.rs` compare everything else with git.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use site_merge::{
    Algorithm, ConflictStyle, Favor, InputBuffer, MergeError, MergeOptions, MergeView,
};

const USAGE: &str = "\
usage: git merge-file [<options>] [-L <name1> [-L <orig> [-L <name2>]]] <file1> <orig-file> <file2>

    -p, --[no-]stdout     send results to standard output
    --[no-]object-id      use object IDs instead of filenames
    --[no-]diff3          use a diff3 based merge
    --[no-]zdiff3         use a zealous diff3 based merge
    --[no-]ours           for conflicts, use our version
    --[no-]theirs         for conflicts, use their version
    --[no-]union          for conflicts, use a union version
    --diff-algorithm <algorithm>
                          choose a diff algorithm
    --[no-]marker-size <n>
                          for conflicts, use this marker size
    -q, --[no-]quiet      do not warn about conflicts
    -L <name>             set labels for file1/orig-file/file2

";

/// What the command line asks for.
struct Args {
    to_stdout: bool,
    quiet: bool,
    style: ConflictStyle,
    favor: Option<Favor>,
    algorithm: Algorithm,
    marker_size: usize,
    labels: Vec<OsString>,
    files: Vec<OsString>,
}

/// A command-line problem (exit 129): git prints `error: ...`, followed by
/// the usage for unknown options; `-h` and a wrong number of files print the
/// usage alone.
enum Usage {
    /// `error: <text>` and nothing else.
    Error(String),
    /// `error: <text>` and the usage.
    Unknown(String),
    /// `error: <text>` on stderr and the usage on stdout (git treats an
    /// ambiguous option like a request for help).
    Ambiguous(String),
    /// The usage alone, on stderr.
    Plain,
    /// `-h`: the usage on stdout.
    Help,
}

/// The long options in git's order, and whether `--no-` may negate them.
const LONG: &[(&str, bool)] = &[
    ("stdout", true),
    ("object-id", true),
    ("diff3", true),
    ("zdiff3", true),
    ("ours", true),
    ("theirs", true),
    ("union", true),
    ("diff-algorithm", false),
    ("marker-size", true),
    ("quiet", true),
];

/// Resolves `given` (the text after `--` up to any `=`; `full` is the whole
/// text after `--`) to a long option and whether it is negated, the way
/// git's option parser does: an exact name or `no-` name wins; otherwise
/// `given` may abbreviate a name, a negated name, or `no-` itself; two or
/// more candidates are ambiguous, reported with the last two.
fn long_option(given: &str, full: &str) -> Result<(&'static str, bool), Usage> {
    let negated_rest = given.strip_prefix("no-");
    for &(name, negatable) in LONG {
        if name == given {
            return Ok((name, false));
        }
        if negatable && negated_rest == Some(name) {
            return Ok((name, true));
        }
    }
    let mut candidates: Vec<(&'static str, bool)> = Vec::new();
    for &(name, negatable) in LONG {
        if name.starts_with(given) {
            candidates.push((name, false));
        } else if negatable
            && (negated_rest.is_some_and(|rest| name.starts_with(rest)) || "no-".starts_with(given))
        {
            candidates.push((name, true));
        }
    }
    let no = |negated: bool| if negated { "no-" } else { "" };
    match candidates.as_slice() {
        [] => Err(Usage::Unknown(format!("unknown option `{full}'"))),
        [one] => Ok(*one),
        [.., (a, a_neg), (b, b_neg)] => Err(Usage::Ambiguous(format!(
            "ambiguous option: {full} (could be --{}{a} or --{}{b})",
            no(*a_neg),
            no(*b_neg)
        ))),
    }
}

/// The marker size as git reads it: C's `strtol` in base 10 (leading white
/// space and a sign allowed, out-of-range values saturated), stored in a C
/// `int` (so truncated to 32 bits); zero or less means the default.
fn parse_marker_size(v: &str) -> Result<usize, Usage> {
    let not_a_number = || Usage::Error("option `marker-size' expects a numerical value".into());
    let t = v.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    let magnitude = digits.bytes().fold(0i128, |n, b| {
        (n * 10 + i128::from(b - b'0')).min(i128::from(u64::MAX))
    });
    let long = if negative { -magnitude } else { magnitude };
    let long = long.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    // The C `int` keeps the low 32 bits.
    let int = long as i32;
    Ok(usize::try_from(int).unwrap_or(0))
}

fn parse_algorithm(v: &str) -> Result<Algorithm, Usage> {
    match v {
        "myers" | "default" => Ok(Algorithm::Myers),
        "minimal" => Ok(Algorithm::Minimal),
        "histogram" => Ok(Algorithm::Histogram),
        "patience" => Err(Usage::Error(
            "the patience diff algorithm is not supported by this merge_file".into(),
        )),
        _ => Err(Usage::Error(
            "option diff-algorithm accepts \"myers\", \"minimal\", \"patience\" and \"histogram\""
                .into(),
        )),
    }
}

fn parse(argv: Vec<OsString>) -> Result<Args, Usage> {
    let mut a = Args {
        to_stdout: false,
        quiet: false,
        style: ConflictStyle::Merge,
        favor: None,
        algorithm: Algorithm::Myers,
        marker_size: 0,
        labels: Vec::new(),
        files: Vec::new(),
    };
    let mut it = argv.into_iter();
    let mut only_files = false;
    let label = |a: &mut Args, v: OsString| -> Result<(), Usage> {
        if a.labels.len() >= 3 {
            return Err(Usage::Error("too many labels on the command line".into()));
        }
        a.labels.push(v);
        Ok(())
    };
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        if only_files || text == "-" || !text.starts_with('-') {
            a.files.push(arg);
            continue;
        }
        if text == "--" {
            only_files = true;
            continue;
        }
        if text == "--help" {
            return Err(Usage::Help);
        }
        if let Some(long) = text.strip_prefix("--") {
            let (given, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let (name, negated) = long_option(given, long)?;
            let takes_value = matches!(name, "diff-algorithm" | "marker-size") && !negated;
            if !takes_value && value.is_some() {
                let no = if negated { "no-" } else { "" };
                return Err(Usage::Error(format!("option `{no}{name}' takes no value")));
            }
            let mut value = || -> Result<String, Usage> {
                match &value {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .map(|v| v.to_string_lossy().into_owned())
                        .ok_or_else(|| Usage::Error(format!("option `{name}' requires a value"))),
                }
            };
            match (name, negated) {
                ("stdout", n) => a.to_stdout = !n,
                ("quiet", n) => a.quiet = !n,
                ("object-id", false) => {
                    return Err(Usage::Error(
                        "--object-id is not supported by this merge_file".into(),
                    ));
                }
                ("object-id", true) => {}
                ("diff3", n) => {
                    a.style = if n {
                        ConflictStyle::Merge
                    } else {
                        ConflictStyle::Diff3
                    }
                }
                ("zdiff3", n) => {
                    a.style = if n {
                        ConflictStyle::Merge
                    } else {
                        ConflictStyle::ZealousDiff3
                    }
                }
                ("ours", n) => a.favor = if n { None } else { Some(Favor::Ours) },
                ("theirs", n) => a.favor = if n { None } else { Some(Favor::Theirs) },
                ("union", n) => a.favor = if n { None } else { Some(Favor::Union) },
                ("diff-algorithm", false) => a.algorithm = parse_algorithm(&value()?)?,
                ("marker-size", true) => a.marker_size = 0,
                ("marker-size", false) => a.marker_size = parse_marker_size(&value()?)?,
                _ => return Err(Usage::Unknown(format!("unknown option `{name}'"))),
            }
            continue;
        }
        // Bundled short options: -p, -q, -h, -L<name> or -L <name>.
        let shorts = &text[1..];
        for (pos, c) in shorts.char_indices() {
            match c {
                'p' => a.to_stdout = true,
                'q' => a.quiet = true,
                'h' => return Err(Usage::Help),
                'L' => {
                    let rest = &shorts[pos + 1..];
                    let v = if rest.is_empty() {
                        it.next()
                            .ok_or_else(|| Usage::Error("switch `L' requires a value".into()))?
                    } else {
                        OsString::from(rest)
                    };
                    label(&mut a, v)?;
                    break;
                }
                other => return Err(Usage::Unknown(format!("unknown switch `{other}'"))),
            }
        }
    }
    if a.files.len() != 3 {
        return Err(Usage::Plain);
    }
    Ok(a)
}

fn label_bytes(s: &OsString) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        s.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        s.to_string_lossy().into_owned().into_bytes()
    }
}

/// Writes the merge over `path` through a temporary file in the same directory.
fn replace_atomically(path: &Path, merged: &MergeView<'_>) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let perms = std::fs::metadata(path).map(|m| m.permissions()).ok();
    let mut n = std::process::id();
    loop {
        let tmp = dir.join(format!(".{name}.merge-{n}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => {
                let done = merged
                    .write_to(&f)
                    .and_then(|()| f.sync_all())
                    .and_then(|()| match &perms {
                        Some(p) => std::fs::set_permissions(&tmp, p.clone()),
                        None => Ok(()),
                    })
                    .and_then(|()| std::fs::rename(&tmp, path));
                if done.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                return done;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n = n.wrapping_add(1),
            Err(e) => return Err(e),
        }
    }
}

/// Merges as the parsed command line says; the exit status.
fn merge_files(args: Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let quiet = args.quiet;
    let mut error = |msg: String| {
        if !quiet {
            // Nothing is left to report a failing stderr to.
            let _ = writeln!(stderr, "error: {msg}");
        }
        255u8
    };
    let mut data: Vec<InputBuffer> = Vec::with_capacity(3);
    for f in &args.files {
        match InputBuffer::read(Path::new(f)) {
            Ok(d) => data.push(d),
            Err(e) => {
                let what = if std::fs::metadata(f).is_err() {
                    "stat"
                } else {
                    "read"
                };
                return error(format!(
                    "Could not {what} {}: {}",
                    f.to_string_lossy(),
                    io_text(&e)
                ));
            }
        }
    }
    let name = |i: usize| {
        args.labels
            .get(i)
            .map(label_bytes)
            .unwrap_or_else(|| label_bytes(&args.files[i]))
    };
    let opts = MergeOptions::new()
        .style(args.style)
        .favor(args.favor)
        .algorithm(args.algorithm)
        .marker_size(args.marker_size)
        .labels(Some(&name(0)), Some(&name(1)), Some(&name(2)));
    let out = match opts.merge_view(&data[1], &data[0], &data[2]) {
        Ok(out) => out,
        Err(e) => {
            let which = match e {
                MergeError::Binary(input) | MergeError::TooLarge { input, .. } => input,
                _ => site_merge::Input::Ours,
            };
            let idx = match which {
                site_merge::Input::Ours => 0,
                site_merge::Input::Base => 1,
                site_merge::Input::Theirs => 2,
            };
            return error(format!(
                "Cannot merge binary files: {}",
                args.files[idx].to_string_lossy()
            ));
        }
    };
    if args.to_stdout {
        if let Err(e) = out.write_to(&mut *stdout) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return 0;
            }
            return error(format!(
                "Could not write to {}: {}",
                args.files[0].to_string_lossy(),
                io_text(&e)
            ));
        }
    } else if let Err(e) = replace_atomically(Path::new(&args.files[0]), &out) {
        return error(format!(
            "Could not write to {}: {}",
            args.files[0].to_string_lossy(),
            io_text(&e)
        ));
    }
    out.conflicts().min(127) as u8
}

/// The OS error text without Rust's " (os error N)" suffix, as git prints it.
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Runs `git merge-file` with the arguments `argv` (without the program
/// name), writing to `stdout` and `stderr`; returns the exit status: the
/// number of conflicts (at most 127), 255 on error, 129 on a usage error.
pub fn run(argv: Vec<OsString>, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    // A failing stdout or stderr cannot be reported anywhere else.
    match parse(argv) {
        Ok(args) => merge_files(args, stdout, stderr),
        Err(usage) => {
            let _ = match usage {
                Usage::Error(msg) => writeln!(stderr, "error: {msg}"),
                Usage::Unknown(msg) => write!(stderr, "error: {msg}\n{USAGE}"),
                Usage::Ambiguous(msg) => writeln!(stderr, "error: {msg}")
                    .and_then(|()| write!(stdout, "{USAGE}"))
                    .and_then(|()| stdout.flush()),
                Usage::Plain => write!(stderr, "{USAGE}"),
                Usage::Help => write!(stdout, "{USAGE}").and_then(|()| stdout.flush()),
            };
            129
        }
    }
}
