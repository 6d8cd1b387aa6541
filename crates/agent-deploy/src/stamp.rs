//! Noticing, without reading them, that files another process rewrites have changed: the
//! site's configuration, `sites.mk`, the published root documents.
//!
//! A value read from files is kept with the files' [`Stamps`], taken just before the read.
//! It stays valid while the files show the same stamps (inode, size, modification and change
//! times), with one exception that git calls "racy": a file system stores times at the
//! granularity of its clock tick, so a second change of the same size within the tick of the
//! first leaves the stamps as they were. A value read so soon after the newest change that
//! such a change could still follow it is therefore read again, until a read happens after
//! the tick. (Linux 6.13 and later give a change that follows a `stat` of the file a finer
//! time, which closes the gap for the change time; older kernels do not.)

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The clock tick of a file system that stores sub-second times (Linux: a jiffy, at most
/// 10 ms; the margin covers a loaded machine).
const FINE_TICK: Duration = Duration::from_millis(100);
/// The tick of a file system that stores whole seconds (or two, as FAT does).
const COARSE_TICK: Duration = Duration::from_secs(2);

/// What one file or directory looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The later of the modification and change times.
    fn changed(&self) -> SystemTime {
        let (secs, nanos) = self.mtime.max(self.ctime);
        let secs = u64::try_from(secs).unwrap_or(0);
        let nanos = u32::try_from(nanos).unwrap_or(0);
        UNIX_EPOCH + Duration::new(secs, nanos)
    }
}

/// The stamps of a set of files, and when they were taken.
#[derive(Debug, Clone)]
pub(crate) struct Stamps {
    files: Vec<FileStamp>,
    taken: SystemTime,
}

impl Stamps {
    /// The stamps of `paths` (following links) as they are now; a missing file has none, so
    /// that its appearing is a change too.
    pub(crate) fn of(paths: impl IntoIterator<Item = PathBuf>) -> Stamps {
        let taken = SystemTime::now();
        let mut files: Vec<FileStamp> = paths
            .into_iter()
            .filter_map(|path| {
                let meta = fs::metadata(&path).ok()?;
                Some(FileStamp {
                    ino: meta.ino(),
                    len: meta.len(),
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                    ctime: (meta.ctime(), meta.ctime_nsec()),
                    path,
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Stamps { files, taken }
    }

    /// Whether a value read just after `self` was taken still holds for files that now show
    /// `current`.
    pub(crate) fn still_valid(&self, current: &Stamps) -> bool {
        self.same_files(current) && !self.racy()
    }

    /// Whether the files show the same stamps.
    fn same_files(&self, other: &Stamps) -> bool {
        self.files == other.files
    }

    /// Whether a change within the tick of a file's last change could have followed the
    /// read. Only a change within a tick of the read counts, either way (a file server's clock
    /// may run a little ahead): a change gets the time of its own tick, so a time further in
    /// the future (a copied or touched file) is never given again, and such a file must not
    /// make every request read the files again.
    fn racy(&self) -> bool {
        self.files.iter().any(|f| {
            let tick = if f.mtime.1 == 0 && f.ctime.1 == 0 {
                COARSE_TICK
            } else {
                FINE_TICK
            };
            let apart = match self.taken.duration_since(f.changed()) {
                Ok(age) => age,
                Err(ahead) => ahead.duration(),
            };
            apart <= tick
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set_times(path: &std::path::Path, t: SystemTime) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    #[test]
    fn a_change_of_size_inode_or_presence_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let paths = || [a.clone(), b.clone()];
        fs::write(&a, "one").unwrap();
        let before = Stamps::of(paths());
        assert!(before.same_files(&Stamps::of(paths())));
        fs::write(&b, "new").unwrap();
        assert!(!before.same_files(&Stamps::of(paths())), "b appeared");

        let before = Stamps::of(paths());
        fs::write(&a, "three").unwrap();
        assert!(!before.same_files(&Stamps::of(paths())), "a grew");

        // An atomic replacement with the same size and modification time.
        let before = Stamps::of(paths());
        let t = a.metadata().unwrap().modified().unwrap();
        let tmp = dir.path().join("tmp");
        fs::write(&tmp, "THREE").unwrap();
        set_times(&tmp, t);
        fs::rename(&tmp, &a).unwrap();
        let after = Stamps::of(paths());
        assert_ne!(before.files[0].ino, after.files[0].ino);
        assert!(!before.same_files(&after), "a replaced");
    }

    #[test]
    fn a_same_size_change_right_after_a_read_is_not_missed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "one").unwrap();
        let read_at = Stamps::of([a.clone()]);
        // Same size, same inode, very likely the same clock tick.
        fs::write(&a, "two").unwrap();
        assert!(!read_at.still_valid(&Stamps::of([a])));
    }

    #[test]
    fn settled_files_keep_their_value_and_fresh_ones_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "one").unwrap();
        // Just written: a same-size change in the same tick would not show.
        let fresh = Stamps::of([a.clone()]);
        assert!(fresh.racy());
        assert!(!fresh.still_valid(&Stamps::of([a.clone()])));
        // Changed long ago (ctime too: it is set to now by set_modified, so compare only
        // what the mtime alone gives).
        let mut old = Stamps::of([a.clone()]);
        let ten_s_ago = SystemTime::now() - Duration::from_secs(10);
        let secs = ten_s_ago.duration_since(UNIX_EPOCH).unwrap();
        let then = (
            i64::try_from(secs.as_secs()).unwrap(),
            i64::from(secs.subsec_nanos()),
        );
        old.files[0].mtime = then;
        old.files[0].ctime = then;
        assert!(!old.racy());
        let mut current = Stamps::of([a]);
        current.files[0].mtime = then;
        current.files[0].ctime = then;
        assert!(old.still_valid(&current));
        // Whole-second times: the tick is taken to be two seconds.
        let mut coarse = old.clone();
        coarse.files[0].mtime = (then.0 + 9, 0);
        coarse.files[0].ctime = (then.0 + 9, 0);
        assert!(coarse.racy());
        coarse.files[0].mtime = (then.0 + 7, 0);
        coarse.files[0].ctime = (then.0 + 7, 0);
        assert!(!coarse.racy());
    }

    #[test]
    fn a_file_dated_in_the_future_is_not_read_again_and_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "one").unwrap();
        set_times(&a, SystemTime::now() + Duration::from_secs(3600));
        let mut read_at = Stamps::of([a.clone()]);
        // The change time is now (set_modified sets it); take the future one for both.
        read_at.files[0].ctime = read_at.files[0].mtime;
        assert!(!read_at.racy());
        let mut current = Stamps::of([a]);
        current.files[0].ctime = current.files[0].mtime;
        assert!(read_at.still_valid(&current));
    }

    #[test]
    fn a_read_after_the_tick_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "one").unwrap();
        std::thread::sleep(FINE_TICK + Duration::from_millis(20));
        let later = Stamps::of([a.clone()]);
        assert!(later.still_valid(&Stamps::of([a])));
    }
}
