//! The interactive conflict menu of `omd update --conflict=ask` (spec §3):
//! the two-way questions (`k/r/s/a`, `k/d/s/a`) and the merge menu
//! `d/y/n/e/t/k/r/i/s/a`, drawn from the library's [`Question`] data with
//! Checkmk's texts, plus the yes/no confirmations of the update flow.
//!
//! The menu logic ([`MenuResolver`]) talks to a [`Console`]; [`TtyConsole`]
//! is the real terminal (keys read one at a time in non-canonical mode,
//! `$PAGER`, `$VISUAL`/`$EDITOR`, `bash -i`), tests script one.

#[cfg(test)]
use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use site_merge::{Answer, Conflict, ConflictKind, Question, Resolver};

/// What the menu needs from a terminal.
pub(crate) trait Console {
    /// Reads one key; `None` on end of input or Ctrl-C.
    fn key(&mut self) -> io::Result<Option<char>>;
    /// Writes text.
    fn write(&mut self, text: &str) -> io::Result<()>;
    /// Shows a (diff) text through the pager.
    fn page(&mut self, text: &[u8]) -> io::Result<()>;
    /// Lets the operator edit `content` (a file named like `name`); returns the result.
    fn edit(&mut self, name: &str, content: &[u8]) -> io::Result<Vec<u8>>;
    /// Opens a shell in `dir` (the conflicted file's directory in the
    /// site), after writing `files` (name, description, content: the other
    /// versions of the file) into a scratch directory and naming them.
    fn shell(&mut self, dir: &Path, files: &[(String, String, Vec<u8>)]) -> io::Result<()>;
}

/// A [`Resolver`] that asks the operator through a [`Console`].
///
/// Display-only choices (`d`, `y`, `n`, `s`) show something and draw the
/// menu again; unknown keys are ignored; end of input or Ctrl-C answers
/// `abort`. A console error also aborts and is kept in [`MenuResolver::error`].
pub(crate) struct MenuResolver<C: Console> {
    console: C,
    site_home: PathBuf,
    color: bool,
    error: Option<io::Error>,
}

impl<C: Console> MenuResolver<C> {
    pub(crate) fn new(console: C, site_home: impl Into<PathBuf>, color: bool) -> Self {
        Self {
            console,
            site_home: site_home.into(),
            color,
            error: None,
        }
    }

    /// The console error that ended the questions, if any.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// The console (for the confirmations of the update flow).
    pub(crate) fn console_mut(&mut self) -> &mut C {
        &mut self.console
    }

    fn ask(&mut self, conflict: &Conflict) -> io::Result<Answer> {
        if conflict.merge.as_ref().is_some_and(|m| m.attempt > 0) {
            self.console.write(" Merge failed again.\n")?;
        }
        loop {
            let menu = render_menu(&conflict.question, self.color);
            self.console.write(&menu)?;
            let Some(choice) = self.read_choice(&conflict.question)? else {
                self.console.write("\n")?;
                return Ok(Answer::Abort);
            };
            self.console.write(&format!("{}\n", choice.0))?;
            let name = choice.1;
            if let Some(answer) = self.act(conflict, &name)? {
                return Ok(answer);
            }
        }
    }

    /// Reads keys until one names a choice: (key, choice name); `None` = abort.
    fn read_choice(&mut self, question: &Question) -> io::Result<Option<(char, String)>> {
        loop {
            let Some(key) = self.console.key()? else {
                return Ok(None);
            };
            if let Some(choice) = question.choice(key) {
                return Ok(Some((key, choice.name.clone())));
            }
        }
    }

