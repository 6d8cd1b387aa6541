//! The commands: thin glue between the arguments and the library.

use std::fs;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_sign::{
    Certificate, Clock, Error, ExpiryThresholds, KdfParams, KeyEntry, KeyStore, KeyType,
    KnownTrust, MetaKey, NewKey, Passphrase, PrivateKey, RoleKeys, Roles, RollbackState, Root,
    SignedDocument, SystemClock, Targets, Timestamp, TrustedCertificates, TrustedRoot,
    VerifyPolicy,
};
use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command, ExpiryArgs, KeyCommand, KeyKind, MetadataCommand};

/// The default environment variable for passphrases.
const PASSPHRASE_ENV: &str = "AGENT_SIGN_PASSPHRASE";

/// 1 for negative verification results, 2 for everything else (the code and its number).
pub(crate) fn exit_code_for(err: &anyhow::Error) -> (ExitCode, u8) {
    let n = match err.downcast_ref::<Error>() {
        Some(
            Error::NoValidSignature
            | Error::ThresholdNotMet { .. }
            | Error::Expired { .. }
            | Error::Rollback { .. }
            | Error::RootVersion { .. }
            | Error::WrongTarget { .. }
            | Error::HashMismatch(_),
        ) => 1,
        _ => 2,
    };
    (ExitCode::from(n), n)
}

struct Ctx {
    store: PathBuf,
    passphrase_file: Option<PathBuf>,
    passphrase_env: Option<String>,
}

impl Ctx {
    /// The existing key store (a missing one is an error, nothing is created).
    fn store(&self) -> Result<KeyStore> {
        Ok(KeyStore::open_existing(&self.store)?)
    }

    /// The key store, created if missing: only for the commands that add a key.
    fn store_for_new_key(&self) -> Result<KeyStore> {
        Ok(KeyStore::open(&self.store)?)
    }

    /// A passphrase from the file, the environment, or the terminal.
    fn passphrase(&self, prompt: &str, confirm: bool) -> Result<Passphrase> {
        if let Some(path) = &self.passphrase_file {
            let text = zeroize::Zeroizing::new(
                fs::read_to_string(path)
                    .with_context(|| format!("reading the passphrase file {}", path.display()))?,
            );
            let line = text.lines().next().unwrap_or_default();
            return Ok(Passphrase::new(line));
        }
        let var = self
            .passphrase_env
            .clone()
            .or_else(|| std::env::var_os(PASSPHRASE_ENV).map(|_| PASSPHRASE_ENV.to_string()));
        if let Some(var) = var {
            let value = std::env::var(&var)
                .with_context(|| format!("the passphrase variable {var} is not set"))?;
            return Ok(Passphrase::new(value));
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "no passphrase: not on a terminal; use --passphrase-file or --passphrase-env (or set {PASSPHRASE_ENV})"
            );
        }
        let first = Passphrase::new(rpassword::prompt_password(prompt)?);
        if confirm {
            let again = Passphrase::new(rpassword::prompt_password("Repeat the passphrase: ")?);
            if first != again {
                bail!("the passphrases differ");
            }
        }
        Ok(first)
    }

    /// Decrypts key `id` with its passphrase.
    fn unlock(&self, store: &KeyStore, id: u64) -> Result<(PrivateKey, KeyEntry)> {
        let entry = store.get(id)?;
        let pass = self.passphrase(
            &format!("Passphrase for key #{id} ({}): ", entry.alias),
            false,
        )?;
        store
            .unlock(id, &pass)
            .with_context(|| format!("unlocking key #{id}"))
    }
}

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx {
        store: cli.store,
        passphrase_file: cli.passphrase_file,
        passphrase_env: cli.passphrase_env,
    };
    match cli.command {
        Command::Key(cmd) => key(&ctx, cmd),
        Command::Sign {
            package,
            key,
            signatures,
            log,
            hosts,
        } => sign(&ctx, &package, key, signatures, log, hosts),
        Command::LogVerify { file, json } => log_verify(&file, json),
        Command::Verify {
            package,
            trust,
            signatures,
            threshold,
            json,
        } => verify(&package, &trust, signatures, threshold, json),
        Command::Metadata(cmd) => metadata(&ctx, cmd),
    }
}

fn stdout_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn iso(t: i64) -> String {
    time_fmt(t)
}

