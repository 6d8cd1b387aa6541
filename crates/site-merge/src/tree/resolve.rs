//! Conflicts, the questions Checkmk asks about them, and who answers.

use std::str::FromStr;

use serde::Serialize;

use super::merge::unified_diff;

/// One option of a question: its hotkey, its short name and its description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// The hotkey: the first character of `name` not taken by an earlier choice.
    pub key: char,
    /// The short name (`keep`, `replace`, `remove`, `default`, `diff`, …).
    pub name: String,
    /// The description shown next to it.
    pub description: String,
}

/// A question with Checkmk's exact texts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The title of the dialog box (`Conflict at X`, `Conflicts in X!`, …).
    pub title: String,
    /// The explanatory text.
    pub text: String,
    /// The choices in menu order.
    pub choices: Vec<Choice>,
}

impl Question {
    pub(crate) fn new(title: String, text: String, choices: &[(&str, String)]) -> Self {
        let mut taken: Vec<char> = Vec::new();
        let choices = choices
            .iter()
            .map(|(name, description)| {
                let key = name.chars().find(|c| !taken.contains(c)).unwrap_or('?');
                taken.push(key);
                Choice {
                    key,
                    name: (*name).to_owned(),
                    description: description.clone(),
                }
            })
            .collect();
        Self {
            title,
            text,
            choices,
        }
    }

    /// A two-way question: `[yes, no, shell, abort]`, as Checkmk's `user_confirms`.
    pub(crate) fn two_way(
        title: String,
        text: String,
        yes: (&str, String),
        no: (&str, String),
    ) -> Self {
        Self::new(
            title,
            text,
            &[
                yes,
                no,
                ("shell", "Open a shell for looking around".to_owned()),
                ("abort", "Stop here and abort update!".to_owned()),
            ],
        )
    }

    /// The choice answered by `key`, if any.
    pub fn choice(&self, key: char) -> Option<&Choice> {
        self.choices.iter().find(|c| c.key == key)
    }

    /// The prompt line, e.g. `k/r/s/a ==> `.
    pub fn prompt(&self) -> String {
        let keys: Vec<String> = self.choices.iter().map(|c| c.key.to_string()).collect();
        format!("{} ==> ", keys.join("/"))
    }
}

/// What a conflict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A keep/replace (or keep/remove) question (rows 3, 5-7, 15-18).
    TwoWay,
    /// A failed content merge (row 14) with the menu d/y/n/e/t/k/r/i/s/a.
    Merge,
    /// A permission question (keep/default).
    Permission,
}

/// The texts of a failed merge, for the conflict menu (row 14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeTexts {
    /// The version updated from.
    pub old_version: String,
    /// The version updated to.
    pub new_version: String,
    /// The old default, instantiated with the old macros (`X-<old>`).
    pub old_default: Vec<u8>,
    /// The new default, instantiated with the new macros (`X-<new>`).
    pub new_default: Vec<u8>,
    /// The operator's version (`X.orig`).
    pub yours: Vec<u8>,
    /// The half-merged text with git-style conflict markers.
    pub merged: Vec<u8>,
    /// Number of conflicting regions in `merged`.
    pub conflicts: usize,
    /// 0 on the first attempt; counts "try again" rounds (then the binary prints ` Merge failed again.`).
    pub attempt: u32,
}

impl MergeTexts {
    /// Menu `d`: differences between your version and the new default (`diff -u X.orig X-<new>`).
    pub fn diff_yours_to_new(&self, path: &str) -> Vec<u8> {
        unified_diff(
            &self.yours,
            &self.new_default,
            &format!("{path}.orig"),
            &format!("{path}-{}", self.new_version),
        )
    }

    /// Menu `y`: your changes against the old default (`diff -u X-<old> X.orig`).
    pub fn diff_your_changes(&self, path: &str) -> Vec<u8> {
        unified_diff(
            &self.old_default,
            &self.yours,
            &format!("{path}-{}", self.old_version),
            &format!("{path}.orig"),
        )
    }

