//! What an update reports while it runs ([`Event`], [`Events`]) and how a
//! caller stops it ([`Cancel`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Something an update reports while it runs. Every line (`Line`, `Status`)
/// is also appended to the site's `var/log/update.log` before it is
/// reported, so what a caller does with an event never changes the update.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A line of the update's output (a message, a header, a package line).
    Line(&'a str),
    /// A status line of the plan (`" * Updated        etc/x"`), reported
    /// when its path has been applied (in a dry run: when planned).
    Status(&'a str),
    /// The update was planned: `paths` paths visited, `changes` of them change.
    Planned {
        /// The number of paths of the plan.
        paths: usize,
        /// The number of paths the update writes.
        changes: usize,
    },
    /// The update is being applied: `done` of `total` paths, the last `path`.
    Applying {
        /// Paths applied so far.
        done: usize,
        /// Paths in the plan.
        total: usize,
        /// The path applied last.
        path: &'a str,
    },
    /// The version link was switched: the update is committed.
    Committed,
    /// The extension-package (MKP) step starts.
    Packages,
    /// The update finished.
    Finished,
}

/// Receives the [`Event`]s of an update (a terminal printer, a GUI, a test).
pub trait Events {
    /// One event; must not fail (a closed output is the receiver's business).
    fn event(&mut self, event: &Event<'_>);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Events for Silent {
    fn event(&mut self, _event: &Event<'_>) {}
}

/// Collects the lines (`Line` and `Status`) of an update, e.g. for tests.
#[derive(Debug, Default, Clone)]
pub struct Collect {
    /// The lines, in order.
    pub lines: Vec<String>,
}

impl Events for Collect {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Line(text) | Event::Status(text) => self.lines.push((*text).to_owned()),
            _ => {}
        }
    }
}

/// A cancellation token: a flag that a signal handler (or another thread)
/// sets and the update checks between its steps. Cloning shares the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token reading `flag` (e.g. one registered with a signal handler).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }

    /// The shared flag.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// Asks the update to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
