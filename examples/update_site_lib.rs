//! The body of the `update_site` example: a sandbox OMD root with two
//! versions, a site created and edited like an operator would, and an update
//! through the `site-lifecycle` library with a scripted resolver, printing
//! the events as they come.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use anyhow::{Context as _, Result};
use omd_versions::OmdRoot;
use site_lifecycle::{Event, Events, UpdateOutcome, UpdateRequest, UpdateResolver};
use site_merge::{Answer, Conflict, Policy};

/// The site's version before the update.
pub const OLD: &str = "2.3.0p1.cre";
/// The version the site is updated to.
pub const NEW: &str = "2.3.0p2.cre";
/// The site's name.
pub const SITE: &str = "demo";

/// Answers each conflict by a script (path -> answer), `keep` otherwise,
/// and records what it was asked.
#[derive(Debug, Default)]
pub struct ScriptedResolver {
    /// Answers by path.
    pub script: BTreeMap<String, Answer>,
    /// The paths asked about, in order.
    pub asked: Vec<String>,
}

impl UpdateResolver for ScriptedResolver {
    fn conflict(&mut self, conflict: &Conflict) -> Answer {
        self.asked.push(conflict.path.clone());
        self.script
            .get(&conflict.path)
            .cloned()
            .unwrap_or(Answer::Keep)
    }

    fn can_ask(&self) -> bool {
        false
    }

    fn answers_conflicts(&self) -> bool {
        true
    }
}

/// Prints the lines and counts the progress events.
#[derive(Debug, Default)]
pub struct Printer {
    /// The lines printed.
    pub lines: Vec<String>,
    /// How many `Applying` events came.
    pub progress: usize,
    /// Whether `Committed` came.
    pub committed: bool,
}

impl Events for Printer {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Line(text) | Event::Status(text) => {
                println!("  | {text}");
                self.lines.push((*text).to_owned());
            }
            Event::Planned { paths, changes } => {
                println!("  planned: {changes} of {paths} paths change");
            }
            Event::Applying { .. } => self.progress += 1,
            Event::Committed => self.committed = true,
            _ => {}
        }
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Builds the sandbox in `dir` (emptied first): two versions, the site on
/// OLD with the operator's edits; NEW has a post-update script.
pub fn sandbox(dir: &Path) -> Result<OmdRoot> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    for (version, new) in [(OLD, false), (NEW, true)] {
        let skel = dir.join("versions").join(version).join("skel");
        write(&skel.join("etc/omd/site.conf"), "SITE=###SITE###\n")?;
        write(
            &skel.join("etc/demo.conf"),
            if new {
                "one\nTWO\nthree\n"
            } else {
                "one\ntwo\nthree\n"
            },
        )?;
        write(
            &skel.join("etc/notes.conf"),
            if new { "a\nb\nC\n" } else { "a\nb\nc\n" },
        )?;
        fs::create_dir_all(skel.join("var/log"))?;
    }
    symlink(dir.join("versions").join(NEW), dir.join("versions/default"))?;
    let root = OmdRoot::new(dir);
    site_lifecycle::create::create(&root, SITE, Some(OLD))?;
    let home = root.site_dir(SITE);
    // The operator's edits: a conflict and a clean merge.
    write(&home.join("etc/demo.conf"), "one\nmine\nthree\n")?;
    write(&home.join("etc/notes.conf"), "A\nb\nc\n")?;
    let script = dir
        .join("versions")
        .join(NEW)
        .join("lib/omd/scripts/post-update/10-hello");
    write(
        &script,
        "#!/bin/sh\necho \"hello from $OMD_SITE on $OMD_TO_VERSION\"\n",
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    Ok(root)
}

/// Runs the example in `dir`: builds the sandbox and updates the site,
/// installing the new default of `etc/demo.conf`.
pub fn run(dir: &Path) -> Result<(UpdateOutcome, ScriptedResolver, Printer)> {
    let root = sandbox(dir)?;
    let mut resolver = ScriptedResolver::default();
    resolver
        .script
        .insert("etc/demo.conf".to_owned(), Answer::Install);
    let mut printer = Printer::default();
    let mut request = UpdateRequest::new(SITE, Policy::Ask);
    request.version = Some(NEW.to_owned());
    println!("Updating {SITE} from {OLD} to {NEW} in {}:", dir.display());
    let outcome = site_lifecycle::update(&root, &request, &mut resolver, &mut printer)
        .context("the update failed")?;
    Ok((outcome, resolver, printer))
}