    /// Menu `n`: what changed from the old to the new default (`diff -u X-<old> X-<new>`).
    pub fn diff_update(&self, path: &str) -> Vec<u8> {
        unified_diff(
            &self.old_default,
            &self.new_default,
            &format!("{path}-{}", self.old_version),
            &format!("{path}-{}", self.new_version),
        )
    }
}

/// A decision the update needs, handed to a [`Resolver`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The site-relative path.
    pub path: String,
    /// The decision-table row (`None` for permission questions).
    pub row: Option<u8>,
    /// What kind of question this is; says which [`Answer`]s fit.
    pub kind: ConflictKind,
    /// The question with Checkmk's texts and choices.
    pub question: Question,
    /// For [`ConflictKind::Merge`]: the texts and diffs.
    pub merge: Option<MergeTexts>,
}

/// An answer to a [`Conflict`].
///
/// Two-way and permission questions take `Keep` (the "yes" choice: keep
/// yours) or `Replace` (the "no" choice: replace / remove / set new link /
/// set default permissions). Merge conflicts take `KeepMerged` (k), `Restore`
/// (r), `Install` (i), `UseContent` (e: the binary let the operator edit the
/// half-merged file) or `RetryWith` (t: the operator edited the original; the
/// merge is tried again). Menu entries that only display something (d, y, n,
/// s) are handled by the resolver itself. `Abort` stops the update before
/// anything is written; `Defer` leaves the conflict open (dry run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Keep the operator's version.
    Keep,
    /// Take the new default (replace, remove, new link target, default permissions).
    Replace,
    /// Merge menu `k`: keep the half-merged file with conflict markers.
    KeepMerged,
    /// Merge menu `r`: restore the operator's original file.
    Restore,
    /// Merge menu `i`: install the new default file (the file's mode is kept).
    Install,
    /// Merge menu `e`: use this (edited) content.
    UseContent(Vec<u8>),
    /// Merge menu `t`: the operator's original was edited to this; merge again.
    RetryWith(Vec<u8>),
    /// Stop here and abort the update (`Update aborted.`).
    Abort,
    /// Leave the conflict open (dry run); such a plan cannot be applied.
    Defer,
}

impl Answer {
    /// The short name of the choice this answer stands for (for reports).
    pub(crate) fn name(&self, kind: ConflictKind) -> &'static str {
        match (self, kind) {
            (Answer::Keep, _) => "keep",
            (Answer::Replace, ConflictKind::Permission) => "default",
            (Answer::Replace, _) => "replace",
            (Answer::KeepMerged, _) => "keep",
            (Answer::Restore, _) => "restore",
            (Answer::Install, _) => "install",
            (Answer::UseContent(_), _) => "edit",
            (Answer::RetryWith(_), _) => "try again",
            (Answer::Abort, _) => "abort",
            (Answer::Defer, _) => "deferred",
        }
    }
}

/// Answers conflicts. The `omd` binary implements it to draw the menus;
/// [`Policy`] implements the non-interactive modes.
pub trait Resolver {
    /// Decides one conflict. Called in walk order, before anything is written.
    fn resolve(&mut self, conflict: &Conflict) -> Answer;
}

impl<R: Resolver + ?Sized> Resolver for &mut R {
    fn resolve(&mut self, conflict: &Conflict) -> Answer {
        (**self).resolve(conflict)
    }
}

/// The conflict modes of `omd update --conflict=…` (spec section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Interactive. As a [`Resolver`] on its own it defers every conflict
    /// (a dry run); the binary supplies the interactive resolver.
    Ask,
    /// Take the new default everywhere ("no" branch, menu `install`, `default`).
    Install,
    /// Keep the operator's version everywhere ("yes" branch, menu `restore`, `keep`).
    KeepOld,
    /// Abort the update at the first conflict, before anything is written.
    Abort,
}

