//! `omd [-f] [-V VERSION] update [--conflict=MODE] [--dry-run] [--json] SITE`:
//! the command line, the terminal (menus, progress line, colours) and the
//! signals; the update itself is `site_lifecycle::update`.
//!
//! * **Signals.** SIGINT, SIGTERM and SIGHUP only set a flag (the
//!   library's cancellation token): the update finishes the step it is in,
//!   then rolls back (before the `version` switch) or completes (after
//!   it), one line says which, and the exit code is 128 + the signal's
//!   number.
//! * **Output.** Every line is in `var/log/update.log` before it is
//!   printed; a closed stdout (`| head -1`) is ignored, so it never stops
//!   or changes the update, and the exit code is the update's.
//! * **Progress.** On a terminal, a progress line (`[n/N] path`) is redrawn
//!   while the plan is applied; the status lines appear as their paths are
//!   applied.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use omd_versions::OmdRoot;
use site_lifecycle::{
    Cancel, Confirmation, Error, Event, Events, PolicyResolver, UpdateRequest, UpdateResolver,
};
use site_merge::{Answer, Conflict, Policy, Resolver as _};

use crate::menu::{MAX_CHOICES, MenuResolver, TtyConsole, choose, confirm};
use crate::output::{Negative, json_document, paint_status, print, refuse, stdout_color};

/// The command-line options of `omd update`.
#[derive(Debug, Clone)]
pub(crate) struct UpdateOptions<'a> {
    pub(crate) site: &'a str,
    pub(crate) conflict: &'a str,
    pub(crate) merge: site_merge::MergeMethod,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    pub(crate) force: bool,
    pub(crate) version: Option<&'a str>,
    pub(crate) confirm_version: bool,
    pub(crate) confirm_edition: bool,
}