/// `YYYY-MM-DD HH:MM:SS UTC` without another dependency.
fn time_fmt(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[derive(Serialize)]
struct KeyJson {
    id: u64,
    alias: String,
    owner: String,
    key_type: KeyType,
    bits: usize,
    created: i64,
    not_before: i64,
    expires: i64,
    days_left: i64,
    expiry_state: agent_sign::ExpiryState,
    digest_md5: String,
    fingerprint_sha256: String,
    key_id: String,
    subject_common_name: Option<String>,
    subject_organization: Option<String>,
    subject_organizational_unit: Option<String>,
    signature_algorithm: String,
}

fn key_json(entry: &KeyEntry, expiry: ExpiryArgs, clock: &dyn Clock) -> KeyJson {
    let c = &entry.certificate;
    KeyJson {
        id: entry.id,
        alias: entry.alias.clone(),
        owner: entry.owner.clone(),
        key_type: entry.key_type,
        bits: c.public_key().bits(),
        created: entry.date,
        not_before: c.not_before(),
        expires: c.not_after(),
        days_left: c.days_left(clock),
        expiry_state: c.expiry_state(clock, thresholds(expiry)),
        digest_md5: c.md5_digest(),
        fingerprint_sha256: c.fingerprint_sha256(),
        key_id: c.public_key().key_id(),
        subject_common_name: c.common_name().map(String::from),
        subject_organization: c.organization().map(String::from),
        subject_organizational_unit: c.organizational_unit().map(String::from),
        signature_algorithm: c.signature_algorithm().to_string(),
    }
}

fn thresholds(e: ExpiryArgs) -> ExpiryThresholds {
    ExpiryThresholds {
        warn_days: e.warn_days,
        crit_days: e.crit_days,
    }
}

fn state_name(s: agent_sign::ExpiryState) -> &'static str {
    match s {
        agent_sign::ExpiryState::Ok => "OK",
        agent_sign::ExpiryState::Warn => "WARN",
        agent_sign::ExpiryState::Crit => "CRIT",
    }
}

