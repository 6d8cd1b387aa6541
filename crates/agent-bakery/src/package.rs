//! Package contents and the deb, rpm and tgz builders (spec bakery.md §5.2–5.5).
//!
//! Packages are reproducible: every timestamp is [`PACKAGE_MTIME`], owners are root, entries
//! are sorted, and gzip headers carry no time or name.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::Compression;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
pub use crate::gzip::DeflateCache;
use crate::model::{Format, UpdaterConfig};

/// The modification time of every packaged file and archive member (2024-01-01T00:00:00Z)
/// \[ours\]: a fixed time makes packages reproducible.
pub const PACKAGE_MTIME: u64 = 1_704_067_200;
/// Where the agent's configuration lives on the host.
pub const CONFDIR: &str = "/etc/check_mk";
/// The package name of every platform.
pub const PACKAGE_NAME: &str = "check-mk-agent";

/// A package platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Platform {
    /// `linux_deb`
    #[serde(rename = "linux_deb")]
    LinuxDeb,
    /// `linux_rpm`
    #[serde(rename = "linux_rpm")]
    LinuxRpm,
    /// `linux_tgz`
    #[serde(rename = "linux_tgz")]
    LinuxTgz,
}

impl Platform {
    /// Every platform we bake.
    pub const ALL: [Platform; 3] = [Platform::LinuxDeb, Platform::LinuxRpm, Platform::LinuxTgz];

    /// The platform id (`linux_deb`, …), also the directory under `var/check_mk/agents/`.
    pub fn id(self) -> &'static str {
        match self {
            Platform::LinuxDeb => "linux_deb",
            Platform::LinuxRpm => "linux_rpm",
            Platform::LinuxTgz => "linux_tgz",
        }
    }

    /// Reads a platform id.
    pub fn parse(id: &str) -> Result<Platform> {
        Platform::ALL
            .into_iter()
            .find(|p| p.id() == id)
            .ok_or_else(|| Error::Platform(id.to_string()))
    }

    /// The download file name of §5.5.
    pub fn file_name(self, cmk_version: &str, aghash: &str) -> String {
        match self {
            Platform::LinuxDeb => format!("check-mk-agent_{cmk_version}-{aghash}_all.deb"),
            Platform::LinuxRpm => format!("check-mk-agent-{cmk_version}-{aghash}.noarch.rpm"),
            Platform::LinuxTgz => format!("check-mk-agent_{cmk_version}-{aghash}.tar.gz"),
        }
    }
}

/// One file of a package.
#[derive(Debug, Clone)]
pub struct PayloadFile {
    /// Absolute path on the host (`/usr/bin/check_mk_agent`).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// The bytes (shared between packages).
    pub content: Arc<Vec<u8>>,
}

/// Everything one package holds.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// Files, sorted by path.
    pub files: Vec<PayloadFile>,
    /// The deb postinst / rpm %post script, if any.
    pub postinst: Option<String>,
    /// Extra lines for the hash manifest (source file modes).
    manifest_extra: Vec<String>,
}

/// An agent file read from the site.
#[derive(Debug, Clone)]
struct SourceFile {
    mode: u32,
    content: Arc<Vec<u8>>,
}

/// The files shipped in `share/check_mk/agents/` (with `local/` overrides) that packages
/// are made of.
#[derive(Debug, Clone)]
pub struct AgentFiles {
    agent: Vec<(String, u32, SourceFile)>,
    updater_binary: Option<SourceFile>,
    updater_script: Option<SourceFile>,
    binary_path: PathBuf,
    script_path: PathBuf,
}

/// The agent files of a Linux package: (file under `agents/`, path on the host, mode, required).
const LINUX_FILES: &[(&str, &str, u32, bool)] = &[
    (
        "check_mk_agent.linux",
        "/usr/bin/check_mk_agent",
        0o755,
        true,
    ),
    (
        "check_mk_caching_agent.linux",
        "/usr/bin/check_mk_caching_agent",
        0o755,
        false,
    ),
    ("mk-job", "/usr/bin/mk-job", 0o755, false),
];

