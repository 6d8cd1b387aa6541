//! The local-files inventory behind `mkp find` and the table layout of `list` / `find`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::json;
use crate::manifest::{Manifest, PackageVersion};
use crate::part::PackagePart;
use crate::paths::PathConfig;

/// One file found below the local root (or in the rule-pack directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Path relative to its part directory, or the full path for files outside every part.
    /// A name that is not valid UTF-8 is shown with each invalid byte as `\xNN` (see
    /// [`LocalFile::name_is_utf8`]).
    pub file: String,
    /// Whether the path is valid UTF-8. A manifest can only list UTF-8 names, so a file
    /// whose name is not cannot be packaged: `template` leaves it out.
    pub name_is_utf8: bool,
    /// The part, if the file lies in a part directory.
    pub part: Option<PackagePart>,
    /// The owning installed package (name, version), if any.
    pub package: Option<(String, String)>,
    /// `ls -l` style mode (`-rw-r--r--`) or `<cannot stat: ...>`.
    pub mode: String,
}

fn filemode(mode: u32) -> String {
    let kind = match mode & 0o170_000 {
        0o040_000 => 'd',
        0o120_000 => 'l',
        0o020_000 => 'c',
        0o060_000 => 'b',
        0o010_000 => 'p',
        0o140_000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special =
        |x: u32, special: u32, lower: char, upper: char| match (mode & x != 0, mode & special != 0)
        {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

fn mode_of(path: &Path) -> String {
    match fs::metadata(path) {
        #[cfg(unix)]
        Ok(meta) => {
            use std::os::unix::fs::PermissionsExt;
            filemode(meta.permissions().mode())
        }
        #[cfg(not(unix))]
        Ok(meta) => filemode(if meta.is_dir() { 0o040_755 } else { 0o100_644 }),
        Err(e) => format!("<cannot stat: {e}>"),
    }
}

fn absolute(p: &Path) -> PathBuf {
    fs::canonicalize(p)
        .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// `name` as text, each byte that is not part of valid UTF-8 written as `\xNN`, and
/// whether it was valid UTF-8.
pub(crate) fn escaped_name(name: &OsStr) -> (String, bool) {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let mut out = String::new();
        let mut valid = true;
        for chunk in name.as_bytes().utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                valid = false;
                let _ = write!(out, "\\x{b:02X}");
            }
        }
        (out, valid)
    }
    #[cfg(not(unix))]
    {
        match name.to_str() {
            Some(s) => (s.to_string(), true),
            None => (name.to_string_lossy().into_owned(), false),
        }
    }
}

/// Walks `dir` following symlinks (each real directory once, none of `skip`), collecting
/// file paths.
fn walk(dir: &Path, skip: &[PathBuf], seen_dirs: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(real) = fs::canonicalize(dir) else {
        return;
    };
    if skip.contains(&real) || !seen_dirs.insert(real) {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            walk(&path, skip, seen_dirs, out);
        } else {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') || name.ends_with('~') || name.ends_with(".pyc")) {
                out.push(path);
            }
        }
    }
}

/// The inventory of `mkp find`: every file below the local root (hidden, `~` and `.pyc`
/// files skipped) attributed to the most specific part directory that contains it, plus
/// every entry of the rule-pack directory; owners looked up in `installed`.
///
/// Sorted: unpackaged files first, then by package name and version; within that by part
/// and path (Checkmk leaves that order to chance).
pub fn files_inventory(config: &PathConfig, installed: &[Manifest]) -> Vec<LocalFile> {
    inventory(config, installed, &[])
}

