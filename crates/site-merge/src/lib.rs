//! Three-way merging for Checkmk site updates.
//!
//! The text engine merges one file: given the common ancestor (`base`) and two
//! descendants (`ours`, `theirs`), it writes the merged bytes and counts the
//! conflicts exactly as `git merge-file` does (Myers diff, git's default merge
//! level, the `merge`, `diff3` and `zdiff3` conflict styles, labels, marker
//! size, favour modes, CRLF markers in CRLF files, missing final newlines).
//! Binary inputs (a NUL byte in the first 8000 bytes) are refused.
//!
//! ```
//! use site_merge::{ConflictStyle, MergeOptions};
//!
//! let base = b"a\nb\nc\n";
//! let ours = b"a\nB\nc\n";
//! let theirs = b"a\nb\nC\n";
//! let out = site_merge::merge(base, ours, theirs).unwrap();
//! assert_eq!(out.conflicts, 1);
//!
//! let out = MergeOptions::new()
//!     .style(ConflictStyle::Diff3)
//!     .merge(b"x\n", b"y\n", b"z\n")
//!     .unwrap();
//! assert_eq!(
//!     out.bytes,
//!     b"<<<<<<< ours\ny\n||||||| base\nx\n=======\nz\n>>>>>>> theirs\n"
//! );
//! ```
//!
//! The engine does no I/O. For large files, [`MergeOptions::merge_view`]
//! returns the result as a [`MergeView`] of the inputs that is written out
//! piece by piece ([`MergeView::write_to`]) instead of being built in memory,
//! and [`InputBuffer`] reads an input file into memory backed by huge pages
//! where the kernel offers them. `examples/merge_file.rs` in the workspace is
//! a drop-in replacement for `git merge-file` built on these three.
//!
//! # How it stays exact and fast
//!
//! * The two diffs (base to ours, base to theirs) reproduce git's xdiff:
//!   trimming of common ends, discarding of lines without a match (and of
//!   frequent lines inside runs of those), linear-space Myers with xdiff's
//!   cost cut-offs (so inputs such as a reversed file or a 4-line alphabet
//!   stay near-linear), and xdiff's sliding of change groups. The histogram
//!   diff of `git merge` is available with [`Algorithm::Histogram`].
//! * The merge follows `xdl_merge`: touching hunks conflict, conflicts are
//!   re-diffed and shrunk, conflicts at most three lines (or only
//!   non-alphanumeric lines) apart are folded, `zdiff3` hoists common lines.
//! * Equal inputs short-cut before any work; every distinct line of the three
//!   inputs gets one id in one table. The base is split and hashed in a single
//!   pass; the sides are compared with the base byte-wise in bulk and take
//!   the base's ids for every run of lines they repeat, so only the lines
//!   they changed are hashed. The two diffs, and the halves of a large diff,
//!   run on two threads.
//! * Memory is what process-level speed hinges on (a page fault costs more
//!   than interning the line that touched it): the search windows of the
//!   Myers diff stay as small as the cost cut-off allows, per-line tables
//!   are 32-bit, and the result can go to its destination without an
//!   output-sized buffer.
//!
//! # Site updates (tree level)
//!
//! The [`Update`] planner and executor apply a new version's skeleton to a site
//! (`omd update`), [`SiteCreation`] and [`remove_site`] do `omd create` and
//! `omd rm`. Content merges (decision-table row 14) go through a [`TextMerger`]:
//! [`PatchMerge`] merges as Checkmk does (`diff -u old new | patch --merge`,
//! reproduced byte for byte by [`patch_merge`]), [`GitMerge`] with the
//! git-exact engine above; [`MergeMethod`] chooses between the two (default
//! [`MergeMethod::Patch`]). [`Error`] is the
//! error of the tree level, [`MergeError`] that of the text engine.
//!
//! ## Flow
//!
//! 1. [`Update::builder`] names the site, the old and the new [`Skeleton`]
//!    (version name, `skel/`, `skel.permissions`, edition for `###EDITION###`).
//! 2. [`Update::plan`] walks the new skeleton top-down, then the paths only
//!    in the old skeleton bottom-up, and classifies every path by the
//!    decision table (rows 1-18) and the permission rules. Where Checkmk
//!    asks, the caller's [`Resolver`] answers ([`Policy`] for
//!    `install`/`keepold`/`abort`; the binary's own menu for `ask`;
//!    [`Policy::Ask`] alone defers every question, which is the dry run).
//!    Row-14 content merges go through a [`TextMerger`]. The result is a
//!    [`Plan`]: every path, its [`Outcome`], Checkmk's exact status line, the
//!    questions and their answers. It is `serde::Serialize` (`--json`).
//!    Nothing has been written at this point; an `abort` answer ends here
//!    with [`Error::Aborted`] (`Update aborted.`).
//! 3. [`Update::apply`] executes the plan as one transaction (below).
//! 4. Before the next update, [`recover`] handles a journal left by a crash.
//!
//! ```no_run
//! use site_merge::{ApplyOptions, GitMerge, Policy, Skeleton, Update};
//!
//! let versions = std::path::Path::new("/omd/versions");
//! let site = std::path::Path::new("/omd/sites/mysite");
//! site_merge::recover(site)?;
//! let from = Skeleton::for_site(site, versions, "2.3.0p1.cre").edition("raw");
//! let to = Skeleton::of_version(versions, "2.4.0p1.cre").edition("raw");
//! let update = Update::builder(site, "mysite", from, to).root("/omd/sites/mysite").build()?;
//! let plan = update.plan(&GitMerge::new(), &mut Policy::KeepOld)?;
//! for line in plan.lines() {
//!     println!("{line}");
//! }
//! update.apply(&plan, &ApplyOptions::new())?;
//! println!("Finished update.");
//! # Ok::<(), site_merge::Error>(())
//! ```
//!
//! ## Layout of a version
//!
//! A version is a directory `<versions>/<name>/` (on a real system
//! `/omd/versions/<name>`, e.g. `2.4.0p1.cre`) holding
//!
//! * `skel/` – the site skeleton: every file, directory and symlink a new
//!   site gets, relative to the site home (`skel/etc/apache/conf.d/omd.conf`,
//!   `skel/.profile`, …). Files may contain the macros `###SITE###` (site
//!   name), `###ROOT###` (site home, `/omd/sites/<site>`) and `###EDITION###`
//!   (long edition name: `raw`, `enterprise`, … or `community`, `pro`, …),
//!   replaced byte-wise when a site file is created or compared. Symlinks are
//!   copied verbatim. Paths below a top-level `tmp/` are not managed.
//! * `share/omd/skel.permissions` – optional; lines `relpath octal-mode`
//!   (`etc/ssl/private 700`), blank lines and `#` comments ignored. A path
//!   without an entry gets 0750 if it is a directory, else 0640 (Checkmk's
//!   current `get_skel_permissions`; older releases used the skeleton
//!   file's own mode).
//!
//! A site is a directory `<sites>/<site>/` with a symlink
//! `version -> ../../versions/<name>` and a `.version_meta/` directory
//! (copy of the version's `skel/`, its `skel.permissions` and a `version`
//! file with the name). To prepare a demo: create two version directories
//! with `skel/` trees, [`SiteCreation`] a site from the first, edit files in
//! the site, then update it to the second.
//!
//! ## The transaction and its journal
//!
//! [`Update::apply`] keeps a journal in `<site>/.site-update/` ([`JOURNAL_DIR`]):
//!
//! * `header.json` – `{"format":1,"site":…,"from":…,"to":…}`, written and
//!   fsynced before the first change;
//! * `log` – one JSON line per operation, appended and fsynced **before**
//!   the operation (in batches of up to 256 lines, one fsync per batch; the
//!   operations of a batch run only after that fsync):
//!   `{"op":"absent","path":P}` (P did not exist),
//!   `{"op":"saved","path":P,"slot":N}` (the object at P — file, symlink or
//!   whole directory tree, with its modes — is moved to `saved/N`),
//!   `{"op":"mode","path":P,"mode":M}` (P had mode M before a chmod),
//!   `{"op":"swapped","path":P,"slot":N,"ino":I}` (a new file, inode I, was
//!   written to `saved/N` and is exchanged with the object at P);
//! * `saved/N` – the original objects, moved (renamed, not copied) out of
//!   the site. The site must therefore be one file system (its `tmp/` is
//!   never touched).
//!
//! A file that replaces an existing object is written into the journal
//! first and then exchanged with it by one `renameat2(RENAME_EXCHANGE)`,
//! which puts the new file in place and the original into its slot at once
//! (three renames on a file system without that call). Undoing such a
//! record moves the slot back only when it no longer holds inode I. Other
//! new content is written to a temporary sibling `.<name>.site-update~` and
//! renamed over the path. The last operations refresh `.version_meta/`:
//! when it is the old skeleton of the update (`Skeleton::for_site`), path
//! by path — only what differs in the new skeleton (content, mode, kind,
//! link target, presence) is changed, journaled like every other change,
//! and what planning already read and compared is not read again; otherwise
//! it is replaced as a whole by a fresh copy. Both end in the same tree.
//! Then one `syncfs` makes every change durable, and the `version` link is
//! switched (temporary link + rename + fsync of the site directory): that
//! rename is the **commit point**. Finally the journal is renamed to
//! `.site-update.done~` and deleted. No `X-old`, `X-new`, `X.orig` or `.rej`
//! helper files are ever created in the site.
//!
//! On any error before the commit point, the journal is played backwards and
//! the site is exactly as before (types, contents, modes, link targets);
//! [`Error::RolledBack`] says why. After a crash, [`recover`] **finishes**
//! the update when the `version` link already names the target version
//! (only the journal is left to delete) and **rolls back** otherwise
//! ([`Recovery`]). Undoing a record is idempotent (a missing slot means "not
//! moved yet" or "already restored"), and the rollback truncates the log
//! after each undone record, so it is safe to interrupt and rerun.
//! [`Update::apply`] refuses to start while a journal exists
//! ([`Error::JournalPresent`]); the `omd` binary should call [`recover`]
//! first (and say what it did).
//!
//! For tests, [`Fault`] stops the executor before a chosen operation:
//! with an error (rollback), as a simulated crash (journal left behind), or
//! by pausing so that a test can SIGKILL the process.
//!
//! Deliberate differences from Checkmk: skeleton directories are walked in
//! sorted order (not readdir order); an error on one path rolls back the
//! whole update instead of printing ` ! Exception` and continuing; the
//! merge-conflict menu has no `missing` entry (there is no `.rej`); where
//! Checkmk's code raises for a new file or link whose parent directory the
//! operator removed or replaced, the status is ` ! Exception      X` plus a
//! line saying why (a new directory gets its missing parents, as in
//! Checkmk); file ownership is not
//! changed (the update runs as the site user); an unreadable skeleton file reads as empty when comparing (as in Checkmk)
//! and fails the update (with rollback) when it has to be installed, where
//! Checkmk offers retry/ignore. An operator's symlink is a link for the
//! decision table (Checkmk's `filetype()`), but re-creating the path from
//! the new skeleton (rows 3, 12, 16, 17, 18) follows it as Checkmk's
//! `create_skeleton_file` does: a link to an existing path is replaced; over
//! a link that leads nowhere inside the site a new file is written *through*
//! the link (its end is created, journaled like any other change, and the
//! link is kept), while a new directory or link, a loop or an end whose
//! directory is missing give ` ! Exception      X` with a line saying why.
//! A new path below an operator's link to a directory of the site is created
//! through the link; a path below a directory link that loops is absent (as
//! for Python's `os.path.islink`/`exists`). Nothing is written below an
//! operator's directory link out of the site (` ! Exception      X`). A link
//! out of the site is never written through: it is
//! kept and reported as ` ! Exception      X` (where neither skeleton has a
//! link there, whatever the row) — the one deliberate difference. The
//! 2.3/2.4 special case of
//! `etc/mk-livestatus/nagios.cfg` (fix for #15721: a site file saying
//! `edition=raw` is compared with the raw instantiation of the old skeleton;
//! an unreadable one is ` ! Exception`) is reproduced for from-versions 2.3
//! and 2.4 with a non-raw old edition.
//!
//! # Crate features
//!
//! None.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