fn key(ctx: &Ctx, cmd: KeyCommand) -> Result<ExitCode> {
    let clock = SystemClock;
    match cmd {
        KeyCommand::Create {
            alias,
            owner,
            site,
            key_type,
            kdf_iterations,
        } => {
            let kdf = KdfParams::new(kdf_iterations)?;
            let store = ctx.store_for_new_key()?;
            let pass = ctx.passphrase("New passphrase (at least 12 characters): ", true)?;
            pass.check_new()?;
            let key_type = match key_type {
                KeyKind::Rsa => KeyType::Rsa,
                KeyKind::Ed25519 => KeyType::Ed25519,
            };
            let entry = store.create(
                &NewKey {
                    alias,
                    owner,
                    site,
                    key_type,
                },
                &pass,
                kdf,
                &clock,
            )?;
            eprintln!(
                "created key #{} ({}), SHA-256 {}",
                entry.id,
                entry.alias,
                entry.certificate.fingerprint_sha256()
            );
            stdout_line(&entry.id.to_string())?;
        }
        KeyCommand::List { json, expiry } => {
            let keys = ctx.store()?.list()?;
            let rows: Vec<KeyJson> = keys.iter().map(|k| key_json(k, expiry, &clock)).collect();
            if json {
                stdout_line(&serde_json::to_string_pretty(
                    &serde_json::json!({"schema": 1, "keys": rows}),
                )?)?;
            } else {
                let mut out = String::from(
                    "#   Description          Created     Expires     State Owner        Type     Digest (MD5)                                    SHA-256\n",
                );
                for r in &rows {
                    out.push_str(&format!(
                        "{:<3} {:<20} {:<11} {:<11} {:<5} {:<12} {:<8} {} {}\n",
                        r.id,
                        r.alias,
                        &iso(r.created)[..10],
                        &iso(r.expires)[..10],
                        state_name(r.expiry_state),
                        r.owner,
                        match r.key_type {
                            KeyType::Rsa => format!("rsa{}", r.bits),
                            KeyType::Ed25519 => "ed25519".to_string(),
                        },
                        r.digest_md5,
                        r.fingerprint_sha256
                    ));
                }
                stdout_line(&out)?;
            }
        }
        KeyCommand::Show {
            id,
            json,
            pem,
            expiry,
        } => {
            let entry = ctx.store()?.get(id)?;
            if pem {
                stdout_line(&entry.certificate.to_pem())?;
            } else if json {
                let mut v = serde_json::to_value(key_json(&entry, expiry, &clock))?;
                v["schema"] = serde_json::json!(1);
                v["certificate"] = serde_json::json!(entry.certificate.to_pem());
                stdout_line(&serde_json::to_string_pretty(&v)?)?;
            } else {
                let r = key_json(&entry, expiry, &clock);
                stdout_line(&format!(
                    "Key:            #{}\nDescription:    {}\nOwner:          {}\nType:           {} {} bits\nSubject:        CN={}, O={}, OU={}\nCreated:        {}\nExpires:        {} ({} days, {})\nSignature:      {}\nDigest (MD5):   {}\nSHA-256:        {}\nKey id:         {}\n",
                    r.id,
                    r.alias,
                    r.owner,
                    r.key_type,
                    r.bits,
                    r.subject_common_name.unwrap_or_default(),
                    r.subject_organization.unwrap_or_default(),
                    r.subject_organizational_unit.unwrap_or_default(),
                    iso(r.created),
                    iso(r.expires),
                    r.days_left,
                    state_name(r.expiry_state),
                    r.signature_algorithm,
                    r.digest_md5,
                    r.fingerprint_sha256,
                    r.key_id
                ))?;
            }
        }
        KeyCommand::Export { id, output } => {
            let store = ctx.store()?;
            let entry = store.get(id)?;
            let pass = ctx.passphrase(
                &format!("Passphrase for key #{id} ({}): ", entry.alias),
                false,
            )?;
            let pem = store.export(id, &pass)?;
            match output {
                Some(path) => write_private(&path, pem.as_bytes())?,
                None => stdout_line(&pem)?,
            }
        }
        KeyCommand::Import {
            file,
            alias,
            owner,
            kdf_iterations,
        } => {
            let kdf = KdfParams::new(kdf_iterations)?;
            let text =
                fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let store = ctx.store_for_new_key()?;
            let pass = ctx.passphrase("Passphrase of the key to import: ", false)?;
            let entry = store.import(&text, &alias, &owner, &pass, kdf)?;
            eprintln!("imported key #{} ({})", entry.id, entry.alias);
            stdout_line(&entry.id.to_string())?;
        }
        KeyCommand::Delete {
            id,
            yes,
            trusted_by,
        } => {
            let store = ctx.store()?;
            let mut extra = Vec::new();
            for path in &trusted_by {
                extra.push(read_trust(path)?);
            }
            let entry = store.check_deletable(id, &extra)?;
            let what = format!(
                "key #{id} ({}, SHA-256 {})",
                entry.alias,
                entry.certificate.fingerprint_sha256()
            );
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!("not deleting {what}: not on a terminal to confirm; pass --yes");
                }
                if !confirm(&format!("Delete {what}? It cannot be undone. [y/N] "))? {
                    eprintln!("Aborted: {what} was kept.");
                    return Ok(ExitCode::from(1));
                }
            }
            let pass = ctx.passphrase(
                &format!("Passphrase for key #{id} ({}): ", entry.alias),
                false,
            )?;
            store.delete(id, &pass, &extra)?;
            eprintln!("deleted {what}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks a yes/no question on the terminal; only `y` or `yes` is a yes.
fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    err.write_all(question.as_bytes())?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn read_trust(path: &Path) -> Result<KnownTrust> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display().to_string();
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return Ok(KnownTrust::from_pem_bundle(&name, &text)?);
    }
    let doc = SignedDocument::from_json(&text).with_context(|| format!("reading {name}"))?;
    let root: Root = serde_json::from_value(doc.signed)
        .with_context(|| format!("{name} is neither a PEM bundle nor a root document"))?;
    Ok(KnownTrust::from_root(&name, &root))
}

fn default_signatures(package: &Path, explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        let mut name = package.as_os_str().to_owned();
        name.push(".signatures.json");
        PathBuf::from(name)
    })
}