impl Resolver for Policy {
    fn resolve(&mut self, conflict: &Conflict) -> Answer {
        match (self, conflict.kind) {
            (Policy::Ask, _) => Answer::Defer,
            (Policy::Abort, _) => Answer::Abort,
            (Policy::Install, ConflictKind::Merge) => Answer::Install,
            (Policy::Install, _) => Answer::Replace,
            (Policy::KeepOld, ConflictKind::Merge) => Answer::Restore,
            (Policy::KeepOld, _) => Answer::Keep,
        }
    }
}

/// The error of parsing a [`Policy`]; its message is Checkmk's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Argument to --conflict must be one of ask, install, keepold and abort.")]
pub struct PolicyParseError;

impl FromStr for Policy {
    type Err = PolicyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ask" => Ok(Policy::Ask),
            "install" => Ok(Policy::Install),
            "keepold" => Ok(Policy::KeepOld),
            "abort" => Ok(Policy::Abort),
            _ => Err(PolicyParseError),
        }
    }
}

/// A conflict as recorded in a [`Plan`](crate::tree::Plan) (serializable, without the file texts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConflictReport {
    /// What kind of question it was.
    pub kind: ConflictKind,
    /// Title of the question (`Conflict at X`, …).
    pub title: String,
    /// The question text.
    pub text: String,
    /// The choices offered.
    pub choices: Vec<Choice>,
    /// The name of the choice taken; `None` while open (dry run).
    pub answer: Option<String>,
}

impl ConflictReport {
    pub(crate) fn new(conflict: &Conflict, answer: &Answer) -> Self {
        Self {
            kind: conflict.kind,
            title: conflict.question.title.clone(),
            text: conflict.question.text.clone(),
            choices: conflict.question.choices.clone(),
            answer: (!matches!(answer, Answer::Defer))
                .then(|| answer.name(conflict.kind).to_owned()),
        }
    }
}

/// The merge-conflict menu of row 14 (without `missing`, as we never produce `.rej` files).
pub(crate) fn merge_question(path: &str, old: &str, new: &str) -> Question {
    Question::new(
        format!("Conflicts in {path}!"),
        format!(
            "I've tried to merge the changes from version {old} to {new} into {path}.\nUnfortunately there are conflicts with your changes. \nYou have the following options: "
        ),
        &[
            (
                "diff",
                "Show differences between the new default and your version".to_owned(),
            ),
            (
                "you",
                "Show your changes compared with the old default version".to_owned(),
            ),
            ("new", format!("Show what has changed from {old} to {new}")),
            (
                "edit",
                "Edit half-merged file (watch out for >>>>> and <<<<<)".to_owned(),
            ),
            (
                "try again",
                "Edit your original file and try again".to_owned(),
            ),
            ("keep", "Keep half-merged version of the file".to_owned()),
            (
                "restore",
                "Restore your original version of the file".to_owned(),
            ),
            ("install", "Install the new default version".to_owned()),
            ("shell", "Open a shell for looking around".to_owned()),
            ("abort", "Stop here and abort update!".to_owned()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_menu_hotkeys() {
        let q = merge_question("etc/x", "1", "2");
        let keys: String = q.choices.iter().map(|c| c.key).collect();
        assert_eq!(keys, "dynetkrisa");
        assert_eq!(q.prompt(), "d/y/n/e/t/k/r/i/s/a ==> ");
    }

    #[test]
    fn two_way_hotkeys() {
        let q = Question::two_way(
            "t".into(),
            "x".into(),
            ("keep", "a".into()),
            ("default", "b".into()),
        );
        assert_eq!(q.prompt(), "k/d/s/a ==> ");
        let q = Question::two_way(
            "t".into(),
            "x".into(),
            ("keep", "a".into()),
            ("remove", "b".into()),
        );
        assert_eq!(q.prompt(), "k/r/s/a ==> ");
    }

    #[test]
    fn policy_parse() {
        assert_eq!("keepold".parse::<Policy>(), Ok(Policy::KeepOld));
        assert_eq!(
            "ignore".parse::<Policy>().unwrap_err().to_string(),
            "Argument to --conflict must be one of ask, install, keepold and abort."
        );
    }
}