    /// Carries out a choice: `Some(answer)` ends the question, `None` redraws.
    fn act(&mut self, conflict: &Conflict, name: &str) -> io::Result<Option<Answer>> {
        let path = conflict.path.as_str();
        if name == "abort" {
            return Ok(Some(Answer::Abort));
        }
        if name == "shell" {
            return self.shell(conflict);
        }
        if conflict.kind != ConflictKind::Merge {
            // [yes, no, shell, abort]: the first choice keeps, the second replaces.
            let index = conflict
                .question
                .choices
                .iter()
                .position(|c| c.name == name);
            return Ok(match index {
                Some(0) => Some(Answer::Keep),
                Some(1) => Some(Answer::Replace),
                _ => None,
            });
        }
        let Some(texts) = &conflict.merge else {
            return Ok(None);
        };
        Ok(match name {
            "diff" => {
                self.show(&texts.diff_yours_to_new(path))?;
                None
            }
            "you" => {
                self.show(&texts.diff_your_changes(path))?;
                None
            }
            "new" => {
                self.show(&texts.diff_update(path))?;
                None
            }
            "edit" => {
                let edited = self.console.edit(path, &texts.merged)?;
                if has_conflict_markers(&edited) {
                    self.console.write(&format!(
                        " The edited {path} still has conflict markers; choose again.\n"
                    ))?;
                    None
                } else {
                    Some(Answer::UseContent(edited))
                }
            }
            "try again" => Some(Answer::RetryWith(self.console.edit(path, &texts.yours)?)),
            "keep" => Some(Answer::KeepMerged),
            "restore" => Some(Answer::Restore),
            "install" => Some(Answer::Install),
            _ => None,
        })
    }

    /// `s`: a shell in the conflicted file's directory in the site, the
    /// other versions named. When the operator changed the site's file
    /// there, the change is the answer, unless it still has conflict
    /// markers (then the menu asks again).
    fn shell(&mut self, conflict: &Conflict) -> io::Result<Option<Answer>> {
        let path = conflict.path.as_str();
        let site_file = self.site_home.join(path);
        let base = Path::new(path)
            .file_name()
            .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned());
        let files = conflict.merge.as_ref().map_or_else(Vec::new, |m| {
            vec![
                (
                    format!("{base}-{}", m.old_version),
                    format!("the default of {}", m.old_version),
                    m.old_default.clone(),
                ),
                (
                    format!("{base}-{}", m.new_version),
                    format!("the default of {}", m.new_version),
                    m.new_default.clone(),
                ),
                (
                    format!("{base}.merged"),
                    "the merge with conflict markers".to_owned(),
                    m.merged.clone(),
                ),
            ]
        });
        let dir = site_file
            .parent()
            .map_or_else(|| self.site_home.clone(), Path::to_path_buf);
        let before = fs::read(&site_file).ok();
        self.console.write(&format!(
            " Your version of {path} is {base} here: edit it to the result you want.\n"
        ))?;
        self.console.shell(&dir, &files)?;
        let after = fs::read(&site_file).ok();
        let Some(after) = after.filter(|a| Some(a) != before.as_ref()) else {
            return Ok(None);
        };
        if conflict.kind != ConflictKind::Merge {
            return Ok(None);
        }
        if has_conflict_markers(&after) {
            self.console.write(&format!(
                " {path} still has conflict markers; choose again.\n"
            ))?;
            return Ok(None);
        }
        self.console
            .write(&format!(" Using your edited {path}.\n"))?;
        Ok(Some(Answer::UseContent(after)))
    }

    fn show(&mut self, diff: &[u8]) -> io::Result<()> {
        if diff.is_empty() {
            self.console.write("(no differences)\n")
        } else {
            self.console.page(diff)
        }
    }
}

impl<C: Console> Resolver for MenuResolver<C> {
    fn resolve(&mut self, conflict: &Conflict) -> Answer {
        match self.ask(conflict) {
            Ok(answer) => answer,
            Err(e) => {
                self.error = Some(e);
                Answer::Abort
            }
        }
    }
}

/// Whether `text` has a line starting a conflict region (`<<<<<<<`) or
/// ending one (`>>>>>>>`).
pub(crate) fn has_conflict_markers(text: &[u8]) -> bool {
    text.split(|b| *b == b'\n')
        .any(|line| line.starts_with(b"<<<<<<<") || line.starts_with(b">>>>>>>"))
}

/// A yes/no confirmation (`y`/`n`, Enter takes the default). `None` when
/// the input ended.
pub(crate) fn confirm(
    console: &mut dyn Console,
    title: &str,
    text: &str,
    yes: &str,
    no: &str,
    default_yes: bool,
) -> io::Result<Option<bool>> {
    let mut out = format!("\n {title}\n\n");
    for line in wrap(text, 76) {
        out.push_str(&format!(" {line}\n"));
    }
    let prompt = if default_yes { "Y/n" } else { "y/N" };
    out.push_str(&format!("\n y  {yes}\n n  {no}\n{prompt} ==> "));
    console.write(&out)?;
    loop {
        let Some(key) = console.key()? else {
            console.write("\n")?;
            return Ok(None);
        };
        let answer = match key.to_ascii_lowercase() {
            'y' => true,
            'n' => false,
            '\r' | '\n' => default_yes,
            _ => continue,
        };
        console.write(if answer { "y\n" } else { "n\n" })?;
        return Ok(Some(answer));
    }
}