/// [`files_inventory`], not looking into the directories `skip` (a site's enabled marks).
pub(crate) fn inventory(
    config: &PathConfig,
    installed: &[Manifest],
    skip: &[PathBuf],
) -> Vec<LocalFile> {
    let skip: Vec<PathBuf> = skip
        .iter()
        .filter_map(|d| fs::canonicalize(d).ok())
        .collect();
    let mut files = Vec::new();
    walk(config.local_root(), &skip, &mut HashSet::new(), &mut files);

    // resolved -> user-visible path, preferring a symlinked path over the real one.
    let mut resolved_to_user: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    for path in files {
        let resolved = absolute(&path);
        match index.get(&resolved) {
            Some(&i) => {
                if resolved_to_user[i].1 == resolved {
                    resolved_to_user[i].1 = path;
                }
            }
            None => {
                index.insert(resolved.clone(), resolved_to_user.len());
                resolved_to_user.push((resolved, path));
            }
        }
    }

    let mut by_depth: Vec<(PackagePart, PathBuf)> = PackagePart::ALL
        .iter()
        .map(|p| (*p, absolute(config.part_dir(*p))))
        .collect();
    by_depth.sort_by_key(|(_, dir)| std::cmp::Reverse(dir.components().count()));

    let mut owners: HashMap<(PackagePart, String), (String, String)> = HashMap::new();
    for m in installed {
        for (part, paths) in &m.files {
            for p in paths {
                owners.insert(
                    (*part, p.clone()),
                    (m.name.to_string(), m.version.to_string()),
                );
            }
        }
    }

    let mut seen: HashSet<(Option<PackagePart>, String)> = HashSet::new();
    let mut result = Vec::new();
    let mut push = |part: Option<PackagePart>, name: &OsStr, mode: String| {
        let (file, name_is_utf8) = escaped_name(name);
        if seen.insert((part, file.clone())) {
            let package = part
                .filter(|_| name_is_utf8)
                .and_then(|p| owners.get(&(p, file.clone())).cloned());
            result.push(LocalFile {
                file,
                name_is_utf8,
                part,
                package,
                mode,
            });
        }
    };
    for (resolved, user) in &resolved_to_user {
        match by_depth.iter().find(|(_, dir)| resolved.starts_with(dir)) {
            Some((part, dir)) => {
                let rel = resolved.strip_prefix(dir).unwrap_or_else(|_| Path::new(""));
                let mode = mode_of(&config.part_dir(*part).join(rel));
                push(Some(*part), rel.as_os_str(), mode);
            }
            None => push(None, user.as_os_str(), mode_of(user)),
        }
    }
    let ec_dir = config.part_dir(PackagePart::EcRulePacks);
    if let Ok(entries) = fs::read_dir(ec_dir) {
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let mode = mode_of(&ec_dir.join(&name));
            push(Some(PackagePart::EcRulePacks), &name, mode);
        }
    }

    result.sort_by(|a, b| {
        let key = |f: &LocalFile| {
            f.package.as_ref().map(|(n, v)| {
                (
                    n.clone(),
                    PackageVersion::new(v.clone()).ok().map(|v| v.sort_key()),
                )
            })
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.part.map(|p| p as usize).cmp(&b.part.map(|p| p as usize)))
            .then_with(|| a.file.cmp(&b.file))
    });
    result
}

/// The unpackaged files per part (what a site-mode `mkp template` lists): every file of
/// [`files_inventory`] that lies in a part directory, has a UTF-8 name and no installed
/// package lists; parts in canonical order, paths sorted and unique, parts without such
/// files left out.
pub fn unpackaged_files(
    config: &PathConfig,
    installed: &[Manifest],
) -> Vec<(PackagePart, Vec<String>)> {
    unpackaged_of(&files_inventory(config, installed))
}

/// [`unpackaged_files`] of an inventory.
pub(crate) fn unpackaged_of(inventory: &[LocalFile]) -> Vec<(PackagePart, Vec<String>)> {
    PackagePart::ALL
        .iter()
        .filter_map(|part| {
            let mut files: Vec<String> = inventory
                .iter()
                .filter(|f| f.part == Some(*part) && f.package.is_none() && f.name_is_utf8)
                .map(|f| f.file.clone())
                .collect();
            files.sort();
            // A file can be found twice (the rule-pack directory is also listed on its own).
            files.dedup();
            (!files.is_empty()).then_some((*part, files))
        })
        .collect()
}

/// Renders a table like Checkmk's CLI: columns padded to the widest cell, joined by one
/// space, a dash line under the header; trailing spaces kept; ends with `\n`.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{cell:<w$}");
        }
        out
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join(" "),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// `mkp find` as a table (`File Package Version Part Mode`).
pub fn files_inventory_table(files: &[LocalFile]) -> String {
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let (name, version) = f.package.clone().unwrap_or_default();
            vec![
                f.file.clone(),
                name,
                version,
                f.part
                    .map(PackagePart::title)
                    .unwrap_or_default()
                    .to_string(),
                f.mode.clone(),
            ]
        })
        .collect();
    render_table(&["File", "Package", "Version", "Part", "Mode"], &rows)
}

