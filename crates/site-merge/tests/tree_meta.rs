//! `.version_meta` refreshed path by path (when it is the old skeleton of
//! the update): the site ends exactly as with a fresh copy of the new
//! skeleton, and a failure or crash before any of its operations leaves the
//! site exactly as before.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use site_merge::{
    ApplyOptions, Error, Fault, Policy, Recovery, SiteCreation, Skeleton, Update, recover,
};

const FROM: &str = "1.cre";
const TO: &str = "2.cre";

/// Two versions whose skeletons differ in every way a path can, and a site
/// made from the first (so its `.version_meta` is the first's skeleton).
struct MetaFx {
    tmp: tempfile::TempDir,
}

impl MetaFx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Self { tmp };
        let (o, n) = (fx.skel(FROM), fx.skel(TO));
        for (root, i) in [(&o, 1), (&n, 2)] {
            file(root, "etc/same", "same ###SITE###\n");
            file(root, "etc/changed", &format!("version {i}\n"));
            file(root, "etc/modechange", "mode\n");
            file(root, "image.png", &format!("png {i} ###SITE###\n"));
            file(root, "etc/htpasswd", &format!("ignored by the walk {i}\n"));
            file(root, "tmp/t", &format!("below tmp {i}\n"));
            link(root, "etc/samelink", "same");
            link(root, "etc/link", if i == 1 { "a" } else { "b" });
            dir(root, "etc/pd");
        }
        chmod(&n, "etc/modechange", 0o600);
        chmod(&o, "etc/pd", 0o755);
        chmod(&n, "etc/pd", 0o700);
        chmod(&o, "", 0o755);
        chmod(&n, "", 0o750);
        file(&o, "etc/f2d", "a file\n");
        file(&n, "etc/f2d/child", "now below a directory\n");
        file(&o, "etc/d2f/inner", "inner\n");
        file(&n, "etc/d2f", "now a file\n");
        link(&o, "etc/l2f", "x");
        file(&n, "etc/l2f", "now a file\n");
        file(&o, "etc/gone", "gone\n");
        file(&o, "etc/gonedir/x", "gone too\n");
        file(&n, "etc/newdir/sub/f", "new\n");
        file(&n, "etc/rodir/f", "in a read-only directory\n");
        chmod(&n, "etc/rodir", 0o555);
        permissions(&o, "etc/pd 755\n");
        permissions(&n, "etc/pd 700\netc/newdir 750\n");

        SiteCreation::new(fx.home(), SITE, Skeleton::of_version(&fx.versions(), FROM))
            .root(format!("/omd/sites/{SITE}"))
            .create()
            .unwrap();
        // Something a fresh copy would not have.
        file(&fx.home(), ".version_meta/junk", "junk\n");
        fx
    }

    fn versions(&self) -> PathBuf {
        self.tmp.path().join("versions")
    }

    fn skel(&self, version: &str) -> PathBuf {
        self.versions().join(version).join("skel")
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("sites").join(SITE)
    }

    /// The update, from the site's `.version_meta` (`in_place`) or from the
    /// installed old version.
    fn update(&self, in_place: bool) -> Update {
        let versions = self.versions();
        let from = if in_place {
            Skeleton::for_site(&self.home(), &versions, FROM)
        } else {
            Skeleton::of_version(&versions, FROM)
        };
        if in_place {
            assert_eq!(from.skel_dir(), self.home().join(".version_meta/skel"));
        }
        Update::builder(self.home(), SITE, from, Skeleton::of_version(&versions, TO))
            .root(format!("/omd/sites/{SITE}"))
            .build()
            .unwrap()
    }

    fn apply(&self, in_place: bool, fault: Option<Fault>) -> site_merge::Result<usize> {
        let up = self.update(in_place);
        let plan = up.plan(&LineMerger, &mut Policy::Install).unwrap();
        let mut options = ApplyOptions::new().sync(false);
        if let Some(fault) = fault {
            options = options.fault(fault);
        }
        up.apply(&plan, &options).map(|a| a.operations)
    }
}

fn snap(home: &Path) -> std::collections::BTreeMap<String, Node> {
    snapshot(home)
}

#[test]
fn refreshing_in_place_gives_the_same_site_as_a_fresh_copy() {
    let (in_place, fresh) = (MetaFx::new(), MetaFx::new());
    let ops = in_place.apply(true, None).unwrap();
    fresh.apply(false, None).unwrap();
    assert_eq!(snap(&in_place.home()), snap(&fresh.home()));
    // And the copy is the new skeleton, byte for byte, with its modes.
    let meta = in_place.home().join(".version_meta");
    assert_eq!(snap(&meta.join("skel")), snap(&in_place.skel(TO)));
    assert_eq!(mode(&meta.join("skel")), 0o750);
    assert_eq!(
        std::fs::read_to_string(meta.join("version")).unwrap(),
        format!("{TO}\n")
    );
    assert_eq!(
        std::fs::read_to_string(meta.join("skel.permissions")).unwrap(),
        "etc/pd 700\netc/newdir 750\n"
    );
    assert!(!meta.join("junk").exists());
    // Path by path: more operations than the one of a whole new copy.
    let fresh_ops = MetaFx::new().apply(false, None).unwrap();
    assert!(ops > fresh_ops + 10, "{ops} vs {fresh_ops}");
}

#[test]
fn a_failure_before_any_operation_rolls_back_exactly() {
    let ops = MetaFx::new().apply(true, None).unwrap();
    for k in 0..ops {
        let fx = MetaFx::new();
        let before = snap(fx.tmp.path());
        let err = fx.apply(true, Some(Fault::FailAfter(k))).unwrap_err();
        assert!(
            matches!(&err, Error::RolledBack { source } if matches!(**source, Error::Injected { ops, .. } if ops == k)),
            "{err}"
        );
        assert_eq!(snap(fx.tmp.path()), before, "failure before operation {k}");
    }
}

#[test]
fn a_crash_before_any_operation_is_rolled_back_by_recovery() {
    let ops = MetaFx::new().apply(true, None).unwrap();
    let clean = {
        let fx = MetaFx::new();
        fx.apply(true, None).unwrap();
        snap(&fx.home())
    };
    for k in 0..ops {
        let fx = MetaFx::new();
        let before = snap(fx.tmp.path());
        let err = fx.apply(true, Some(Fault::CrashAfter(k))).unwrap_err();
        assert!(
            matches!(err, Error::SimulatedCrash { ops } if ops == k),
            "{err}"
        );
        assert!(matches!(
            recover(&fx.home()).unwrap(),
            Recovery::RolledBack { .. }
        ));
        assert_eq!(snap(fx.tmp.path()), before, "crash before operation {k}");
        // The update then runs from the restored `.version_meta` again.
        fx.apply(true, None).unwrap();
        assert_eq!(
            snap(&fx.home()),
            clean,
            "update after a crash before operation {k}"
        );
    }
}