/// The keys of the items of [`choose`]: digits, then letters other than
/// `c` (which cancels).
const ITEM_KEYS: &str = "123456789abdefghijklmnopqrstuvwxyz";

/// The most items [`choose`] can offer, one key each.
pub(crate) const MAX_CHOICES: usize = ITEM_KEYS.len();

/// A choice among `items` (at most [`MAX_CHOICES`]): the item's key picks it, `c` or Enter
/// cancels (`None`, as does the end of input). The cancel button reads like
/// Checkmk's dialogs.
pub(crate) fn choose(
    console: &mut dyn Console,
    title: &str,
    text: &str,
    items: &[String],
    ok: &str,
) -> io::Result<Option<usize>> {
    if items.len() > MAX_CHOICES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} choices are more than the {MAX_CHOICES} a menu can offer",
                items.len()
            ),
        ));
    }
    let keys: Vec<char> = ITEM_KEYS.chars().take(items.len()).collect();
    let mut out = format!("\n {title}\n\n");
    for line in wrap(text, 76) {
        out.push_str(&format!(" {line}\n"));
    }
    out.push('\n');
    for (key, item) in keys.iter().zip(items) {
        out.push_str(&format!(" {key}  {item}\n"));
    }
    out.push_str(&format!(" c  Cancel\n{ok}: "));
    let shown: String = keys.iter().map(|k| format!("{k}/")).collect();
    out.push_str(&format!("{shown}c ==> "));
    console.write(&out)?;
    loop {
        let Some(key) = console.key()? else {
            console.write("\n")?;
            return Ok(None);
        };
        let key = key.to_ascii_lowercase();
        if matches!(key, 'c' | '\r' | '\n') {
            console.write("c\n")?;
            return Ok(None);
        }
        if let Some(i) = keys.iter().position(|k| *k == key) {
            console.write(&format!("{key}\n"))?;
            return Ok(Some(i));
        }
    }
}

/// The menu as drawn: empty line, title, text (76 columns), the choices
/// ` <name padded to 10> <description>` (the hotkey bold on a terminal) and
/// the prompt `k/r/s/a ==> `.
pub(crate) fn render_menu(question: &Question, color: bool) -> String {
    let (bold, reset) = if color {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    let mut out = format!("\n {bold}{}{reset}\n\n", question.title);
    for line in wrap(&question.text, 76) {
        out.push_str(&format!(" {line}\n"));
    }
    out.push('\n');
    for choice in &question.choices {
        let mut chars = choice.name.chars();
        let name = match chars.next() {
            Some(first) if first == choice.key => {
                let rest: String = chars.collect();
                format!("{bold}{first}{reset}{rest:<9}")
            }
            _ => format!("{:<10}", format!("{} ({})", choice.name, choice.key)),
        };
        out.push_str(&format!(" {name} {}\n", choice.description));
    }
    out.push_str(&question.prompt());
    out
}

/// `text` without ANSI colour sequences (`ESC [ … m`), as Checkmk's update log.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Greedy word wrap of each line of `text` to `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// The real terminal: stdin in non-canonical mode while a key is read,
/// stdout for the menu, `$PAGER` (default `less -F -X`), `$VISUAL` /
/// `$EDITOR` / `vi`, `bash -i`. With a log file, everything written (menus,
/// echoed keys) is appended to it as well, without colour codes.
#[derive(Default)]
pub(crate) struct TtyConsole {
    log: Option<fs::File>,
}

impl TtyConsole {
    /// Appends everything written from now on to `log` as well.
    pub(crate) fn log_to(&mut self, log: fs::File) {
        self.log = Some(log);
    }

    fn read_raw_byte() -> io::Result<Option<u8>> {
        use rustix::termios::{
            LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
        };
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin).map_err(io::Error::from)?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&stdin, OptionalActions::Now, &raw).map_err(io::Error::from)?;
        let mut byte = [0u8; 1];
        let read = stdin.lock().read(&mut byte);
        let restored = tcsetattr(&stdin, OptionalActions::Now, &saved).map_err(io::Error::from);
        let n = read?;
        restored?;
        Ok((n == 1).then_some(byte[0]))
    }
}

