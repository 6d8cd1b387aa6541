//! Printing helpers shared by the commands: the "negative answer" error
//! (exit code 1), JSON documents, coloured status lines.

use std::io::{self, IsTerminal, Write};

use anyhow::Context as _;

/// A refusal or negative answer: printed on stderr, exit code 1.
#[derive(Debug)]
pub(crate) struct Negative(pub(crate) String);

impl Negative {
    /// A refusal with this message (a trailing newline is dropped; `main` adds one).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        let mut message = message.into();
        while message.ends_with('\n') {
            message.pop();
        }
        Self(message)
    }
}

impl std::fmt::Display for Negative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Negative {}

/// Returns early with a [`Negative`] error.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::output::Negative::new(format!($($arg)*)).into())
    };
}
pub(crate) use refuse;

/// Renders `value` as one pretty-printed JSON document ending in a newline.
pub(crate) fn json_document(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    text.push('\n');
    Ok(text)
}

/// Writes `text` to stdout and flushes.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// Whether stdout is a terminal that may get colours (`NO_COLOR` unset or empty).
pub(crate) fn stdout_color() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// A status line as shown: the marker (` *` good, ` !` warning) coloured
/// on a terminal, the line otherwise as the library wrote it.
pub(crate) fn paint_status(line: &str, color: bool) -> String {
    if !color {
        return line.to_owned();
    }
    if let Some(rest) = line.strip_prefix(" *") {
        format!("{GREEN}{BOLD} *{RESET}{rest}")
    } else if let Some(rest) = line.strip_prefix(" !") {
        format!("{YELLOW}{BOLD} !{RESET}{rest}")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_markers_are_coloured_only_on_request() {
        assert_eq!(
            paint_status(" * Updated        x", false),
            " * Updated        x"
        );
        let painted = paint_status(" ! Missing        x", true);
        assert!(painted.starts_with("\x1b[33m"), "{painted:?}");
        assert!(painted.ends_with("Missing        x"));
    }

    #[test]
    fn negative_messages_lose_their_trailing_newlines() {
        assert_eq!(Negative::new("a\n\n").to_string(), "a");
    }
}