fn read_source(path: &Path) -> Result<Option<SourceFile>> {
    match fs::read(path) {
        Ok(content) => {
            let mode = fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .permissions()
                .mode()
                & 0o7777;
            Ok(Some(SourceFile {
                mode,
                content: Arc::new(content),
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// `local/share/check_mk/agents/<rel>` if present, else `share/check_mk/agents/<rel>`.
fn site_agent_file(root: &Path, rel: &str) -> Result<(PathBuf, Option<SourceFile>)> {
    let local = root.join("local/share/check_mk/agents").join(rel);
    if let Some(f) = read_source(&local)? {
        return Ok((local, Some(f)));
    }
    let shipped = root.join("share/check_mk/agents").join(rel);
    let f = read_source(&shipped)?;
    Ok((shipped, f))
}

impl AgentFiles {
    /// Reads the agent files of the site at `root`. `updater_binary` overrides the site's
    /// `share/check_mk/agents/plugins/cmk-update-agent`. A missing required agent file is an
    /// error; a missing updater is an error only when a package needs it.
    pub fn read(root: &Path, updater_binary: Option<&Path>) -> Result<AgentFiles> {
        let mut agent = Vec::new();
        for (rel, dest, mode, required) in LINUX_FILES {
            let (path, file) = site_agent_file(root, rel)?;
            match file {
                Some(f) => agent.push(((*dest).to_string(), *mode, f)),
                None if *required => {
                    return Err(Error::MissingFile {
                        path,
                        reason: format!("the Linux agent, packaged as {dest}"),
                    });
                }
                None => {}
            }
        }
        let (binary_path, updater_binary) = match updater_binary {
            Some(p) => (p.to_path_buf(), read_source(p)?),
            None => site_agent_file(root, "plugins/cmk-update-agent")?,
        };
        let (script_path, updater_script) = site_agent_file(root, "plugins/cmk_update_agent.py")?;
        Ok(AgentFiles {
            agent,
            updater_binary,
            updater_script,
            binary_path,
            script_path,
        })
    }

    /// The payload of one package: the agent, and the updater when `config` is given.
    pub fn payload(
        &self,
        config: Option<&UpdaterConfig>,
        cfg_text: Option<&str>,
    ) -> Result<Payload> {
        let mut files = Vec::new();
        let mut extra = Vec::new();
        for (dest, mode, src) in &self.agent {
            files.push(PayloadFile {
                path: dest.clone(),
                mode: *mode,
                content: src.content.clone(),
            });
            extra.push(format!("source {dest} mode {:o}", src.mode));
        }
        let mut postinst = None;
        if let (Some(cfg), Some(cfg_text)) = (config, cfg_text) {
            let (plugin, wanted) = match cfg.format {
                Format::Binary => (&self.updater_binary, &self.binary_path),
                Format::Script => (&self.updater_script, &self.script_path),
            };
            let plugin = plugin.as_ref().ok_or_else(|| Error::MissingFile {
                path: wanted.clone(),
                reason: "the agent updater, which the \"Agent updater\" rule activates".into(),
            })?;
            extra.push(format!("source updater mode {:o}", plugin.mode));
            let plugin_path = format!(
                "/usr/lib/check_mk_agent/plugins/{}/cmk-update-agent",
                cfg.interval
            );
            let text = |s: String| Arc::new(s.into_bytes());
            files.push(PayloadFile {
                path: plugin_path.clone(),
                mode: 0o755,
                content: plugin.content.clone(),
            });
            files.push(PayloadFile {
                path: "/usr/bin/cmk-update-agent".into(),
                mode: 0o755,
                content: text(format!(
                    "#!/bin/sh\n# Created by Check_MK Agent Bakery.\n\
                     export MK_AGENT_UPDATER_MANUAL=1\n\
                     export MK_CONFDIR=\"${{MK_CONFDIR:-{CONFDIR}}}\"\n\
                     exec {plugin_path} \"$@\"\n"
                )),
            });
            files.push(PayloadFile {
                path: format!("{CONFDIR}/cmk-update-agent.cfg"),
                mode: if cfg.has_secret() { 0o600 } else { 0o644 },
                content: text(cfg_text.to_string()),
            });
            files.push(PayloadFile {
                path: "/etc/prelink.conf.d/cmk-update-agent.conf".into(),
                mode: 0o644,
                content: text(format!("-b {plugin_path}\n")),
            });
            files.push(PayloadFile {
                path: "/usr/lib/systemd/system/cmk-update-agent.service".into(),
                mode: 0o644,
                content: text(
                    "[Unit]\nDescription=Checkmk agent updater: install a downloaded agent\n\n\
                     [Service]\nType=oneshot\nExecStart=/usr/bin/cmk-update-agent install\n"
                        .into(),
                ),
            });
            files.push(PayloadFile {
                path: "/usr/lib/systemd/system/cmk-update-agent.timer".into(),
                mode: 0o644,
                content: text(
                    "[Unit]\nDescription=Checkmk agent updater: install pending agents every minute\n\n\
                     [Timer]\nOnCalendar=minutely\n\n[Install]\nWantedBy=timers.target\n"
                        .into(),
                ),
            });
            postinst = Some(POSTINST.to_string());
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Payload {
            files,
            postinst,
            manifest_extra: extra,
        })
    }
}

/// The maintainer script (deb postinst, rpm %post): registers the prelink blacklist file.
/// `DPKG_ROOT`/`RPM_INSTALL_PREFIX`-free except for `$DPKG_ROOT`, which dpkg sets for
/// installs into another root.
pub const POSTINST: &str = "#!/bin/sh\n\
# Created by Check_MK Agent Bakery.\n\
PRELINK_CONF=\"${DPKG_ROOT:-}/etc/prelink.conf\"\n\
LINE='-c /etc/prelink.conf.d/cmk-update-agent.conf'\n\
if [ -f \"$PRELINK_CONF\" ] && ! grep -qxF -- \"$LINE\" \"$PRELINK_CONF\"; then\n\
    echo \"$LINE\" >> \"$PRELINK_CONF\"\n\
fi\n\
exit 0\n";

/// The agent hash of §5.2 \[ours\]: the first 16 hex characters of SHA-256 over a canonical
/// manifest of toolkit version, Checkmk version, platform, each file (path, mode, SHA-256 of
/// its content) and the maintainer script. mtimes are not part of it.
pub fn agent_hash(payload: &Payload, platform: Platform, cmk_version: &str) -> String {
    let mut m = String::new();
    m.push_str(&format!(
        "cmk-toolkit {}\0checkmk {cmk_version}\0platform {}\n",
        env!("CARGO_PKG_VERSION"),
        platform.id()
    ));
    for f in &payload.files {
        m.push_str(&format!(
            "{}\0{:o}\0{}\n",
            f.path,
            f.mode,
            hex::encode(Sha256::digest(f.content.as_slice()))
        ));
    }
    if platform != Platform::LinuxTgz
        && let Some(s) = &payload.postinst
    {
        m.push_str(&format!(
            "postinst\0{}\n",
            hex::encode(Sha256::digest(s.as_bytes()))
        ));
    }
    for line in &payload.manifest_extra {
        m.push_str(line);
        m.push('\n');
    }
    hex::encode(Sha256::digest(m.as_bytes()))[..16].to_string()
}

/// What goes into a package's metadata.
#[derive(Debug, Clone)]
pub struct PackageMeta<'a> {
    /// Checkmk version of the site (`2.3.0p9`).
    pub cmk_version: &'a str,
    /// The bake revision (1 when `apply_bake_revision` is off).
    pub revision: u64,
    /// The agent hash.
    pub aghash: &'a str,
    /// gzip level for tgz (0 = "uncompressed").
    pub tgz_level: u32,
}

fn parent_dirs(files: &[PayloadFile]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut p = f.path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if p.is_empty() {
                break;
            }
            dirs.insert(p.to_string());
        }
    }
    dirs
}

/// Appends an entry under exactly `name` (the tar crate would drop a leading `./`, which
/// dpkg's own archives keep).
fn append_raw<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    mut h: tar::Header,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    if name.starts_with("./") && name.len() < 100 {
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data)
    } else {
        b.append_data(&mut h, name, data)
    }
}

fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(PACKAGE_MTIME);
    h.set_uid(0);
    h.set_gid(0);
    // Names of root; these calls only fail for names longer than the field.
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h
}

