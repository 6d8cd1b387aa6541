//! The 18 package parts: ids, titles, site paths and install permissions in one table.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::error::ErrorKind;

/// A package part: one kind of extension file with its own directory on a site.
///
/// The declaration order is Checkmk's canonical part order ([`PackagePart::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PackagePart {
    /// `cmk_plugins`
    CmkPlugins,
    /// `cmk_addons_plugins`
    CmkAddonsPlugins,
    /// `ec_rule_packs`
    EcRulePacks,
    /// `agent_based`
    AgentBased,
    /// `checks`
    Checks,
    /// `inventory`
    Inventory,
    /// `checkman`
    Checkman,
    /// `agents`
    Agents,
    /// `notifications`
    Notifications,
    /// `gui`
    Gui,
    /// `web`
    Web,
    /// `pnp-templates`
    PnpTemplates,
    /// `doc`
    Doc,
    /// `locales`
    Locales,
    /// `bin`
    Bin,
    /// `lib`
    Lib,
    /// `mibs`
    Mibs,
    /// `alert_handlers`
    AlertHandlers,
}

/// How files of a part get their permissions on install.
#[derive(Clone, Copy)]
enum ModeRule {
    /// Always 0600.
    Data,
    /// Always 0700.
    Exec,
    /// 0700 when the file's parent directory is `libexec`, else 0600.
    Libexec,
    /// 0700 below `nagios/plugins/`, else 0600.
    NagiosPlugins,
}

struct PartInfo {
    part: PackagePart,
    id: &'static str,
    title: &'static str,
    site_path: &'static str,
    path_key: &'static str,
    mode: ModeRule,
}

use ModeRule::{Data, Exec, Libexec, NagiosPlugins};
use PackagePart as P;

/// The one table: id, UI title (current Checkmk), site path, `mkp-tool.toml` key, permissions.
const TABLE: [PartInfo; 18] = [
    PartInfo {
        part: P::CmkPlugins,
        id: "cmk_plugins",
        title: "Shipped Checkmk plug-ins",
        site_path: "local/lib/python3/cmk/plugins",
        path_key: "cmk_plugins_dir",
        mode: Libexec,
    },
    PartInfo {
        part: P::CmkAddonsPlugins,
        id: "cmk_addons_plugins",
        title: "Additional Checkmk plug-ins by third parties",
        site_path: "local/lib/python3/cmk_addons/plugins",
        path_key: "cmk_addons_plugins_dir",
        mode: Libexec,
    },
    PartInfo {
        part: P::EcRulePacks,
        id: "ec_rule_packs",
        title: "Event Console rule packs",
        site_path: "etc/check_mk/mkeventd.d/mkp/rule_packs",
        path_key: "mkp_rule_pack_dir",
        mode: Data,
    },
    PartInfo {
        part: P::AgentBased,
        id: "agent_based",
        title: "Agent based plug-ins (outdated, ignored)",
        site_path: "local/lib/python3/cmk/base/plugins/agent_based",
        path_key: "agent_based_plugins_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Checks,
        id: "checks",
        title: "Legacy check plug-ins (outdated, ignored)",
        site_path: "local/share/check_mk/checks",
        path_key: "checks_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Inventory,
        id: "inventory",
        title: "Legacy inventory plug-ins (outdated, ignored)",
        site_path: "local/share/check_mk/inventory",
        path_key: "inventory_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Checkman,
        id: "checkman",
        title: "Checks' man pages (outdated, ignored)",
        site_path: "local/share/check_mk/checkman",
        path_key: "check_manpages_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Agents,
        id: "agents",
        title: "Agents",
        site_path: "local/share/check_mk/agents",
        path_key: "agents_dir",
        mode: Exec,
    },
    PartInfo {
        part: P::Notifications,
        id: "notifications",
        title: "Notification scripts",
        site_path: "local/share/check_mk/notifications",
        path_key: "notifications_dir",
        mode: Exec,
    },
    PartInfo {
        part: P::Gui,
        id: "gui",
        title: "GUI extensions",
        site_path: "local/lib/python3/cmk/gui/plugins",
        path_key: "gui_plugins_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Web,
        id: "web",
        title: "Legacy GUI extensions",
        site_path: "local/share/check_mk/web",
        path_key: "web_dir",
        mode: Data,
    },
    PartInfo {
        part: P::PnpTemplates,
        id: "pnp-templates",
        title: "PNP4Nagios templates (deprecated)",
        site_path: "local/share/check_mk/pnp-templates",
        path_key: "pnp_templates_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Doc,
        id: "doc",
        title: "Documentation files",
        site_path: "local/share/doc/check_mk",
        path_key: "doc_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Locales,
        id: "locales",
        title: "Localizations",
        site_path: "local/share/check_mk/locale",
        path_key: "locale_dir",
        mode: Data,
    },
    PartInfo {
        part: P::Bin,
        id: "bin",
        title: "Binaries",
        site_path: "local/bin",
        path_key: "bin_dir",
        mode: Exec,
    },
    PartInfo {
        part: P::Lib,
        id: "lib",
        title: "Libraries",
        site_path: "local/lib",
        path_key: "lib_dir",
        mode: NagiosPlugins,
    },
    PartInfo {
        part: P::Mibs,
        id: "mibs",
        title: "SNMP MIBs",
        site_path: "local/share/snmp/mibs",
        path_key: "mib_dir",
        mode: Data,
    },
    PartInfo {
        part: P::AlertHandlers,
        id: "alert_handlers",
        title: "Alert handlers",
        site_path: "local/share/check_mk/alert_handlers",
        path_key: "alert_handlers_dir",
        mode: Exec,
    },
];