mod input;
mod text;
mod tree;

pub use input::InputBuffer;
pub use text::{
    Algorithm, ConflictStyle, DEFAULT_MARKER_SIZE, Favor, Input, Level, MergeError, MergeOptions,
    MergeOutput, MergeView, diff_utf8_error, merge, patch_merge,
};
pub use tree::{
    Answer, Applied, ApplyOptions, Choice, Conflict, ConflictKind, ConflictReport, Created,
    DEFAULT_IGNORED, Entry, Error, Fault, GitMerge, JOURNAL_DIR, Kind, MergeFailure, MergeMethod,
    MergeMethodParseError, MergeTexts, MergedText, Outcome, PatchMerge, PermissionOutcome,
    PermissionStep, PermissionTable, Plan, Policy, PolicyParseError, Question, Recovery,
    Replacements, Resolver, Result, SITE_DIR_MODE, SiteCreation, Skeleton, TextMerger, Update,
    UpdateBuilder, VERSION_DIR_LINKS, VERSION_LINK, VERSION_META_DIR, ignored_paths, recover,
    remove_site, site_version, unified_diff, version_link_target,
};
// The site lifecycle's hooks: progress, cancellation, leftovers, flush count.
pub use tree::{ApplyObserver, DONE_DIR, Leftovers, flushes, leftovers, remove_done_journal};