impl Console for TtyConsole {
    fn key(&mut self) -> io::Result<Option<char>> {
        Ok(match Self::read_raw_byte()? {
            None | Some(3 | 4) => None, // end of input, Ctrl-C, Ctrl-D
            Some(b) => Some(char::from(b)),
        })
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if let Some(log) = &mut self.log {
            log.write_all(strip_ansi(text).as_bytes())?;
        }
        Ok(())
    }

    fn page(&mut self, text: &[u8]) -> io::Result<()> {
        let pager = std::env::var("PAGER")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "less -F -X".to_owned());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&pager)
            .stdin(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // The pager may quit early; a broken pipe is not an error then.
            match stdin.write_all(text) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        child.wait()?;
        Ok(())
    }

    fn edit(&mut self, name: &str, content: &[u8]) -> io::Result<Vec<u8>> {
        let base = Path::new(name)
            .file_name()
            .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        let dir = tempfile::Builder::new().prefix("omd-update-").tempdir()?;
        let file = dir.path().join(base);
        fs::write(&file, content)?;
        let editor = ["VISUAL", "EDITOR"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
            .unwrap_or_else(|| {
                if Path::new("/usr/bin/vi").exists() {
                    "/usr/bin/vi".to_owned()
                } else {
                    "vi".to_owned()
                }
            });
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&file)
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "the editor {editor} failed ({status})"
            )));
        }
        fs::read(&file)
    }

    fn shell(&mut self, dir: &Path, files: &[(String, String, Vec<u8>)]) -> io::Result<()> {
        let scratch = tempfile::Builder::new().prefix("omd-update-").tempdir()?;
        let mut listing = String::new();
        if !files.is_empty() {
            listing.push_str(" The other versions:\n");
        }
        for (name, what, content) in files {
            let file = scratch.path().join(name);
            fs::write(&file, content)?;
            listing.push_str(&format!("  {} ({what})\n", file.display()));
        }
        self.write(&format!(
            "{listing} Starting BASH in {}. Type CTRL-D to continue.\n",
            dir.display()
        ))?;
        let cwd = if dir.is_dir() { dir } else { Path::new("/") };
        Command::new("bash").arg("-i").current_dir(cwd).status()?;
        Ok(())
    }
}

/// A console driven by a script (tests, and documentation of the key flow).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct ScriptedConsole {
    pub(crate) keys: VecDeque<char>,
    pub(crate) edits: VecDeque<Vec<u8>>,
    pub(crate) output: String,
    pub(crate) paged: Vec<String>,
    pub(crate) shells: Vec<(PathBuf, Vec<String>)>,
}

