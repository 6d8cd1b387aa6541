//! Root rotation in the updater (requirement 34): newer root documents from the server
//! (`RootMetadata`) or from a directory are applied one version at a time with
//! `agent_sign::TrustedRoot::update` (signed by the old **and** the new root keys) and the
//! accepted root is persisted to the root file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agent_sign::{SignedDocument, TrustedRoot, VerifyPolicy};
use serde_json::Value;

use crate::updater::{UpdateError, Updater};
use crate::verify::AgentSignVerifier;

/// The hardened updater's root: the file it is kept in, an optional directory of newer root
/// documents, the policy of the verifier built from it, and the current trusted root.
#[derive(Debug)]
pub(crate) struct RootConfig {
    file: PathBuf,
    dir: Option<PathBuf>,
    policy: VerifyPolicy,
    current: Mutex<TrustedRoot>,
}

fn rotation_err(path: &Path, reason: impl ToString) -> UpdateError {
    UpdateError::RootRotation {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The version of a root document, `None` if it isn't one.
fn root_version(doc: &SignedDocument) -> Option<u64> {
    if doc.kind() != Some("root") {
        return None;
    }
    doc.signed.get("version").and_then(Value::as_u64)
}

impl Updater {
    /// Hardened mode with a root **file** (what `agent-sign metadata root` writes): the
    /// verifier is built from it with `policy`, newer roots offered by the server or found
    /// as `*.json` in `dir` are applied one version at a time (each signed by a threshold of
    /// the current and of its own root keys), and an accepted root replaces the file (written
    /// atomically, the old one kept as `.bak`).
    pub fn with_metadata_root_file(
        mut self,
        file: &Path,
        dir: Option<&Path>,
        policy: VerifyPolicy,
    ) -> Result<Updater, UpdateError> {
        let bad = |reason: String| UpdateError::BadFile {
            path: file.to_owned(),
            reason,
        };
        let text = fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let root = SignedDocument::from_json(&text)
            .and_then(|doc| TrustedRoot::bootstrap(&doc))
            .map_err(|e| bad(format!("not a trusted metadata root: {e}")))?;
        self.verifier = std::sync::RwLock::new(Arc::new(
            AgentSignVerifier::hardened(root.clone()).with_policy(policy),
        ));
        self.root = Some(RootConfig {
            file: file.to_owned(),
            dir: dir.map(Path::to_owned),
            policy,
            current: Mutex::new(root),
        });
        Ok(self)
    }

    /// The version of the trusted metadata root (with a root file).
    pub fn trusted_root_version(&self) -> Option<u64> {
        let cfg = self.root.as_ref()?;
        let current = cfg
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(current.root().version)
    }

    /// Applies root documents newer than the trusted one, from `offered` (the server's
    /// `RootMetadata`) and the root directory (`*.json`; files that are not root documents are
    /// skipped with a warning), in version order. All or nothing: if one of
    /// them doesn't verify (wrong signatures, a skipped version, two different documents for
    /// one version), nothing changes and the error names the version. Returns the new version
    /// if the root changed. Without a root file this does nothing.
    pub fn rotate_root(&self, offered: &[SignedDocument]) -> Result<Option<u64>, UpdateError> {
        let Some(cfg) = &self.root else {
            return Ok(None);
        };
        let mut candidates: Vec<SignedDocument> = offered.to_vec();
        if let Some(dir) = &cfg.dir {
            let entries = match fs::read_dir(dir) {
                Ok(e) => e
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| rotation_err(dir, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(rotation_err(dir, e)),
            };
            for entry in entries {
                let path = entry.path();
                if path.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                // Other files in the directory (half-copied, other metadata) are skipped, so
                // that they cannot block updates; offered roots that don't verify do.
                let doc = fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| SignedDocument::from_json(&t).map_err(|e| e.to_string()));
                match doc {
                    Ok(doc) if root_version(&doc).is_some() => candidates.push(doc),
                    Ok(_) => tracing::warn!("{}: not a root document, ignored", path.display()),
                    Err(e) => tracing::warn!("{}: ignored: {e}", path.display()),
                }
            }
        }
        let mut current = cfg
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let have = current.root().version;
        let mut newer: Vec<(u64, SignedDocument)> = Vec::new();
        for doc in candidates {
            let Some(v) = root_version(&doc) else {
                return Err(rotation_err(&cfg.file, "offered document is not a root"));
            };
            if v <= have {
                continue;
            }
            match newer.iter().find(|(nv, _)| *nv == v) {
                Some((_, d)) if *d == doc => {}
                Some(_) => {
                    return Err(rotation_err(
                        &cfg.file,
                        format!("two different documents for root version {v}"),
                    ));
                }
                None => newer.push((v, doc)),
            }
        }
        if newer.is_empty() {
            return Ok(None);
        }
        newer.sort_by_key(|(v, _)| *v);
        let mut next = current.clone();
        for (v, doc) in &newer {
            next.update(doc).map_err(|e| {
                rotation_err(
                    &cfg.file,
                    format!("root version {v} (trusted: {have}): {e}"),
                )
            })?;
        }
        let json = next
            .document()
            .to_json()
            .map_err(|e| rotation_err(&cfg.file, e))?;
        agent_wire::fsutil::write_atomic(&cfg.file, json.as_bytes(), true)
            .map_err(|e| rotation_err(&cfg.file, e))?;
        let version = next.root().version;
        *self
            .verifier
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(AgentSignVerifier::hardened(next.clone()).with_policy(cfg.policy));
        *current = next;
        tracing::info!("metadata root rotated from version {have} to {version}");
        Ok(Some(version))
    }
}
