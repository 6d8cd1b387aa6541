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
        let mut out = replace_all(input, b"###SITE###", self.site.as_bytes());
        out = replace_all(&out, b"###ROOT###", self.root.as_bytes());
        if let Some(edition) = &self.edition {
            out = replace_all(&out, b"###EDITION###", edition.as_bytes());
        }
        out
    }
}

/// Whether a skeleton path is compared after substitution (everything but `.png`/`.pdf`).
pub(crate) fn substituted_when_comparing(relpath: &str) -> bool {
    !(relpath.ends_with(".png") || relpath.ends_with(".pdf"))
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(pos) = find(rest, needle) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(with);
        rest = &rest[pos + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // The macros all start with `###`; skip quickly to candidate positions.
    let first = *needle.first()?;
    let mut start = 0;
    while start + needle.len() <= hay.len() {
        let pos = start + hay[start..].iter().position(|&b| b == first)?;
        if hay[pos..].starts_with(needle) {
            return Some(pos);
        }
        start = pos + 1;
    }
    None
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
}