/// The part id of Check_MK 1.1/1.2 that current Checkmk no longer accepts.
pub(crate) const LEGACY_RRACONF: &str = "pnp-rraconf";

impl PackagePart {
    /// All 18 parts in Checkmk's canonical order.
    pub const ALL: [PackagePart; 18] = [
        P::CmkPlugins,
        P::CmkAddonsPlugins,
        P::EcRulePacks,
        P::AgentBased,
        P::Checks,
        P::Inventory,
        P::Checkman,
        P::Agents,
        P::Notifications,
        P::Gui,
        P::Web,
        P::PnpTemplates,
        P::Doc,
        P::Locales,
        P::Bin,
        P::Lib,
        P::Mibs,
        P::AlertHandlers,
    ];

    fn info(self) -> &'static PartInfo {
        // The table is in declaration order; the index is the discriminant.
        &TABLE[self as usize]
    }

    /// The id used in manifests and as tar name (`<id>.tar`), e.g. `pnp-templates`.
    pub fn id(self) -> &'static str {
        self.info().id
    }

    /// The title Checkmk's UI and `mkp inspect` show, e.g. `Agents`.
    pub fn title(self) -> &'static str {
        self.info().title
    }

    /// The directory of this part relative to the site root (`$OMD_ROOT`).
    pub fn site_path(self) -> &'static str {
        self.info().site_path
    }

    /// The key of this part's directory in `mkp-tool.toml` (e.g. `agents_dir`).
    pub fn path_config_key(self) -> &'static str {
        self.info().path_key
    }

    /// Whether the part is a "config part" (gets install callbacks on a real site).
    pub fn is_config_part(self) -> bool {
        self == P::EcRulePacks
    }

    /// The permission bits a file of this part gets on install (0o700 or 0o600).
    ///
    /// `rel_path` is the path inside the part directory.
    pub fn install_mode(self, rel_path: &str) -> u32 {
        let components: Vec<&str> = rel_path.split('/').filter(|c| !c.is_empty()).collect();
        let exec = match self.info().mode {
            Data => false,
            Exec => true,
            Libexec => components.len() > 1 && components[components.len() - 2] == "libexec",
            NagiosPlugins => components.len() >= 2 && components[..2] == ["nagios", "plugins"],
        };
        if exec { 0o700 } else { 0o600 }
    }

    /// The part with this id.
    pub fn from_id(id: &str) -> Option<PackagePart> {
        TABLE.iter().find(|p| p.id == id).map(|p| p.part)
    }

    /// The file name of the part's tar inside an MKP (`<id>.tar`).
    pub fn tar_name(self) -> String {
        format!("{}.tar", self.id())
    }

    /// Where a file listed as `rel_path` in this part is installed, relative to the part
    /// directory: `lib` files below the legacy `check_mk/` directory go to `python3/cmk/`
    /// (as Checkmk does on install, section 3 of the spec); every other path is unchanged.
    /// [`Manifest::rewrite_legacy_lib_paths`](crate::Manifest::rewrite_legacy_lib_paths)
    /// applies this to a whole manifest.
    pub fn install_path(self, rel_path: &str) -> Cow<'_, str> {
        match rel_path.strip_prefix("check_mk/") {
            Some(rest) if self == PackagePart::Lib => Cow::Owned(format!("python3/cmk/{rest}")),
            _ => Cow::Borrowed(rel_path),
        }
    }
}