fn log_verify(file: &Path, json: bool) -> Result<ExitCode> {
    let log = agent_sign::SigningLog::new(file);
    match log.verify() {
        Ok(entries) => {
            if json {
                stdout_line(&serde_json::to_string_pretty(&serde_json::json!({
                    "schema": 1, "intact": true, "entries": entries,
                }))?)?;
            } else {
                let mut out = String::new();
                for e in &entries {
                    out.push_str(&format!(
                        "{:>5} {} key {} package {} version {} hosts {}\n",
                        e.seq,
                        time_fmt(e.time),
                        e.key_fingerprint,
                        e.package_sha256,
                        e.version,
                        e.hosts.join(",")
                    ));
                }
                out.push_str(&format!("chain intact: {} entries", entries.len()));
                stdout_line(&out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ Error::LogChainBroken { .. }) => {
            if json {
                stdout_line(&serde_json::to_string_pretty(&serde_json::json!({
                    "schema": 1, "intact": false, "error": e.to_string(),
                }))?)?;
            } else {
                stdout_line(&e.to_string())?;
            }
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn sign(
    ctx: &Ctx,
    package: &Path,
    key_id: u64,
    signatures: Option<PathBuf>,
    log: Option<PathBuf>,
    hosts: Vec<String>,
) -> Result<ExitCode> {
    let sig_path = default_signatures(package, signatures);
    let bytes = fs::read(package).with_context(|| format!("reading {}", package.display()))?;
    let mut list = match fs::read_to_string(&sig_path) {
        Ok(text) => agent_sign::signatures_from_json(&text)
            .with_context(|| format!("reading {}", sig_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", sig_path.display())),
    };
    let store = ctx.store()?;
    let (key, entry) = ctx.unlock(&store, key_id)?;
    agent_sign::sign_package(&bytes, &key, &entry.certificate, &mut list)?;
    drop(key);
    write_atomic(&sig_path, agent_sign::signatures_to_json(&list).as_bytes())?;
    if let Some(path) = log {
        use sha2::Digest as _;
        agent_sign::SigningLog::new(&path)
            .append(
                agent_sign::LogRecord {
                    key_fingerprint: entry.certificate.fingerprint_sha256(),
                    package_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                    version: 0,
                    hosts,
                    agent_hash: None,
                },
                &SystemClock,
            )
            .with_context(|| format!("appending to the signing log {}", path.display()))?;
    }
    eprintln!(
        "signed {} with key #{key_id} ({}); {} signature(s) in {}",
        package.display(),
        entry.alias,
        list.len(),
        sig_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(
    package: &Path,
    trust: &[PathBuf],
    signatures: Option<PathBuf>,
    threshold: usize,
    json: bool,
) -> Result<ExitCode> {
    let sig_path = default_signatures(package, signatures);
    let mut file =
        fs::File::open(package).with_context(|| format!("reading {}", package.display()))?;
    let text =
        fs::read_to_string(&sig_path).with_context(|| format!("reading {}", sig_path.display()))?;
    let list = agent_sign::signatures_from_json(&text)
        .with_context(|| format!("reading {}", sig_path.display()))?;
    let mut trusted = TrustedCertificates::new();
    for path in trust {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let certs = Certificate::all_from_pem(&text)
            .with_context(|| format!("reading certificates from {}", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        certs.into_iter().for_each(|c| trusted.add(c));
    }
    let policy = VerifyPolicy {
        threshold,
        ..VerifyPolicy::default()
    };
    // One pass with a bounded buffer: memory stays small whatever the package size.
    let report =
        agent_sign::verify_package_reader(&mut file, &list, &trusted, policy, &SystemClock)
            .with_context(|| format!("reading {}", package.display()))?;
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["schema"] = serde_json::json!(1);
        v["package"] = serde_json::json!(package.display().to_string());
        stdout_line(&serde_json::to_string_pretty(&v)?)?;
    } else {
        stdout_line(&report.log.join("\n"))?;
    }
    Ok(if report.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The client state of `metadata verify`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientState {
    root: Option<SignedDocument>,
    #[serde(default)]
    rollback: RollbackState,
}

fn read_doc(path: &Path) -> Result<SignedDocument> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SignedDocument::from_json(&text).with_context(|| format!("reading {}", path.display()))
}

fn sign_doc(ctx: &Ctx, doc: &mut SignedDocument, keys: &[u64]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let store = ctx.store()?;
    for &id in keys {
        let (key, _) = ctx.unlock(&store, id)?;
        doc.sign(&key)?;
    }
    Ok(())
}

fn public_keys(store: &KeyStore, ids: &[u64]) -> Result<Vec<(String, MetaKey)>> {
    ids.iter()
        .map(|&id| {
            Ok(MetaKey::from_public(
                store.get(id)?.certificate.public_key(),
            ))
        })
        .collect()
}

fn metadata(ctx: &Ctx, cmd: MetadataCommand) -> Result<ExitCode> {
    let now = SystemClock.now();
    match cmd {
        MetadataCommand::Root {
            out,
            version,
            expires_days,
            root_key,
            root_threshold,
            targets_key,
            targets_threshold,
            timestamp_key,
            timestamp_threshold,
            sign_with,
        } => {
            let store = ctx.store()?;
            let mut keys = std::collections::BTreeMap::new();
            let mut role = |ids: &[u64], threshold: u32| -> Result<RoleKeys> {
                let listed = public_keys(&store, ids)?;
                let keyids = listed.iter().map(|(id, _)| id.clone()).collect();
                keys.extend(listed);
                Ok(RoleKeys { keyids, threshold })
            };
            let roles = Roles {
                root: role(&root_key, root_threshold)?,
                targets: role(&targets_key, targets_threshold)?,
                timestamp: role(&timestamp_key, timestamp_threshold)?,
            };
            let root = Root::new(version, now + expires_days * 86_400, keys, roles);
            let mut doc = SignedDocument::new(&root)?;
            sign_doc(ctx, &mut doc, &sign_with)?;
            write_atomic(&out, doc.to_json()?.as_bytes())?;
            eprintln!(
                "wrote root version {version} with {} signature(s) to {}",
                doc.signatures.len(),
                out.display()
            );
        }
        MetadataCommand::Targets {
            package,
            out,
            host,
            platform,
            aghash,
            version,
            expires_days,
            key,
        } => {
            let bytes =
                fs::read(&package).with_context(|| format!("reading {}", package.display()))?;
            let t = Targets::for_package(
                &bytes,
                &host,
                &platform,
                &aghash,
                version,
                now,
                now + expires_days * 86_400,
            );
            let mut doc = SignedDocument::new(&t)?;
            sign_doc(ctx, &mut doc, &key)?;
            write_atomic(&out, doc.to_json()?.as_bytes())?;
            eprintln!(
                "wrote targets version {version} for {host}/{platform} to {}",
                out.display()
            );
        }
        MetadataCommand::Timestamp {
            targets,
            out,
            version,
            expires_hours,
            key,
        } => {
            let t = read_doc(&targets)?;
            let ts = Timestamp::for_targets(&t, version, now, now + expires_hours * 3600)?;
            let mut doc = SignedDocument::new(&ts)?;
            sign_doc(ctx, &mut doc, &key)?;
            write_atomic(&out, doc.to_json()?.as_bytes())?;
            eprintln!("wrote timestamp version {version} to {}", out.display());
        }
        MetadataCommand::Sign { document, key } => {
            let mut doc = read_doc(&document)?;
            sign_doc(ctx, &mut doc, &key)?;
            write_atomic(&document, doc.to_json()?.as_bytes())?;
            eprintln!(
                "{} now has {} signature(s)",
                document.display(),
                doc.signatures.len()
            );
        }
        MetadataCommand::Verify {
            state,
            root,
            root_update,
            targets,
            timestamp,
            package,
            host,
            platform,
            json,
        } => {
            let mut client: ClientState = match fs::read_to_string(&state) {
                Ok(text) => serde_json::from_str(&text)
                    .with_context(|| format!("reading the state file {}", state.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClientState::default(),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("reading the state file {}", state.display()));
                }
            };
            let root_doc = match (&client.root, &root) {
                (Some(doc), _) => doc.clone(),
                (None, Some(path)) => read_doc(path)?,
                (None, None) => bail!("the state file has no trusted root yet: pass --root"),
            };
            let mut trusted = TrustedRoot::bootstrap(&root_doc).context("the trusted root")?;
            for path in &root_update {
                let next = read_doc(path)?;
                trusted
                    .update(&next)
                    .with_context(|| format!("applying root update {}", path.display()))?;
            }
            let targets_doc = read_doc(&targets)?;
            let verified = trusted
                .verify_targets(
                    &targets_doc,
                    &host,
                    &platform,
                    &client.rollback,
                    &SystemClock,
                )
                .with_context(|| format!("verifying {}", targets.display()))?;
            let ts = match &timestamp {
                Some(path) => Some(
                    trusted
                        .verify_timestamp(
                            &read_doc(path)?,
                            &targets_doc,
                            &client.rollback,
                            &SystemClock,
                        )
                        .with_context(|| format!("verifying {}", path.display()))?,
                ),
                None => None,
            };
            if let Some(path) = &package {
                let bytes =
                    fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                verified
                    .check_package(&bytes)
                    .with_context(|| format!("checking {}", path.display()))?;
            }
            client.rollback.accept(&verified);
            if let Some(ts) = &ts {
                client.rollback.accept_timestamp(ts);
            }
            client.root = Some(trusted.document().clone());
            write_private(&state, serde_json::to_string_pretty(&client)?.as_bytes())?;
            if json {
                stdout_line(&serde_json::to_string_pretty(&serde_json::json!({
                    "schema": 1,
                    "accepted": true,
                    "root_version": trusted.root().version,
                    "targets": verified,
                    "timestamp": ts,
                }))?)?;
            } else {
                stdout_line(&format!(
                    "OK: {}/{} version {} (aghash {}, sha256 {}, {} bytes), root version {}",
                    verified.host_name,
                    verified.platform,
                    verified.version,
                    verified.aghash,
                    verified.sha256,
                    verified.length,
                    trusted.root().version
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a file atomically (temp file in the same directory, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with_mode(path, bytes, None)
}

/// Like [`write_atomic`], mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with_mode(path, bytes, Some(0o600))
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = mode.unwrap_or(0o644);
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
