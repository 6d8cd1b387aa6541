//! Read and write Checkmk MKP extension packages, compatibly with Checkmk's own
//! `cmk-mkp-tool`, and unpack them safely.
//!
//! An MKP is a gzip-compressed tar holding `info` (the manifest as a Python literal),
//! `info.json` (the same as JSON) and one uncompressed `<part>.tar` per [`PackagePart`]
//! with files.
//!
//! * [`Mkp`] reads a package (gzip tar, or a plain tar which Checkmk rejects) and unpacks
//!   a part's files into a staging directory ([`Mkp::extract_part`]).
//! * [`Manifest`] is the manifest with every field, extra keys preserved, Checkmk's name and
//!   version rules ([`PackageName`], [`PackageVersion`] and its sort key), the `info` format
//!   (byte-identical to Python's `pprint.pformat`), `info.json`, and the text of `mkp inspect`.
//! * [`write_mkp`], [`build_part_tar`] and [`package_from_dirs`] write packages in Checkmk's
//!   member order; [`PackOptions::mtime`] makes the output reproducible.
//! * [`PathConfig`] says where each part lives (`mkp-tool.toml` or a site), and
//!   [`files_inventory`] is the `mkp find` report.
//! * [`Site`] is the package store of a Checkmk site: the site commands of `mkp` (`add`,
//!   `enable`, `disable`, `remove`, `release`, `list`, `show`, `files`, `find`, `template`,
//!   `package`, `disable-outdated`, `update-active`) as a library, compatible with the files
//!   Checkmk's own tool reads and writes, but transactional. See the
//!   [package store](#the-package-store-of-a-site) section below.
//!
//! ```
//! use mkp_format::{Limits, Manifest, Mkp, PackOptions, PackagePart, PackageName, PartFile};
//!
//! let mut manifest = Manifest::template(PackageName::new("hello").unwrap(), "2.3.0", Some(vec![]));
//! manifest.files = vec![(PackagePart::Agents, vec!["plugins/hello.sh".into()])];
//! let agents = mkp_format::build_part_tar(&[PartFile::new("plugins/hello.sh", "echo hi\n")]).unwrap();
//! let bytes = mkp_format::write_mkp(&manifest, &[(PackagePart::Agents, agents)],
//!                                   &PackOptions::default().mtime(0)).unwrap();
//!
//! let mkp = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
//! assert_eq!(mkp.manifest(), &manifest);
//! print!("{}", mkp.manifest().to_inspect_text());
//! ```
//!
//! # Security
//!
//! Packages are untrusted input: they come from download sites, forums and e-mail. The
//! threat model is a package crafted to write or change files outside the directory it is
//! unpacked into, or to exhaust memory or disk. The crate guarantees:
//!
//! * **Nothing is written outside the staging directory.** [`Mkp::extract_part`] writes only
//!   paths the manifest lists for that part. Listed paths that are absolute, contain `..`,
//!   are empty (`""`, `.`), contain NUL or a backslash are refused before anything is
//!   written. Every parent directory is created by us and checked not to be a symlink or a
//!   file; files are created with `O_CREAT|O_EXCL`, so an existing file or a symlink planted
//!   at the target makes extraction fail instead of being followed.
//! * **Only regular files are materialised.** Symlinks, devices, FIFOs and directories at a
//!   listed path are refused. A hard link is accepted only if its target is a listed file of
//!   the same part that was already unpacked; its content is then copied (no link is
//!   created). A listed path that occurs twice in a part tar is refused. Entries the
//!   manifest does not list are ignored, whatever they are, because they are never written.
//! * **Bounded resources.** Decompression stops as soon as the output exceeds
//!   [`Limits::max_unpacked_bytes`] (default 1 GiB) or, beyond a grace amount, the
//!   compression ratio exceeds [`Limits::max_ratio`] (default 500:1); tar archives may hold
//!   at most [`Limits::max_entries`] entries; declared member sizes are checked against the
//!   data actually present before anything is read or written, so a header declaring a
//!   billion bytes fails at once.
//! * **Nothing is evaluated.** The `info` manifest is parsed by a literal-only parser;
//!   names, calls and operators are errors. Nesting depth is capped.
//! * The tar crate's `unpack` functions are never used (banned in `clippy.toml`).
//!
//! Out of scope: races with other processes that modify the staging directory while we
//! write into it (use a fresh directory that only you can write to, e.g. from `tempfile`),
//! and what the unpacked plug-ins do once installed.
//!
//! # Differences from Checkmk's tool
//!
//! * A plain (uncompressed) tar is accepted; [`Mkp::container`] reports it so callers can
//!   tell the user. Checkmk fails with `not a gzip file`.
//! * Errors are one line naming the file and the problem; Checkmk prints tracebacks for
//!   several of them (broken literals, missing part tars, missing files).
//! * Unsafe manifest paths are refused on extraction and packaging (Checkmk passes them to
//!   GNU tar or the file system).
//!
//! # The package store of a site
//!
//! Open a site with [`Site::open`]; every change goes through a journaled transaction:
//! everything is checked first (versions, every file conflict at once, files changed since
//! install), the package is staged inside the site, then renamed into place, and rolled back
//! on any error; a change interrupted by a crash is repaired by the next [`Site::open`].
//! The documentation of [`Site`] describes the layout, the crash-safety guarantees, the
//! guard against losing local edits ([`HASHES_KEY`]) and where we deliberately differ from
//! Checkmk's tool.
//!
//! ```no_run
//! use mkp_format::{ChangeOptions, PackageId, Site};
//!
//! let site = Site::open("/omd/sites/mysite")?;
//! let manifest = site.add(&std::fs::read("hello-1.0.0.mkp")?)?;
//! let id = PackageId::of(&manifest);
//! site.enable(&id, &ChangeOptions::default())?;
//! print!("{}", site.listing()?.to_table());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

mod archive;
mod error;
mod extract;
mod find;
mod json;
mod manifest;
mod part;
mod paths;
mod store;
mod write;

pub use archive::{Container, Limits, Mkp, read_manifest};
pub use error::{Error, ErrorKind, Result};
pub use find::{
    LocalFile, files_inventory, files_inventory_json, files_inventory_table, render_table,
    unpackaged_files,
};
pub use manifest::{Manifest, PACKAGED_BY, PackageName, PackageVersion, SortIdent, VersionSortKey};
pub use part::PackagePart;
pub use paths::{PATH_CONFIG_FILE, PathConfig};
pub use py_literal::PyValue;
pub use store::{
    Action, ChangeOptions, EXCLUSIVE_MARK, FaultHook, HASHES_KEY, Listing, LockHolder, PackageId,
    Plan, SITE_LOCK_FILE, Site, SiteLock, StoreError, UpdateReport, site_version_from_link,
};
pub use write::{PackOptions, PartFile, build_part_tar, package_from_dirs, write_mkp};
