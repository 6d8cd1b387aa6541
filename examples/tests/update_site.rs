//! The `update_site` example, run in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use toolkit_examples::update_site::{NEW, SITE, run};

#[test]
fn the_example_updates_its_sandbox_site() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sandbox");
    let (outcome, resolver, printer) = run(&dir).unwrap();
    assert_eq!((outcome.result, outcome.exit_code()), ("finished", 0));
    assert_eq!(resolver.asked, ["etc/demo.conf"]);
    assert!(printer.committed);
    assert!(printer.progress > 0);
    let home = dir.join("sites").join(SITE);
    assert_eq!(
        fs::read_link(home.join("version")).unwrap(),
        std::path::Path::new("../../versions").join(NEW)
    );
    assert_eq!(
        fs::read_to_string(home.join("etc/demo.conf")).unwrap(),
        "one\nTWO\nthree\n"
    );
    assert_eq!(
        fs::read_to_string(home.join("etc/notes.conf")).unwrap(),
        "A\nb\nC\n"
    );
    let lines = printer.lines.join("\n");
    assert!(
        lines.contains(" * Merged         etc/notes.conf"),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("-| hello from {SITE} on {NEW}")),
        "{lines}"
    );
    assert!(lines.ends_with("Finished update.\n"), "{lines}");
    let log = fs::read_to_string(home.join("var/log/update.log")).unwrap();
    assert!(log.ends_with("Finished update.\n\n"), "{log}");
}
