//! The OMD site lifecycle as a library: what `omd create`, `rm`, `start`,
//! `stop`, `status` and `update` do, for any Rust program (the `omd` binary
//! only parses arguments, draws its menus and prints).
//!
//! # Update
//!
//! [`update`] runs an update of a site: the checks of Checkmk's `omd update`
//! in its order (site-update.md §6), the site's lock, recovery of an
//! interrupted update, the plan (every conflict answered before anything is
//! written), the transaction (`site-merge`'s journaled executor), the phase
//! scripts, the extension-package step, the update log. It talks to its
//! caller through two traits:
//!
//! * [`UpdateResolver`] answers the questions: the file conflicts and,
//!   where someone can be asked, the confirmations (update, edition change,
//!   a downgrade) and the choice of the target version when several
//!   versions qualify. [`PolicyResolver`] answers by a fixed
//!   [`Policy`](site_merge::Policy) and asks nobody; `omd`'s terminal menu
//!   is the other implementation.
//! * [`Events`] receives what happens: [`Event::Line`] and
//!   [`Event::Status`] (each status line as its path is applied),
//!   [`Event::Planned`], [`Event::Applying`] (n of N, the path),
//!   [`Event::Committed`], [`Event::Packages`], [`Event::Finished`]. Every
//!   line is written to `var/log/update.log` before it is reported, so a
//!   receiver that cannot print (a closed pipe) never changes the update.
//!
//! # Interruption safety
//!
//! * **One lock per site**, shared with the `mkp` package store
//!   ([`mkp_format::SiteLock`]: an `flock` of the site directory): an
//!   update, `start`, `stop` and `rm` take it and are refused at once while
//!   another process holds it ([`Error::Locked`] names its PID and command
//!   line); `mkp` changes are refused while an update holds it.
//! * **Cancellation**: [`UpdateRequest::cancel`] is a [`Cancel`] token (a
//!   signal handler sets its flag). It is checked before every operation:
//!   before the commit point (the `version` switch) the update is rolled
//!   back and `The update was rolled back successfully.` is reported
//!   ([`Error::Interrupted`]); after it, the update is completed and a line
//!   says so ([`Error::InterruptedCompleted`]).
//! * **Crashes** (SIGKILL, power loss) leave the journal `.site-update`:
//!   the next update recovers first; [`state::start`] refuses such a site,
//!   naming the command that recovers it; [`state::site_condition`] tells
//!   the reading commands. A leftover `.site-update.done~` is removed by the
//!   next command that can take the lock, and reported by a dry run.
//!
//! # Phase scripts
//!
//! As Checkmk runs them (site-update.md §6 step 19), the executable files
//! of `lib/omd/scripts/<phase>/` of the target version (the site's `lib`
//! after the switch) run in sorted order (dotfiles
//! skipped), in the site directory, each reported as
//! `Executing <phase> script "<name>"...OK` (or `ERROR (exit code: N)`),
//! the script's output lines prefixed `-| `:
//!
//! * `update-pre-hooks` run when every change of the update is made and
//!   durable, right before the commit point: a failing script stops the
//!   phase and rolls the update back ([`Error::Script`]).
//! * `post-update` run after the extension-package step: a failing script
//!   is reported (exit code 1) but the update stays done.
//!
//! # Create, remove, start, stop
//!
//! [`create::create`], [`create::rm`], [`state::start`], [`state::stop`],
//! [`state::status`]: see their modules. [`diff::diff`] compares a site
//! with its version's skeleton (`omd diff`).
//!
//! Why a crate of its own (floor 3): it orchestrates `site-merge` (the
//! tree engine, which knows no packages), `mkp-format` (the package step
//! and the shared lock) and `omd-versions`; none of them may depend on the
//! others this way.
#![warn(missing_docs)]

pub mod create;
pub mod diff;
mod error;
mod events;
mod log;
mod packages;
pub mod scripts;
pub mod skel;
pub mod state;
mod update;

pub use error::{Error, Result};
pub use events::{Cancel, Collect, Event, Events, Silent};
pub use log::{UPDATE_LOG, utc_timestamp};
pub use packages::{Package, PackagesReport, checkmk_version};
pub use update::{
    Confirmation, EXIT_PACKAGES, PolicyResolver, UpdateOutcome, UpdateRequest, UpdateResolver,
    update,
};
