//! `skel.permissions` and the permission step of Checkmk's update (spec section 5).

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{Error, IoContext, Result};
use super::fsx::{self, Kind};

/// The parsed `skel.permissions` table: `relpath octal-mode` per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionTable {
    modes: BTreeMap<String, u32>,
}

impl PermissionTable {
    /// Parses the text of a `skel.permissions` file; blank lines and `#` lines are ignored.
    /// `origin` only names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let mut modes = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| Error::Permissions {
                path: origin.to_path_buf(),
                line: i + 1,
                reason: reason.to_owned(),
            };
            let mut parts = line.split_whitespace();
            let (Some(path), Some(mode), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("not two fields"));
            };
            let mode = u32::from_str_radix(mode, 8).map_err(|_| bad("mode is not octal"))?;
            if mode > 0o7777 {
                return Err(bad("mode is larger than 7777"));
            }
            modes.insert(path.to_owned(), mode);
        }
        Ok(Self { modes })
    }

    /// Reads and parses a `skel.permissions` file; a missing file is an empty table.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if fsx::is_absent(&e) => Ok(Self::default()),
            Err(e) => Err(e).ctx("read", path),
        }
    }

    /// The table entry for `relpath`.
    pub fn get(&self, relpath: &str) -> Option<u32> {
        self.modes.get(relpath).copied()
    }

    /// The skeleton permission of `relpath`: the table entry, else 0750 for a
    /// directory (symlinks followed) and 0640 for anything else, as Checkmk's
    /// current `get_skel_permissions` gives it (older releases used the
    /// skeleton file's own mode; site-update.md §5 erratum).
    pub(crate) fn skel_perm(&self, skel: &Path, relpath: &str) -> u32 {
        self.get(relpath).unwrap_or_else(|| {
            if skel.join(relpath).is_dir() {
                UNLISTED_DIR
            } else {
                UNLISTED_FILE
            }
        })
    }

    /// [`PermissionTable::skel_perm`] when the kind of the skeleton path
    /// (not following a final link) is known: only a link needs a look.
    pub(crate) fn skel_perm_of(&self, skel: &Path, relpath: &str, kind: Option<Kind>) -> u32 {
        match kind {
            Some(Kind::Link) => self.skel_perm(skel, relpath),
            Some(Kind::Dir) => self.get(relpath).unwrap_or(UNLISTED_DIR),
            Some(Kind::File) | None => self.get(relpath).unwrap_or(UNLISTED_FILE),
        }
    }
}

/// The permission of a directory without a line in `skel.permissions`.
pub(crate) const UNLISTED_DIR: u32 = 0o750;
/// The permission of a file (or anything not a directory) without a line.
pub(crate) const UNLISTED_FILE: u32 = 0o640;

/// Directories whose default permissions always win when they changed (CMK-12090).
pub(crate) const ALWAYS_DEFAULT: [&str; 7] = [
    "local/share/nagvis/htdocs/userfiles/images/maps",
    "local/share/nagvis/htdocs/userfiles/images/shapes",
    "etc/check_mk/multisite.d",
    "etc/check_mk/conf.d",
    "etc/check_mk/conf.d/wato",
    "etc/ssl/private",
    "etc/ssl/certs",
];

/// What the permission step decides for one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PermDecision {
    /// Leave the mode alone (no line).
    Nothing,
    /// Set the new default mode.
    Default,
    /// Rule 4: the default changed and the user has a third mode.
    ConflictChanged,
    /// Rule 6: the default changed (types differ) and the user has another mode.
    ConflictWrong,
}

/// The inputs of the permission step for one path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PermInput<'a> {
    pub(crate) relpath: &'a str,
    pub(crate) old: Option<Kind>,
    pub(crate) new: Option<Kind>,
    pub(crate) user: Option<Kind>,
    pub(crate) old_perm: u32,
    pub(crate) new_perm: u32,
    pub(crate) user_perm: u32,
}

/// The seven rules of section 5, in order.
pub(crate) fn permission_action(p: PermInput<'_>) -> PermDecision {
    // Rule 1.
    if p.new == Some(Kind::Link) || p.user.is_none() || p.user != p.new || p.user_perm == p.new_perm
    {
        return PermDecision::Nothing;
    }
    // Rule 2.
    if p.old.is_none() {
        return PermDecision::Default;
    }
    // Rule 3.
    if p.old_perm != p.new_perm && ALWAYS_DEFAULT.contains(&p.relpath) {
        return PermDecision::Default;
    }
    // Rules 4 and 5.
    if p.old == p.new {
        if p.old_perm != p.user_perm && p.old_perm != p.new_perm {
            return PermDecision::ConflictChanged;
        }
        if p.user_perm == p.old_perm {
            return PermDecision::Default;
        }
    }
    // Rule 6.
    if p.old_perm != p.new_perm {
        return if p.user_perm == p.old_perm {
            PermDecision::Default
        } else {
            PermDecision::ConflictWrong
        };
    }
    // Rule 7.
    PermDecision::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_peer_example() {
        let t = PermissionTable::parse("bla 755\nblub 644\n", Path::new("x")).unwrap();
        assert_eq!(t.get("bla"), Some(0o755));
        assert_eq!(t.get("blub"), Some(0o644));
        assert_eq!(t.get("other"), None);
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let e = PermissionTable::parse("# c\n\nbla 9x\n", Path::new("p")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p:3: mode is not octal (expected `relpath octal-mode`)"
        );
    }

    fn act(
        o: Option<Kind>,
        n: Option<Kind>,
        u: Option<Kind>,
        perms: (u32, u32, u32),
    ) -> PermDecision {
        permission_action(PermInput {
            relpath: "x",
            old: o,
            new: n,
            user: u,
            old_perm: perms.0,
            new_perm: perms.1,
            user_perm: perms.2,
        })
    }

    const F: Option<Kind> = Some(Kind::File);
    const D: Option<Kind> = Some(Kind::Dir);
    const L: Option<Kind> = Some(Kind::Link);

    #[test]
    fn peer_matrix() {
        let p = (0o123, 0o124, 0o125);
        assert_eq!(act(L, L, L, p), PermDecision::Nothing);
        assert_eq!(act(F, L, F, p), PermDecision::Nothing);
        assert_eq!(act(L, F, L, p), PermDecision::Nothing);
        assert_eq!(act(D, F, D, p), PermDecision::Nothing);
        assert_eq!(act(F, D, F, p), PermDecision::Nothing);
        assert_eq!(act(F, F, F, (0o123, 0o124, 0o124)), PermDecision::Nothing);
        assert_eq!(act(F, F, F, p), PermDecision::ConflictChanged);
        assert_eq!(act(F, F, F, (0o123, 0o124, 0o123)), PermDecision::Default);
        assert_eq!(act(F, F, F, (0o123, 0o123, 0o124)), PermDecision::Nothing);
        assert_eq!(act(F, D, D, p), PermDecision::ConflictWrong);
        assert_eq!(act(F, None, D, p), PermDecision::Nothing);
        assert_eq!(act(F, None, None, p), PermDecision::Nothing);
    }

    #[test]
    fn special_dirs_always_get_the_default() {
        for dir in ALWAYS_DEFAULT {
            let d = permission_action(PermInput {
                relpath: dir,
                old: D,
                new: D,
                user: D,
                old_perm: 0o775,
                new_perm: 0o770,
                user_perm: 0o750,
            });
            assert_eq!(d, PermDecision::Default, "{dir}");
        }
    }
}