#[cfg(test)]
impl ScriptedConsole {
    pub(crate) fn new(keys: &str) -> Self {
        Self {
            keys: keys.chars().collect(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
impl Console for ScriptedConsole {
    fn key(&mut self) -> io::Result<Option<char>> {
        Ok(self.keys.pop_front())
    }
    fn write(&mut self, text: &str) -> io::Result<()> {
        self.output.push_str(text);
        Ok(())
    }
    fn page(&mut self, text: &[u8]) -> io::Result<()> {
        self.paged.push(String::from_utf8_lossy(text).into_owned());
        Ok(())
    }
    fn edit(&mut self, _name: &str, content: &[u8]) -> io::Result<Vec<u8>> {
        Ok(self.edits.pop_front().unwrap_or_else(|| content.to_vec()))
    }
    fn shell(&mut self, dir: &Path, files: &[(String, String, Vec<u8>)]) -> io::Result<()> {
        self.shells.push((
            dir.to_path_buf(),
            files.iter().map(|(n, _, _)| n.clone()).collect(),
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use site_merge::{Outcome, Policy, Skeleton, Update};

    use super::*;
    use site_merge::GitMerge;

    /// A site with a merge conflict (etc/a.conf), a row-3 conflict
    /// (etc/b.conf: new in the skeleton, the operator created a different
    /// one) and a clean merge (etc/c.conf).
    fn fixture() -> (tempfile::TempDir, Update) {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        let w = |rel: &str, text: &str| {
            let path = p.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        w("old/skel/etc/a.conf", "one\ntwo\nthree\n");
        w("new/skel/etc/a.conf", "one\nTWO (new default)\nthree\n");
        w("site/etc/a.conf", "one\ntwo (mine)\nthree\n");
        w("new/skel/etc/b.conf", "new default\n");
        w("site/etc/b.conf", "my own\n");
        w("old/skel/etc/c.conf", "1\n2\n3\n4\n5\n6\n7\n8\n");
        w("new/skel/etc/c.conf", "1\n2\n3\n4\n5\n6\n7\nEIGHT\n");
        w("site/etc/c.conf", "ONE\n2\n3\n4\n5\n6\n7\n8\n");
        let up = Update::builder(
            p.join("site"),
            "s",
            Skeleton::new("1.0", p.join("old/skel")),
            Skeleton::new("2.0", p.join("new/skel")),
        )
        .build()
        .unwrap();
        (tmp, up)
    }

    fn plan_with(keys: &str, edits: &[&str]) -> (site_merge::Plan, ScriptedConsole) {
        let (tmp, up) = fixture();
        let mut console = ScriptedConsole::new(keys);
        console.edits = edits.iter().map(|e| e.as_bytes().to_vec()).collect();
        let mut menu = MenuResolver::new(console, tmp.path().join("site"), false);
        let plan = up.plan(&GitMerge::new(), &mut menu).unwrap();
        assert!(menu.take_error().is_none());
        let MenuResolver { console, .. } = menu;
        (plan, console)
    }

    fn outcome(plan: &site_merge::Plan, path: &str) -> Outcome {
        plan.entry(path).unwrap().outcome
    }

    #[test]
    fn merge_menu_shows_diffs_then_restore_and_two_way_keep() {
        // d, y, n show diffs; x is ignored; r restores; k keeps etc/b.conf.
        let (plan, console) = plan_with("dyxnrk", &[]);
        assert_eq!(outcome(&plan, "etc/a.conf"), Outcome::Restored);
        assert_eq!(outcome(&plan, "etc/b.conf"), Outcome::KeptYours);
        assert_eq!(outcome(&plan, "etc/c.conf"), Outcome::Merged);
        assert_eq!(console.paged.len(), 3);
        assert!(console.paged[0].starts_with("--- etc/a.conf.orig\n+++ etc/a.conf-2.0\n"));
        assert!(console.paged[1].contains("+two (mine)"));
        assert!(console.paged[2].contains("+TWO (new default)"));
        let out = &console.output;
        assert!(out.contains("\n Conflicts in etc/a.conf!\n"), "{out}");
        assert!(out.contains(
            " I've tried to merge the changes from version 1.0 to 2.0 into etc/a.conf.\n"
        ));
        assert!(
            out.contains(" diff       Show differences between the new default and your version\n")
        );
        assert!(out.contains(" try again  Edit your original file and try again\n"));
        assert!(out.contains("d/y/n/e/t/k/r/i/s/a ==> d\n"));
        assert!(out.contains("k/r/s/a ==> k\n"), "{out}");
        assert!(!out.contains("==> x"), "unknown keys are not echoed");
    }

    #[test]
    fn install_and_replace() {
        let (plan, _) = plan_with("ir", &[]);
        assert_eq!(outcome(&plan, "etc/a.conf"), Outcome::InstalledDefault);
        assert_eq!(outcome(&plan, "etc/b.conf"), Outcome::Installed);
    }

    #[test]
    fn keep_half_merged_file_keeps_markers() {
        let (plan, _) = plan_with("kk", &[]);
        assert_eq!(outcome(&plan, "etc/a.conf"), Outcome::KeptConflictMarkers);
        let answer = plan.entry("etc/a.conf").unwrap().conflict.as_ref().unwrap();
        assert_eq!(answer.answer.as_deref(), Some("keep"));
    }

    #[test]
    fn edit_uses_the_edited_text_and_try_again_merges_again() {
        let (plan, _) = plan_with("ek", &["edited\n"]);
        assert_eq!(outcome(&plan, "etc/a.conf"), Outcome::Edited);

        // t: the operator reverts their change, so the retry merges cleanly.
        let (plan, _) = plan_with("tk", &["one\ntwo\nthree\n"]);
        assert_eq!(outcome(&plan, "etc/a.conf"), Outcome::MergedOnRetry);
        assert_eq!(
            plan.entry("etc/a.conf").unwrap().status.as_deref(),
            Some("Successfully merged changes from 1.0 -> 2.0 into etc/a.conf")
        );

        // t with a still conflicting edit: the menu comes back with "Merge failed again."
        let (plan, console) = plan_with("trk", &["one\nstill mine\nthree\n"]);
        assert_eq!(outcome(&plan, "etc/a.conf"), Outcome::Restored);
        assert!(console.output.contains(" Merge failed again.\n"));
    }

    #[test]
    fn shell_lists_the_helper_files_and_redraws() {
        let (_, console) = plan_with("srk", &[]);
        assert_eq!(console.shells.len(), 1);
        assert_eq!(
            console.shells[0].1,
            ["a.conf-1.0", "a.conf-2.0", "a.conf.merged"]
        );
        assert!(console.shells[0].0.ends_with("site/etc"));
        assert_eq!(
            console.output.matches("Conflicts in etc/a.conf!").count(),
            2
        );
    }

    #[test]
    fn abort_key_and_end_of_input_abort_the_update() {
        for keys in ["a", "", "r"] {
            let (tmp, up) = fixture();
            let mut menu =
                MenuResolver::new(ScriptedConsole::new(keys), tmp.path().join("site"), false);
            let err = up.plan(&GitMerge::new(), &mut menu).unwrap_err();
            assert_eq!(err.to_string(), "Update aborted.", "keys {keys:?}");
        }
    }

    #[test]
    fn scripted_menu_agrees_with_the_policies() {
        let (tmp, up) = fixture();
        let keepold = up.plan(&GitMerge::new(), &mut Policy::KeepOld).unwrap();
        let (menu_plan, _) = plan_with("rk", &[]);
        drop(tmp);
        let outcomes = |p: &site_merge::Plan| -> Vec<Outcome> {
            p.entries.iter().map(|e| e.outcome).collect()
        };
        assert_eq!(outcomes(&keepold), outcomes(&menu_plan));
    }

    #[test]
    fn confirm_takes_keys_and_the_default() {
        let mut c = ScriptedConsole::new("xn");
        assert_eq!(
            confirm(&mut c, "T", "text", "Yes!", "No", true).unwrap(),
            Some(false)
        );
        let mut c = ScriptedConsole::new("\n");
        assert_eq!(
            confirm(&mut c, "T", "text", "Yes!", "No", false).unwrap(),
            Some(false)
        );
        let mut c = ScriptedConsole::new("Y");
        assert_eq!(
            confirm(&mut c, "T", "text", "Yes!", "No", false).unwrap(),
            Some(true)
        );
        let mut c = ScriptedConsole::new("");
        assert_eq!(
            confirm(&mut c, "T", "text", "Yes!", "No", false).unwrap(),
            None
        );
    }

    #[test]
    fn choose_takes_an_item_key_or_cancels() {
        let items: Vec<String> = ["2.3.0p1.cre", "2.4.0p2.cee"].map(String::from).to_vec();
        let mut c = ScriptedConsole::new("x2");
        assert_eq!(
            choose(&mut c, "Choose", "Pick one", &items, "Make default").unwrap(),
            Some(1)
        );
        assert!(
            c.output
                .contains(" 1  2.3.0p1.cre\n 2  2.4.0p2.cee\n c  Cancel\n")
        );
        assert!(
            c.output.ends_with("Make default: 1/2/c ==> 2\n"),
            "{}",
            c.output
        );
        for keys in ["c", "\n", ""] {
            let mut c = ScriptedConsole::new(keys);
            assert_eq!(choose(&mut c, "T", "t", &items, "Ok").unwrap(), None);
        }
        let many: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
        let mut c = ScriptedConsole::new("d");
        // 1-9, then a, b, d: `c` is skipped because it cancels.
        assert_eq!(choose(&mut c, "T", "t", &many, "Ok").unwrap(), Some(11));
        let too_many: Vec<String> = (0..=MAX_CHOICES).map(|i| format!("v{i}")).collect();
        let err = choose(&mut ScriptedConsole::new("1"), "T", "t", &too_many, "Ok").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn colour_codes_are_stripped_for_the_log() {
        assert_eq!(strip_ansi("\x1b[1mk\x1b[0meep x"), "keep x");
        assert_eq!(strip_ansi("plain [1m"), "plain [1m");
    }

    #[test]
    fn long_texts_wrap_at_76_columns() {
        let text = "word ".repeat(40);
        for line in wrap(&text, 76) {
            assert!(line.len() <= 76, "{line}");
        }
        assert_eq!(wrap("a\nb", 76), ["a", "b"]);
    }
}
