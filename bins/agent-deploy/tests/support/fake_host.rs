//! A host for end-to-end tests: a fake root that `dpkg --root` installs into, the updater's
//! state directory, and the real `cmk-update-agent` run with the configuration the package
//! installed. Each test adds the calls it needs in its own `impl FakeHost` block.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `cmk-update-agent` binary the hosts run: `CMK_UPDATE_AGENT_BIN`, else the one built
/// beside `agent-deploy`; `None` (a skip, see [`testkit::skip`]) when it is not there.
pub(crate) fn updater_bin() -> Option<PathBuf> {
    let path = std::env::var_os("CMK_UPDATE_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_agent-deploy")).with_file_name("cmk-update-agent")
        });
    testkit::require(
        path.is_file(),
        &path.display().to_string(),
        "cargo build -p cmk-update-agent",
    )
    .then_some(path)
}

/// A host: a fake root that dpkg installs into, and the updater's state directory.
pub(crate) struct FakeHost {
    pub(crate) name: &'static str,
    pub(crate) root: PathBuf,
    pub(crate) var: PathBuf,
    pub(crate) updater: PathBuf,
}

impl FakeHost {
    pub(crate) fn new(dir: &Path, name: &'static str, updater: &Path) -> FakeHost {
        let root = dir.join(format!("{name}-root"));
        for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
        let var = dir.join(format!("{name}-var"));
        std::fs::create_dir_all(&var).unwrap();
        FakeHost {
            name,
            root,
            var,
            updater: updater.to_owned(),
        }
    }

    /// `dpkg -i` into the fake root (as the updater's install command, the package last).
    pub(crate) fn dpkg(&self) -> Vec<String> {
        vec![
            "dpkg".into(),
            format!("--root={}", self.root.display()),
            format!("--admindir={}", self.root.join("var/lib/dpkg").display()),
            "--force-not-root".into(),
            "--force-script-chrootless".into(),
            "--log=/dev/null".into(),
            "-i".into(),
        ]
    }

    /// [`dpkg`](Self::dpkg) as one shell-quoted command line (`--install-command`).
    pub(crate) fn install_command(&self) -> String {
        self.dpkg()
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The first installation, by hand (as an operator does with the baked package).
    pub(crate) fn install(&self, package: &Path) {
        let words = self.dpkg();
        let out = Command::new(&words[0])
            .args(&words[1..])
            .arg(package)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dpkg: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The updater with the configuration the package installed (`/etc/check_mk`).
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.updater);
        c.args(args)
            .env("MK_CONFDIR", self.root.join("etc/check_mk"))
            .env("MK_VARDIR", &self.var)
            .env_remove("MK_AGENT_UPDATER_MANUAL")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }
}