/// `mkp find --json`: an array of objects with 2-space indentation (like `json.dumps`).
pub fn files_inventory_json(files: &[LocalFile]) -> String {
    if files.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[");
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (name, version) = f.package.clone().unwrap_or_default();
        let fields = [
            ("file", f.file.clone()),
            ("package", name),
            ("version", version),
            (
                "part_id",
                f.part.map(PackagePart::id).unwrap_or_default().to_string(),
            ),
            (
                "part_title",
                f.part
                    .map(PackagePart::title)
                    .unwrap_or_default()
                    .to_string(),
            ),
            ("mode", f.mode.clone()),
        ];
        out.push_str("\n  {");
        for (j, (k, v)) in fields.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("\n    ");
            json::push_str(k, true, &mut out);
            out.push_str(": ");
            json::push_str(v, true, &mut out);
        }
        out.push_str("\n  }");
    }
    out.push_str("\n]");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::PackageName;

    #[test]
    fn table_layout_matches_checkmk() {
        let t = render_table(
            &["This", "that"],
            &[
                vec!["row11".into(), "row12__".into()],
                vec!["row22_".into(), "row23".into()],
            ],
        );
        assert_eq!(
            t,
            "This   that   \n------ -------\nrow11  row12__\nrow22_ row23  \n"
        );
        assert_eq!(render_table(&["Name"], &[]), "Name\n----\n");
    }

    #[test]
    fn inventory_attributes_files_to_the_most_specific_part() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path();
        let config = PathConfig::for_site(site);
        let write = |rel: &str| {
            let p = site.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        };
        write("local/share/check_mk/agents/plugins/a");
        write("local/share/check_mk/agents/.hidden");
        write("local/share/check_mk/agents/b~");
        write("local/lib/python3/cmk/plugins/x/agent_based/y.py");
        write("local/lib/python3/cmk/plugins/x/agent_based/y.pyc");
        write("local/lib/nagios/plugins/check_z");
        write("local/rogue.txt");
        write("etc/check_mk/mkeventd.d/mkp/rule_packs/.pack.mk");
        let mut owner = Manifest::template(PackageName::new("owner").unwrap(), "", Some(vec![]));
        owner.files = vec![(PackagePart::Lib, vec!["nagios/plugins/check_z".into()])];
        let all = files_inventory(&config, std::slice::from_ref(&owner));
        let found: Vec<(Option<PackagePart>, &str, bool)> = all
            .iter()
            .map(|f| (f.part, f.file.as_str(), f.package.is_some()))
            .collect();
        let rogue = site.join("local/rogue.txt").display().to_string();
        assert_eq!(
            found,
            vec![
                (None, rogue.as_str(), false),
                (Some(PackagePart::CmkPlugins), "x/agent_based/y.py", false),
                (Some(PackagePart::EcRulePacks), ".pack.mk", false),
                (Some(PackagePart::Agents), "plugins/a", false),
                (Some(PackagePart::Lib), "nagios/plugins/check_z", true),
            ]
        );
        let unpackaged = unpackaged_files(&config, &[owner]);
        assert_eq!(
            unpackaged,
            vec![
                (
                    PackagePart::CmkPlugins,
                    vec!["x/agent_based/y.py".to_string()]
                ),
                (PackagePart::EcRulePacks, vec![".pack.mk".to_string()]),
                (PackagePart::Agents, vec!["plugins/a".to_string()]),
            ]
        );
    }

    #[test]
    fn filemode_like_python() {
        assert_eq!(filemode(0o100_644), "-rw-r--r--");
        assert_eq!(filemode(0o040_755), "drwxr-xr-x");
        assert_eq!(filemode(0o104_755), "-rwsr-xr-x");
        assert_eq!(filemode(0o041_777), "drwxrwxrwt");
    }

    #[test]
    fn json_is_ascii_with_two_space_indent() {
        let f = LocalFile {
            file: "ä.py".into(),
            name_is_utf8: true,
            part: Some(PackagePart::Agents),
            package: None,
            mode: "-rw-r--r--".into(),
        };
        let j = files_inventory_json(&[f]);
        assert!(
            j.starts_with("[\n  {\n    \"file\": \"\\u00e4.py\",\n"),
            "{j}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(parsed[0]["part_id"], "agents");
        assert_eq!(files_inventory_json(&[]), "[]");
    }
}