/// Entries at least this large get chunks of their own, apart from their header, so that the
/// same content under another path (the updater plug-in under `plugins/<interval>/`) is
/// compressed once per bake.
const OWN_CHUNK_MIN: u64 = crate::gzip::CACHED_CHUNK_MIN as u64;

/// The directory part of a tar entry name (`./usr/bin/x` → `./usr/bin`).
fn tar_parent(name: &str) -> &str {
    let name = name.trim_end_matches('/');
    name.rfind('/').map_or("", |i| &name[..i])
}

/// A gzipped tar of `files` (with their parent directories), paths prefixed by `prefix`
/// (`./` for deb data, empty for tgz). The tar is cut into chunks where the directory
/// changes and around large files' contents, and compressed through `cache`
/// ([`crate::gzip`]).
fn tar_gz(
    files: &[PayloadFile],
    prefix: &str,
    level: u32,
    with_root: bool,
    cache: &DeflateCache,
) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    if with_root {
        append_raw(
            &mut b,
            tar_header(tar::EntryType::Directory, 0o755, 0),
            "./",
            &[],
        )?;
    }
    let mut entries: Vec<(String, Option<&PayloadFile>)> = parent_dirs(files)
        .into_iter()
        .map(|d| (format!("{}/", &d[1..]), None))
        .chain(files.iter().map(|f| (f.path[1..].to_string(), Some(f))))
        .collect();
    entries.sort_by(|a, b| a.0.trim_end_matches('/').cmp(b.0.trim_end_matches('/')));
    let mut cuts = Vec::new();
    let mut parent = String::new();
    for (path, file) in entries {
        let name = format!("{prefix}{path}");
        let start = b.get_ref().len();
        if tar_parent(&name) != parent {
            parent = tar_parent(&name).to_owned();
            cuts.push(start);
        }
        match file {
            None => {
                append_raw(
                    &mut b,
                    tar_header(tar::EntryType::Directory, 0o755, 0),
                    &name,
                    &[],
                )?;
            }
            Some(f) => {
                let size = f.content.len() as u64;
                let h = tar_header(tar::EntryType::Regular, f.mode, size);
                append_raw(&mut b, h, &name, f.content.as_slice())?;
                if size >= OWN_CHUNK_MIN {
                    let end = b.get_ref().len();
                    let padded = usize::try_from(size.next_multiple_of(512))
                        .map_err(std::io::Error::other)?;
                    cuts.push(end - padded);
                    cuts.push(end);
                }
            }
        }
    }
    cuts.push(b.get_ref().len());
    let tar = b.into_inner()?;
    crate::gzip::gzip_chunks(&tar, &cuts, level, cache)
}

