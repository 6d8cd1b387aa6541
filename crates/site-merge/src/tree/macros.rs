//! Macro substitution in skeleton files (`###SITE###`, `###ROOT###`, `###EDITION###`).

/// The macro values of one side (old or new) of an update, or of a site creation.
///
/// Substitution is plain byte-string replacement of each key, in the order
/// `###SITE###`, `###ROOT###`, `###EDITION###` (the last only when an edition is set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacements {
    site: String,
    root: String,
    edition: Option<String>,
}

impl Replacements {
    /// Replacements for site `site` whose home (the value of `###ROOT###`) is `root`.
    pub fn new(site: impl Into<String>, root: impl Into<String>) -> Self {
        Self {
            site: site.into(),
            root: root.into(),
            edition: None,
        }
    }

    /// Also replaces `###EDITION###` by the long edition name (`raw`, `enterprise`, `community`, …).
    pub fn with_edition(mut self, edition: Option<String>) -> Self {
        self.edition = edition;
        self
    }

    /// Returns `input` with every macro replaced.
    pub fn apply(&self, input: &[u8]) -> Vec<u8> {
        self.apply_owned(input.to_vec())
    }

    /// `input` with every macro replaced, or `None` when that changes nothing.
    pub(crate) fn apply_if_needed(&self, input: &[u8]) -> Option<Vec<u8>> {
        memchr::memmem::find(input, b"###")?;
        let out = self.apply_owned(input.to_vec());
        (out != input).then_some(out)
    }

    /// [`Replacements::apply`] on an owned buffer, which is returned as it is
    /// when it holds no macro (most files of a skeleton have none).
    pub(crate) fn apply_owned(&self, input: Vec<u8>) -> Vec<u8> {
        // Every macro starts with `###`: one fast scan settles most files.
        if memchr::memmem::find(&input, b"###").is_none() {
            return input;
        }
        let mut out = replace_all(input, b"###SITE###", self.site.as_bytes());
        out = replace_all(out, b"###ROOT###", self.root.as_bytes());
        if let Some(edition) = &self.edition {
            out = replace_all(out, b"###EDITION###", edition.as_bytes());
        }
        out
    }
}

/// Whether a skeleton path is compared after substitution (everything but `.png`/`.pdf`).
pub(crate) fn substituted_when_comparing(relpath: &str) -> bool {
    !(relpath.ends_with(".png") || relpath.ends_with(".pdf"))
}

/// Replaces every `needle` in `hay` (left to right, not overlapping).
fn replace_all(hay: Vec<u8>, needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut hits = memchr::memmem::find_iter(&hay, needle).peekable();
    if hits.peek().is_none() {
        return hay;
    }
    let mut out = Vec::with_capacity(hay.len() + hay.len() / 8);
    let mut rest = 0;
    for pos in hits {
        out.extend_from_slice(&hay[rest..pos]);
        out.extend_from_slice(with);
        rest = pos + needle.len();
    }
    out.extend_from_slice(&hay[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_macro_in_order() {
        let r = Replacements::new("mysite", "/omd/sites/mysite").with_edition(Some("raw".into()));
        let out = r.apply(b"a ###SITE### b ###ROOT###/x ###EDITION### ###SITE###");
        assert_eq!(out, b"a mysite b /omd/sites/mysite/x raw mysite");
    }

    #[test]
    fn edition_kept_when_unset() {
        let r = Replacements::new("s", "/r");
        assert_eq!(r.apply(b"###EDITION######SITE"), b"###EDITION######SITE");
    }

    #[test]
    fn macros_do_not_overlap_and_later_keys_see_earlier_values() {
        let r = Replacements::new("s", "/###EDITION###").with_edition(Some("pro".into()));
        assert_eq!(r.apply(b"####SITE######SITE###"), b"#ss");
        // Applied in order: the root's value is then searched for the edition.
        assert_eq!(r.apply(b"###ROOT###"), b"/pro");
        assert_eq!(r.apply(b"no macros ## here #"), b"no macros ## here #");
    }
}
