//! Command-line definitions (clap derive). Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (for verify: the package or metadata is accepted)
  1  negative result: verification failed (no valid signature, rollback,
     expired, wrong host, hash mismatch, threshold not met); `key delete`
     not confirmed
  2  error: bad usage, unreadable files, wrong passphrase, ...
With --json, an error is also printed on stdout as one JSON document:
{\"schema\": 1, \"error\": \"<message>\", \"exit_code\": <1 or 2>}.

The key store (--store) must exist for every command but `key create` and
`key import`, which create it (mode 0700); a missing store is an error, so a
mistyped path never leaves an empty store behind.

Passphrases are never taken from arguments. They come from --passphrase-file,
from the environment variable named by --passphrase-env (default
AGENT_SIGN_PASSPHRASE, if set), or from a prompt on the terminal (no echo).";

/// Manage agent signature keys, sign and verify agent packages the way
/// Checkmk does, and write and check hardened update metadata.
#[derive(Debug, Parser)]
#[command(name = "agent-sign", version, after_long_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// The key store directory (created only by `key create` and `key import`).
    #[arg(
        long,
        global = true,
        env = "AGENT_SIGN_STORE",
        default_value = "agent-sign-keys"
    )]
    pub(crate) store: PathBuf,

    /// Passphrase source: read the first line of this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,

    /// Passphrase source: read this environment variable
    /// (default: AGENT_SIGN_PASSPHRASE when it is set).
    #[arg(long, global = true, value_name = "VAR")]
    pub(crate) passphrase_env: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, list, show, export, import and delete signature keys.
    #[command(subcommand)]
    Key(KeyCommand),

    /// Sign a package: append a signature to its signature list.
    ///
    /// Writes the Checkmk wire format: a JSON list of {"certificate": PEM,
    /// "signature": base64} (RSASSA-PKCS1-v1_5 with SHA-256 over the package
    /// bytes). Signing with a key that already signed replaces its entry.
    Sign {
        /// The package file (.deb, .rpm, .msi, ...).
        package: PathBuf,
        /// Id of the signing key in the store.
        #[arg(long)]
        key: u64,
        /// The signature list (default: PACKAGE.signatures.json).
        #[arg(long)]
        signatures: Option<PathBuf>,
        /// Also record the signature in this hash-chained signing log.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Hosts the package is for (recorded in the signing log).
        #[arg(long = "host", requires = "log")]
        hosts: Vec<String>,
    },

    /// Verify a package's signatures as Checkmk's updater does.
    ///
    /// Prints Checkmk's log lines ("Signature #N is invalid.", "Signature check
    /// OK.", ...). Exit code 0 when accepted, 1 when not.
    Verify {
        /// The package file.
        package: PathBuf,
        /// Trusted certificates (a PEM file, which may hold several; repeat the
        /// option for more files).
        #[arg(long, required = true, num_args = 1, action = clap::ArgAction::Append, value_name = "PEM")]
        trust: Vec<PathBuf>,
        /// The signature list (default: PACKAGE.signatures.json).
        #[arg(long)]
        signatures: Option<PathBuf>,
        /// Valid signatures from distinct trusted keys needed (k of n).
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Print one JSON document instead of the log.
        #[arg(long)]
        json: bool,
    },

    /// Write, sign and verify hardened update metadata (root, targets, timestamp).
    #[command(subcommand)]
    Metadata(MetadataCommand),

    /// Check a signing log's hash chain and list its entries.
    ///
    /// Exit code 1 when the chain is broken.
    LogVerify {
        /// The signing log.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyKind {
    /// RSA-4096 with a sha512WithRSA self-signed certificate (packages, Checkmk).
    Rsa,
    /// Ed25519 (hardened metadata only).
    Ed25519,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key and its self-signed certificate (valid 10 years).
    ///
    /// The passphrase must have at least 12 characters; the key is stored
    /// encrypted (PBKDF2-HMAC-SHA256, AES-256-CBC).
    Create {
        /// Description, also the certificate's common name.
        #[arg(long)]
        alias: String,
        /// Owner (the certificate's OU).
        #[arg(long, env = "USER", default_value = "cmkadmin")]
        owner: String,
        /// Site id (the certificate's O is "Checkmk Site <site>").
        #[arg(long, env = "OMD_SITE", default_value = "mysite")]
        site: String,
        /// Key type.
        #[arg(long = "type", value_enum, default_value_t = KeyKind::Rsa)]
        key_type: KeyKind,
        /// PBKDF2 iterations (at least 600000).
        #[arg(long, default_value_t = agent_sign::DEFAULT_KDF_ITERATIONS)]
        kdf_iterations: u32,
    },
    /// List the keys with expiry state, MD5 digest and SHA-256 fingerprint.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        expiry: ExpiryArgs,
    },
    /// Show one key.
    Show {
        /// Key id.
        id: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print the certificate PEM only.
        #[arg(long, conflicts_with = "json")]
        pem: bool,
        #[command(flatten)]
        expiry: ExpiryArgs,
    },
    /// Export a key as Checkmk does: encrypted key PEM, then certificate PEM.
    ///
    /// The passphrase is asked for and checked; the key stays encrypted.
    Export {
        /// Key id.
        id: u64,
        /// Write to this file (mode 0600) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import a combined PEM (encrypted PKCS#8 key + certificate), e.g. from Checkmk.
    Import {
        /// The PEM file.
        file: PathBuf,
        /// Description for the key.
        #[arg(long)]
        alias: String,
        /// Owner.
        #[arg(long, env = "USER", default_value = "cmkadmin")]
        owner: String,
        /// PBKDF2 iterations for re-encrypting the key (at least 600000).
        #[arg(long, default_value_t = agent_sign::DEFAULT_KDF_ITERATIONS)]
        kdf_iterations: u32,
    },
    /// Delete a key, unless a known trust configuration still uses it.
    ///
    /// Known configurations: every *.pem and root *.json file in the store's
    /// "trusted" directory, and the files given with --trusted-by. The key's
    /// passphrase is required, and on a terminal the deletion is confirmed
    /// first (y/N); without a terminal, --yes is required.
    Delete {
        /// Key id.
        id: u64,
        /// Do not ask for confirmation (needed when not on a terminal).
        #[arg(long, short)]
        yes: bool,
        /// More trust configurations to check (PEM bundles or root metadata JSON).
        #[arg(long)]
        trusted_by: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct ExpiryArgs {
    /// WARN when a certificate expires within this many days.
    #[arg(long, default_value_t = 90)]
    pub(crate) warn_days: i64,
    /// CRIT when a certificate expires within this many days (or has expired).
    #[arg(long, default_value_t = 20)]
    pub(crate) crit_days: i64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MetadataCommand {
    /// Write a root document (keys and thresholds of the roles) and sign it.
    ///
    /// For a rotation, write version N+1 and sign it with a threshold of the
    /// current root keys and of the new root keys.
    Root {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Root version (1 for the first; +1 per rotation).
        #[arg(long)]
        version: u64,
        /// Days until the root expires.
        #[arg(long, default_value_t = 365)]
        expires_days: i64,
        /// Root key ids (store).
        #[arg(long, required = true, num_args = 1..)]
        root_key: Vec<u64>,
        /// Root threshold.
        #[arg(long, default_value_t = 1)]
        root_threshold: u32,
        /// Targets key ids (store).
        #[arg(long, required = true, num_args = 1..)]
        targets_key: Vec<u64>,
        /// Targets threshold.
        #[arg(long, default_value_t = 1)]
        targets_threshold: u32,
        /// Timestamp key ids (store).
        #[arg(long, required = true, num_args = 1..)]
        timestamp_key: Vec<u64>,
        /// Timestamp threshold.
        #[arg(long, default_value_t = 1)]
        timestamp_threshold: u32,
        /// Keys that sign the document now (old and new root keys for a rotation).
        #[arg(long, num_args = 1..)]
        sign_with: Vec<u64>,
    },
    /// Write targets metadata binding a package to a host and platform, and sign it.
    Targets {
        /// The package file.
        package: PathBuf,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Host name the package is for.
        #[arg(long)]
        host: String,
        /// Platform (linux_deb, linux_rpm, solaris_pkg, linux_tgz, windows_msi).
        #[arg(long)]
        platform: String,
        /// The server's 16-hex name for the package (aghash).
        #[arg(long)]
        aghash: String,
        /// Version; must increase for every new package of this host and platform.
        #[arg(long)]
        version: u64,
        /// Days until the metadata expires.
        #[arg(long, default_value_t = 30)]
        expires_days: i64,
        /// Signing key id (targets role); repeat the option for more keys.
        #[arg(long, num_args = 1, action = clap::ArgAction::Append)]
        key: Vec<u64>,
    },
    /// Write a short-lived timestamp naming a targets document, and sign it.
    Timestamp {
        /// The targets document.
        #[arg(long)]
        targets: PathBuf,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Timestamp version (increasing).
        #[arg(long)]
        version: u64,
        /// Hours until the timestamp expires.
        #[arg(long, default_value_t = 24)]
        expires_hours: i64,
        /// Signing key ids (timestamp role).
        #[arg(long, num_args = 1..)]
        key: Vec<u64>,
    },
    /// Add signatures to an existing metadata document (in place).
    Sign {
        /// The document.
        document: PathBuf,
        /// Signing key id; repeat the option for more keys.
        #[arg(long, required = true, num_args = 1, action = clap::ArgAction::Append)]
        key: Vec<u64>,
    },
    /// Verify targets (and timestamp) metadata as an updater would, with rollback state.
    ///
    /// The state file keeps the trusted root and the highest accepted versions.
    /// On first use it is created from --root. It is updated only on success.
    Verify {
        /// The client state file (created if missing).
        #[arg(long)]
        state: PathBuf,
        /// Initial trusted root (needed when the state file has none).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Newer root versions to apply, in order.
        #[arg(long)]
        root_update: Vec<PathBuf>,
        /// The targets document.
        #[arg(long)]
        targets: PathBuf,
        /// The timestamp document.
        #[arg(long)]
        timestamp: Option<PathBuf>,
        /// The package to check against the targets length and SHA-256.
        #[arg(long)]
        package: Option<PathBuf>,
        /// This host's name.
        #[arg(long)]
        host: String,
        /// This host's platform.
        #[arg(long)]
        platform: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// Whether the command prints JSON (`--json`); its errors are then one JSON
    /// document on stdout too.
    pub(crate) fn json(&self) -> bool {
        match &self.command {
            Command::Key(KeyCommand::List { json, .. } | KeyCommand::Show { json, .. })
            | Command::Verify { json, .. }
            | Command::LogVerify { json, .. }
            | Command::Metadata(MetadataCommand::Verify { json, .. }) => *json,
            _ => false,
        }
    }
}