fn gz_tar_of_control(items: &[(&str, u32, &[u8])]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut b = tar::Builder::new(gz);
    append_raw(
        &mut b,
        tar_header(tar::EntryType::Directory, 0o755, 0),
        "./",
        &[],
    )?;
    for (name, mode, content) in items {
        let h = tar_header(tar::EntryType::Regular, *mode, content.len() as u64);
        append_raw(&mut b, h, &format!("./{name}"), content)?;
    }
    b.into_inner()?.finish()
}

fn pkg_err(platform: Platform, e: impl std::fmt::Display) -> Error {
    Error::Package {
        platform: platform.id().into(),
        message: e.to_string(),
    }
}

/// Builds the package bytes of `platform`.
pub fn build(platform: Platform, payload: &Payload, meta: &PackageMeta<'_>) -> Result<Vec<u8>> {
    build_with_cache(platform, payload, meta, &DeflateCache::new())
}

/// [`build`], compressing the content shared with other packages of the same bake once
/// (`cache` lives as long as the bake). The bytes are the same as [`build`]'s.
pub fn build_with_cache(
    platform: Platform,
    payload: &Payload,
    meta: &PackageMeta<'_>,
    cache: &DeflateCache,
) -> Result<Vec<u8>> {
    match platform {
        Platform::LinuxDeb => build_deb(payload, meta, cache).map_err(|e| pkg_err(platform, e)),
        Platform::LinuxRpm => build_rpm(payload, meta).map_err(|e| pkg_err(platform, e)),
        Platform::LinuxTgz => tar_gz(&payload.files, "", meta.tgz_level, false, cache)
            .map_err(|e| pkg_err(platform, e)),
    }
}

