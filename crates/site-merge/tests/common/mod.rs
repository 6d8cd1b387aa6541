//! Shared helpers of the tree tests: fixtures, tree snapshots, a tiny merger
//! and a scripted resolver.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use site_merge::{
    Answer, ApplyOptions, Conflict, MergeFailure, MergedText, Plan, Policy, Resolver, Skeleton,
    TextMerger, Update,
};

pub const OLD: &str = "1.0.0";
pub const NEW: &str = "2.0.0";
pub const SITE: &str = "s";

/// A fixture: `<tmp>/versions/{1.0.0,2.0.0}/skel` and the site `<tmp>/sites/s`
/// (with `version -> ../../versions/1.0.0`).
pub struct Fx {
    pub tmp: tempfile::TempDir,
}

impl Fx {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Self { tmp };
        fs::create_dir_all(fx.old_skel()).unwrap();
        fs::create_dir_all(fx.new_skel()).unwrap();
        fs::create_dir_all(fx.site()).unwrap();
        std::os::unix::fs::symlink(format!("../../versions/{OLD}"), fx.site().join("version"))
            .unwrap();
        fx
    }

    /// Reopens a fixture root made by [`Fx::new`] (child processes).
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn versions(&self) -> PathBuf {
        self.root().join("versions")
    }
    pub fn old_skel(&self) -> PathBuf {
        self.versions().join(OLD).join("skel")
    }
    pub fn new_skel(&self) -> PathBuf {
        self.versions().join(NEW).join("skel")
    }
    pub fn site(&self) -> PathBuf {
        self.root().join("sites").join(SITE)
    }

    /// Writes `content` at `rel` below every root in `roots` (creating parents).
    pub fn file(&self, roots: &[&Path], rel: &str, content: &str) {
        for root in roots {
            file(root, rel, content);
        }
    }

    pub fn update(&self) -> Update {
        update_at(self.root())
    }

    /// Plans with `resolver`.
    pub fn plan(&self, resolver: &mut dyn Resolver) -> Plan {
        self.update().plan(&LineMerger, resolver).unwrap()
    }

    /// Plans with `resolver` and applies (no fsync: throw-away trees).
    pub fn run(&self, resolver: &mut dyn Resolver) -> Plan {
        let up = self.update();
        let plan = up.plan(&LineMerger, resolver).unwrap();
        up.apply(&plan, &ApplyOptions::new().sync(false)).unwrap();
        plan
    }

    pub fn run_policy(&self, policy: Policy) -> Plan {
        self.run(&mut { policy })
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.site().join(rel)).unwrap()
    }

    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.site().join(rel)).is_ok()
    }

    pub fn mode(&self, rel: &str) -> u32 {
        mode(&self.site().join(rel))
    }
}

/// The update of the fixture layout at `root` (also used by child processes).
pub fn update_at(root: &Path) -> Update {
    let versions = root.join("versions");
    let site = root.join("sites").join(SITE);
    let from = Skeleton::of_version(&versions, OLD).edition("raw");
    let to = Skeleton::of_version(&versions, NEW).edition("raw");
    Update::builder(&site, SITE, from, to)
        .root(format!("/omd/sites/{SITE}"))
        .build()
        .unwrap()
}

pub fn file(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    chmod(root, rel, 0o644);
}

pub fn dir(root: &Path, rel: &str) {
    fs::create_dir_all(root.join(rel)).unwrap();
}

pub fn link(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

pub fn chmod(root: &Path, rel: &str, mode: u32) {
    fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Writes `<version>/share/omd/skel.permissions` for the skeleton dir `skel`.
pub fn permissions(skel: &Path, text: &str) {
    let path = skel.parent().unwrap().join("share/omd/skel.permissions");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// One node of a tree snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File { mode: u32, content: Vec<u8> },
    Dir { mode: u32 },
    Link { target: PathBuf },
}

/// Every path below `root` with type, mode, content and link target.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            out.insert(
                rel,
                Node::Link {
                    target: fs::read_link(&path).unwrap(),
                },
            );
        } else if meta.is_dir() {
            out.insert(rel, Node::Dir { mode });
            walk(root, &path, out);
        } else {
            out.insert(
                rel,
                Node::File {
                    mode,
                    content: fs::read(&path).unwrap(),
                },
            );
        }
    }
}

/// Recursively copies a tree (for comparing a crashed run with a clean one).
pub fn copy_tree(from: &Path, to: &Path) {
    let meta = fs::symlink_metadata(from).unwrap();
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from).unwrap(), to).unwrap();
    } else if meta.is_dir() {
        fs::create_dir(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
        fs::set_permissions(to, meta.permissions()).unwrap();
    } else {
        fs::copy(from, to).unwrap();
    }
}

/// A tiny test-only merger: clean when one side is unchanged or both are
/// equal; for texts with the same number of lines it merges line by line;
/// otherwise (and for lines changed differently) it reports a conflict with
/// git-style markers.
pub struct LineMerger;

impl TextMerger for LineMerger {
    fn merge(&self, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergedText, MergeFailure> {
        if ours == base || ours == theirs {
            return Ok(MergedText {
                text: theirs.to_vec(),
                conflicts: 0,
            });
        }
        if theirs == base {
            return Ok(MergedText {
                text: ours.to_vec(),
                conflicts: 0,
            });
        }
        if ours == b"FAIL-MERGE\n" {
            return Err("merge engine refused".into());
        }
        let split = |t: &[u8]| {
            t.split_inclusive(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        let (b, o, t) = (split(base), split(ours), split(theirs));
        let block = |o: &[u8], t: &[u8]| {
            [
                b"<<<<<<< ours\n".as_slice(),
                o,
                b"=======\n",
                t,
                b">>>>>>> theirs\n",
            ]
            .concat()
        };
        if b.len() != o.len() || b.len() != t.len() {
            return Ok(MergedText {
                text: block(ours, theirs),
                conflicts: 1,
            });
        }
        let mut text = Vec::new();
        let mut conflicts = 0;
        for i in 0..b.len() {
            if o[i] == b[i] {
                text.extend_from_slice(&t[i]);
            } else if t[i] == b[i] || t[i] == o[i] {
                text.extend_from_slice(&o[i]);
            } else {
                conflicts += 1;
                text.extend_from_slice(&block(&o[i], &t[i]));
            }
        }
        Ok(MergedText { text, conflicts })
    }
}

/// Answers from a script, recording every conflict it was asked about.
pub struct Scripted {
    pub answers: VecDeque<Answer>,
    pub asked: Vec<Conflict>,
}

impl Scripted {
    pub fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
        Self {
            answers: answers.into_iter().collect(),
            asked: Vec::new(),
        }
    }
}

impl Resolver for Scripted {
    fn resolve(&mut self, conflict: &Conflict) -> Answer {
        self.asked.push(conflict.clone());
        self.answers
            .pop_front()
            .expect("the script has no answer left")
    }
}

/// The status lines of a plan, for assertions.
pub fn lines(plan: &Plan) -> Vec<String> {
    plan.lines()
}