/// Pydantic's enum message: `Input should be 'cmk_plugins', 'cmk_addons_plugins', ... or 'alert_handlers'`.
pub(crate) fn expected_parts_message() -> String {
    let ids: Vec<String> = TABLE.iter().map(|p| format!("'{}'", p.id)).collect();
    let (last, rest) = ids
        .split_last()
        .map_or(("", &[][..]), |(l, r)| (l.as_str(), r));
    format!("Input should be {} or {}", rest.join(", "), last)
}

impl fmt::Display for PackagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for PackagePart {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PackagePart::from_id(s).ok_or_else(|| {
            if s == LEGACY_RRACONF {
                ErrorKind::LegacyPart.into()
            } else {
                ErrorKind::UnknownPart {
                    part: s.to_string(),
                }
                .into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, part) in PackagePart::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].part, *part);
            assert_eq!(PackagePart::from_id(part.id()), Some(*part));
        }
    }

    #[test]
    fn permissions_follow_checkmk() {
        assert_eq!(P::CmkPlugins.install_mode("agent_based/foo.py"), 0o600);
        assert_eq!(P::CmkPlugins.install_mode("foo/libexec/foo"), 0o700);
        assert_eq!(P::CmkAddonsPlugins.install_mode("libexec"), 0o600);
        assert_eq!(P::AgentBased.install_mode("foo.py"), 0o600);
        assert_eq!(P::Bin.install_mode("tool"), 0o700);
        assert_eq!(P::Lib.install_mode("nagios/plugins/check_foobar"), 0o700);
        assert_eq!(P::Lib.install_mode("python3/x.py"), 0o600);
        assert_eq!(P::Agents.install_mode("plugins/x"), 0o700);
    }

    #[test]
    fn legacy_lib_rewrite_only_touches_check_mk_in_lib() {
        assert_eq!(P::Lib.install_path("check_mk/x.py"), "python3/cmk/x.py");
        assert_eq!(
            P::Lib.install_path("check_mk_extra/x.py"),
            "check_mk_extra/x.py"
        );
        assert_eq!(P::Lib.install_path("check_mk"), "check_mk");
        assert_eq!(P::Doc.install_path("check_mk/x"), "check_mk/x");
    }

    #[test]
    fn legacy_and_unknown_parts_have_clear_errors() {
        let e = "pnp-rraconf".parse::<PackagePart>().unwrap_err();
        assert!(e.to_string().contains("pnp-rraconf"), "{e}");
        let e = "not-a-package-part".parse::<PackagePart>().unwrap_err();
        assert!(
            e.to_string().contains("Input should be 'cmk_plugins'"),
            "{e}"
        );
    }
}