fn description(meta: &PackageMeta<'_>) -> String {
    format!(
        "Checkmk monitoring agent, baked by the cmk-toolkit Agent Bakery (agent hash {})",
        meta.aghash
    )
}

fn build_deb(
    payload: &Payload,
    meta: &PackageMeta<'_>,
    cache: &DeflateCache,
) -> std::io::Result<Vec<u8>> {
    let size: u64 = payload.files.iter().map(|f| f.content.len() as u64).sum();
    let control = format!(
        "Package: {PACKAGE_NAME}\nVersion: {}-{}.{}\nArchitecture: all\n\
         Maintainer: cmk-toolkit Agent Bakery <root@localhost>\nInstalled-Size: {}\n\
         Section: admin\nPriority: optional\nDescription: Checkmk monitoring agent\n {}\n",
        meta.cmk_version,
        meta.revision,
        meta.aghash,
        size.div_ceil(1024),
        description(meta)
    );
    let mut items: Vec<(&str, u32, &[u8])> = vec![("control", 0o644, control.as_bytes())];
    if let Some(s) = &payload.postinst {
        items.push(("postinst", 0o755, s.as_bytes()));
    }
    let control_tar = gz_tar_of_control(&items)?;
    let data_tar = tar_gz(&payload.files, "./", 6, true, cache)?;
    let mut out = ar::Builder::new(Vec::new());
    for (name, data) in [
        ("debian-binary", b"2.0\n".as_slice()),
        ("control.tar.gz", control_tar.as_slice()),
        ("data.tar.gz", data_tar.as_slice()),
    ] {
        let mut h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        h.set_mtime(PACKAGE_MTIME);
        h.set_mode(0o100644);
        h.set_uid(0);
        h.set_gid(0);
        out.append(&h, data)?;
    }
    out.into_inner()
}

fn build_rpm(
    payload: &Payload,
    meta: &PackageMeta<'_>,
) -> std::result::Result<Vec<u8>, rpm::Error> {
    let config = rpm::BuildConfig::default()
        .source_date(PACKAGE_MTIME as u32)
        .compression(rpm::CompressionWithLevel::Gzip(6));
    let mut b = rpm::PackageBuilder::new(
        PACKAGE_NAME,
        meta.cmk_version,
        "GPL-2.0-only",
        "noarch",
        "Checkmk monitoring agent",
    );
    b.using_config(config)
        .release(format!("{}.{}", meta.revision, meta.aghash))
        .description(description(meta))
        .build_host("localhost");
    for f in &payload.files {
        b.with_file_contents(
            f.content.as_slice().to_vec(),
            rpm::FileOptions::new(f.path.clone())
                .permissions(f.mode as u16)
                .user("root")
                .group("root"),
        )?;
    }
    if let Some(s) = &payload.postinst {
        b.post_install_script(s.clone());
    }
    let pkg = b.build()?;
    let mut out = Vec::new();
    pkg.write(&mut out)?;
    Ok(out)
}

/// Writes bytes to a file and syncs it (used for temporary package files).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
