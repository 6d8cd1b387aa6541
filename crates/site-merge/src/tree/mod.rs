//! Tree-level site updates: planner, conflict resolution, transactional
//! executor with journal and recovery, site creation and removal.
//!
//! See the crate documentation for the on-disk layouts and the flow. Inside
//! this module, items refer to each other through `super::`, so the folder
//! can move to another crate unchanged.

mod error;
mod exec;
mod fsx;
mod git_merge;
mod journal;
mod macros;
mod merge;
mod patch_merge;
mod perms;
mod plan;
mod resolve;
mod site;
mod skeleton;

pub use error::{Error, Result};
pub use exec::{Applied, ApplyObserver, ApplyOptions, Fault};
pub use fsx::Kind;
pub use git_merge::GitMerge;
pub use journal::{
    DONE_DIR, JOURNAL_DIR, Leftovers, Recovery, flushes, leftovers, recover, remove_done_journal,
};
pub use macros::Replacements;
pub use merge::{MergeFailure, MergedText, TextMerger, unified_diff};
pub use patch_merge::{MergeMethod, MergeMethodParseError, PatchMerge};
pub use perms::PermissionTable;
pub use plan::{
    DEFAULT_IGNORED, Entry, Outcome, PermissionOutcome, PermissionStep, Plan, Update,
    UpdateBuilder, ignored_paths,
};
pub use resolve::{
    Answer, Choice, Conflict, ConflictKind, ConflictReport, MergeTexts, Policy, PolicyParseError,
    Question, Resolver,
};
pub use site::{
    Created, SITE_DIR_MODE, SiteCreation, VERSION_DIR_LINKS, VERSION_LINK, remove_site,
    site_version, version_link_target,
};
pub use skeleton::{Skeleton, VERSION_META_DIR};
