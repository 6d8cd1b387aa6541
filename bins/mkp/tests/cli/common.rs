//! Shared helpers: running the binary, temporary sites, package builders, tree snapshots.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use mkp_format::{Manifest, PackOptions, PackageName, PackagePart, PackageVersion, PartFile};

/// The binary under test, in standalone mode whatever the environment of the test run
/// (no `$OMD_ROOT`, no site version, no fault hook); [`TestSite::cmd`] adds a site.
pub(crate) fn mkp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mkp"));
    c.env_remove("OMD_ROOT")
        .env_remove("MKP_SITE_VERSION")
        .env_remove("MKP_SITE_FAULT");
    c
}

/// Runs standalone `mkp` in `cwd`.
pub(crate) fn run(args: &[&str], cwd: &Path) -> Output {
    mkp().args(args).current_dir(cwd).output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `cmd` with its stdout closed before it writes; returns its status and stderr.
pub(crate) fn run_with_closed_stdout(mut cmd: Command) -> (ExitStatus, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), err)
}

/// The site version used unless a test sets another.
pub(crate) const SITE_VERSION: &str = "2.4.0p1";

pub(crate) struct TestSite {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) version: String,
}

impl TestSite {
    pub(crate) fn new() -> TestSite {
        TestSite {
            dir: tempfile::tempdir().unwrap(),
            version: SITE_VERSION.to_string(),
        }
    }

    pub(crate) fn with_version(version: &str) -> TestSite {
        let mut s = TestSite::new();
        s.version = version.to_string();
        s
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = mkp();
        c.env("OMD_ROOT", self.root())
            .env("MKP_SITE_VERSION", &self.version);
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs with the `MKP_SITE_FAULT` test hook set to `fault` (`error:N`, `abort:N`, ...).
    pub(crate) fn run_with_fault(&self, fault: &str, args: &[&str]) -> Output {
        self.cmd()
            .env("MKP_SITE_FAULT", fault)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs, asserts exit 0, returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "mkp {args:?} failed: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs, asserts the exit code, returns stderr.
    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "mkp {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub(crate) fn part_dir(&self, part: PackagePart) -> PathBuf {
        self.root().join(part.site_path())
    }

    pub(crate) fn write(&self, rel: &str, data: &[u8]) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    /// Stores an MKP via `add` and returns `<name> <version>`.
    pub(crate) fn add(&self, mkp: &Path) -> String {
        self.ok(&["add", mkp.to_str().unwrap()])
    }

    /// The installed manifest of `name` (`var/check_mk/packages/<name>`).
    pub(crate) fn installed(&self, name: &str) -> Manifest {
        let path = self.path(&format!("var/check_mk/packages/{name}"));
        Manifest::from_info(&fs::read_to_string(path).unwrap()).unwrap()
    }

    pub(crate) fn state_of(&self, name: &str, version: &str) -> Option<String> {
        let table = self.ok(&["list"]);
        table.lines().skip(2).find_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells.first() == Some(&name) && cells.get(1) == Some(&version)).then(|| {
                let idx = l.find(" Enabled").or_else(|| l.find(" Disabled")).unwrap();
                l[idx + 1..].trim_end().to_string()
            })
        })
    }

    /// Everything under the site root except the lock files: path -> (kind, mode, content,
    /// mtime for files). The lock's holder note (`.site-lock`) is left behind by a holder
    /// killed with SIGKILL, by design: the next holder overwrites it.
    pub(crate) fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(self.root(), self.root(), &mut out);
        out.remove(Path::new("var/check_mk/mkp-transaction.lock"));
        out.remove(Path::new(mkp_format::SITE_LOCK_FILE));
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let meta = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            out.insert(rel, format!("dir {mode:o}"));
            walk(root, &p, out);
        } else if meta.file_type().is_symlink() {
            out.insert(
                rel,
                format!("link {}", fs::read_link(&p).unwrap().display()),
            );
        } else {
            let data = fs::read(&p).unwrap();
            out.insert(
                rel,
                format!(
                    "file {mode:o} {} {} {:?}",
                    meta.mtime(),
                    meta.mtime_nsec(),
                    String::from_utf8_lossy(&data)
                ),
            );
        }
    }
}

/// A package description for [`build`].
pub(crate) struct Pkg<'a> {
    pub(crate) name: &'a str,
    pub(crate) version: &'a str,
    pub(crate) min: &'a str,
    pub(crate) until: Option<&'a str>,
    pub(crate) files: Vec<(PackagePart, &'a str, &'a [u8])>,
}

impl<'a> Pkg<'a> {
    pub(crate) fn new(name: &'a str, version: &'a str) -> Pkg<'a> {
        Pkg {
            name,
            version,
            min: "2.3.0",
            until: None,
            files: Vec::new(),
        }
    }

    pub(crate) fn file(mut self, part: PackagePart, path: &'a str, data: &'a [u8]) -> Self {
        self.files.push((part, path, data));
        self
    }

    pub(crate) fn min(mut self, v: &'a str) -> Self {
        self.min = v;
        self
    }

    pub(crate) fn until(mut self, v: &'a str) -> Self {
        self.until = Some(v);
        self
    }

    pub(crate) fn manifest(&self) -> Manifest {
        let mut files: Vec<(PackagePart, Vec<String>)> = Vec::new();
        for (part, path, _) in &self.files {
            match files.iter_mut().find(|(p, _)| p == part) {
                Some((_, list)) => list.push(path.to_string()),
                None => files.push((*part, vec![path.to_string()])),
            }
        }
        Manifest::new(
            PackageName::new(self.name).unwrap(),
            PackageVersion::new(self.version).unwrap(),
            format!("Title of {}", self.name),
            "A test package",
            "Tester",
            "",
            self.min,
            self.until.map(str::to_string),
            files,
        )
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let manifest = self.manifest();
        let mut tars = Vec::new();
        for (part, _) in &manifest.files {
            let files: Vec<PartFile> = self
                .files
                .iter()
                .filter(|(p, _, _)| p == part)
                .map(|(_, path, data)| PartFile::new(*path, *data))
                .collect();
            tars.push((*part, mkp_format::build_part_tar(&files).unwrap()));
        }
        mkp_format::write_mkp(&manifest, &tars, &PackOptions::default().mtime(0)).unwrap()
    }

    /// Writes `<dir>/<name>-<version>.mkp`.
    pub(crate) fn write_to(&self, dir: &Path) -> PathBuf {
        let p = dir.join(format!("{}-{}.mkp", self.name, self.version));
        fs::write(&p, self.bytes()).unwrap();
        p
    }
}

pub(crate) fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A gzip tar with exactly these members (for packages our writer refuses to build).
pub(crate) fn raw_mkp(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// A part tar holding one file.
pub(crate) fn part_tar(path: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, path, data).unwrap();
    builder.into_inner().unwrap()
}