/// Runs `omd update`; returns the exit code.
pub(crate) fn update(root: &OmdRoot, o: &UpdateOptions<'_>) -> anyhow::Result<u8> {
    let policy: Policy = o
        .conflict
        .parse()
        .map_err(|e: site_merge::PolicyParseError| Negative::new(e.to_string()))?;
    if policy == Policy::Ask && !o.dry_run && o.json {
        refuse!(
            "--json cannot be combined with the interactive --conflict=ask. Choose --conflict=install, --conflict=keepold or --conflict=abort (or add --dry-run)."
        );
    }
    let signal = Arc::new(AtomicUsize::new(0));
    let cancel = Cancel::new();
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let registered = signal_hook::flag::register(sig, cancel.flag()).and_then(|_| {
            signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
        });
        if let Err(e) = registered {
            return Err(anyhow!(e).context("cannot install the signal handlers"));
        }
    }
    let request = UpdateRequest {
        site: o.site.to_owned(),
        version: o.version.map(str::to_owned),
        policy,
        merge: o.merge,
        dry_run: o.dry_run,
        force: o.force,
        confirm_version: o.confirm_version,
        confirm_edition: o.confirm_edition,
        cancel,
    };
    let mut printer = Printer::new(o.json);
    let interactive = io::stdin().is_terminal() && !o.json;
    let result = if interactive {
        let home = root.site_dir(o.site);
        let mut resolver = TerminalResolver {
            menu: MenuResolver::new(TtyConsole::default(), &home, stdout_color()),
            policy,
        };
        site_lifecycle::update(root, &request, &mut resolver, &mut printer)
    } else {
        site_lifecycle::update(root, &request, &mut PolicyResolver(policy), &mut printer)
    };
    printer.clear_progress();
    match result {
        Ok(outcome) => {
            if o.json {
                print(&json_document(&outcome)?)?;
            }
            Ok(outcome.exit_code())
        }
        // The one line saying what happened was printed (and logged).
        Err(Error::Interrupted { .. } | Error::InterruptedCompleted { .. }) => {
            let sig = signal.load(Ordering::SeqCst);
            Ok(u8::try_from(128 + sig).unwrap_or(130))
        }
        Err(e) if e.is_negative_answer() => Err(Negative::new(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// The terminal: the conflict menu (unless a policy answers), the
/// confirmations, the choice of the target version.
struct TerminalResolver {
    menu: MenuResolver<TtyConsole>,
    policy: Policy,
}

impl UpdateResolver for TerminalResolver {
    fn conflict(&mut self, conflict: &Conflict) -> Answer {
        if self.policy == Policy::Ask {
            self.menu.resolve(conflict)
        } else {
            self.policy.resolve(conflict)
        }
    }

    fn can_ask(&self) -> bool {
        true
    }

    fn confirm(&mut self, question: &Confirmation) -> Result<bool, String> {
        let (title, yes, no, default_yes) = match question {
            Confirmation::Update { .. } => ("Update site", "Update!", "Abort", true),
            Confirmation::Edition { .. } => ("Edition change", "Yes", "No", false),
            Confirmation::Downgrade { .. } => ("Downgrade", "Downgrade", "Abort", false),
            _ => ("Question", "Yes", "No", false),
        };
        confirm(
            self.menu.console_mut(),
            title,
            question.text(),
            yes,
            no,
            default_yes,
        )
        .map(|a| a == Some(true))
        .map_err(|e| e.to_string())
    }

    fn choose_version(
        &mut self,
        _site: &str,
        _from: &str,
        candidates: &[String],
    ) -> Result<Option<String>, String> {
        if candidates.len() > MAX_CHOICES {
            return Err(format!(
                "{} versions to choose from are more than the menu can offer; name the version with -V VERSION",
                candidates.len()
            ));
        }
        let items: Vec<String> = candidates.iter().map(|v| format!("Version {v}")).collect();
        let chosen = choose(
            self.menu.console_mut(),
            "Choose target version",
            "Please choose the version this site should be updated to",
            &items,
            "Update now",
        )
        .map_err(|e| e.to_string())?;
        Ok(chosen.map(|i| candidates[i].clone()))
    }

    fn log_opened(&mut self, path: &Path) {
        if let Ok(file) = std::fs::OpenOptions::new().append(true).open(path) {
            self.menu.console_mut().log_to(file);
        }
    }

    fn take_error(&mut self) -> Option<String> {
        self.menu.take_error().map(|e| e.to_string())
    }
}

/// Prints the events: lines on stdout (status markers coloured on a
/// terminal), a progress line on a terminal. Write errors (a closed pipe)
/// are ignored: the update goes on and everything is in the log.
struct Printer {
    json: bool,
    color: bool,
    tty: bool,
    /// Whether a progress line is shown (to be cleared before the next line).
    progress: bool,
    last_draw: Option<Instant>,
}

impl Printer {
    fn new(json: bool) -> Self {
        Self {
            json,
            color: stdout_color(),
            tty: io::stdout().is_terminal(),
            progress: false,
            last_draw: None,
        }
    }

    fn write(&mut self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    fn clear_progress(&mut self) {
        if self.progress {
            self.write("\r\x1b[K");
            self.progress = false;
        }
    }
}

impl Events for Printer {
    fn event(&mut self, event: &Event<'_>) {
        if self.json {
            return;
        }
        match event {
            Event::Line(text) => {
                self.clear_progress();
                self.write(&format!("{text}\n"));
            }
            Event::Status(text) => {
                self.clear_progress();
                let line = paint_status(text, self.color);
                self.write(&format!("{line}\n"));
            }
            Event::Applying { done, total, path } if self.tty => {
                let now = Instant::now();
                let due = self
                    .last_draw
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(50));
                if due || done == total {
                    self.last_draw = Some(now);
                    let mut shown: String = path.chars().take(60).collect();
                    if path.chars().count() > 60 {
                        shown.push('…');
                    }
                    let path = shown;
                    self.write(&format!("\r\x1b[K[{done}/{total}] {path}"));
                    self.progress = true;
                }
            }
            _ => {}
        }
    }
}
