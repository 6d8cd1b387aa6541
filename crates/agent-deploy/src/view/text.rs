//! The text rendering of `agent-deploy status`: full hashes (a terminal has no hover), ages
//! relative to the view's time.

use std::fmt::Write as _;

use super::{Category, StatusView, age};

/// Control characters (an updater's error text could carry terminal escapes) as `\u{…}`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub(super) fn render(view: &StatusView) -> String {
    let mut out = String::new();
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "{:<24} {:<16} {:<11} {:<16} {:<16} {:<16} {:<12} {:<18} ERROR",
        "HOST", "STATE", "OS", "TARGET", "DOWNLOADED", "INSTALLED", "CONTACT", "SELECTION"
    );
    for row in &view.hosts {
        let h = &row.status;
        let _ = writeln!(
            out,
            "{:<24} {:<16} {:<11} {:<16} {:<16} {:<16} {:<12} {:<18} {}",
            clean(&h.host_name),
            row.state.label(),
            dash(&h.platform),
            dash(&h.target_hash),
            dash(&h.downloaded_aghash),
            dash(&h.installed_aghash),
            h.last_contact
                .map_or_else(|| "never".into(), |t| age(t, view.generated_at)),
            row.verdict.label(),
            clean(
                h.last_error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("")
            )
        );
    }
    let _ = writeln!(out);
    let counts: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("{} {}", c.label().to_lowercase(), view.counts.get(*c)))
        .collect();
    let _ = writeln!(out, "{} hosts: {}", view.total, counts.join(", "));
    let _ = writeln!(out);
    let _ = writeln!(out, "Prerequisites:");
    for p in &view.prerequisites {
        let _ = writeln!(out, "  [{:<10}] {}: {}", p.state.label(), p.title, p.detail);
        if let Some(a) = &p.action {
            let _ = writeln!(out, "               -> {a}");
        }
    }
    out
}
