//! Remembering which profile tables passed the key check (`E0406`), so that an unchanged
//! table is not read again to prove its keys unique.
//!
//! The check reads the whole key column; on a short evaluation that is a third of the
//! work. A record says "the source with this identity had unique, non-null keys in this
//! column", and the identity of a source is, for each of its files, its path, size,
//! device, inode, modification and status-change times. Any write to a file changes its
//! status-change time, which no program can set back, so a changed table never matches
//! a record and is checked again.
//!
//! Files written in the last [`SETTLED`] are not recorded: a file system that keeps
//! times in whole seconds could otherwise give a file written twice within one second
//! the same identity both times.
//!
//! A record may also say that the keys are exactly the integers of a range, with none
//! missing ([`Recorded::contiguous`]). Plans then select profiles of such a table by that
//! range without reading its keys (see `plan::Planner::with_contiguous_keys`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long ago a file must have been last changed for its check to be recorded.
pub const SETTLED: Duration = Duration::from_secs(2);

/// The last line of a record: this, then the range of contiguous keys (`LOW HIGH`) or
/// [`NOT_CONTIGUOUS`]. Records without it (written by earlier versions) are checked
/// again, so that the range is known.
const CONTIGUOUS: &str = "contiguous ";
/// The range of keys of a record whose keys are not a range without gaps.
const NOT_CONTIGUOUS: &str = "none";

/// What a record says beyond "the keys passed the check".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recorded {
    /// The keys are every integer from the first to the second, inclusive, each once.
    pub contiguous: Option<(i64, i64)>,
}

/// A directory of records of profile tables whose keys passed the check.
#[derive(Debug, Clone)]
pub struct VerifiedKeys {
    dir: PathBuf,
}

impl VerifiedKeys {
    /// Records kept in `dir`, which is created when the first record is written.
    pub fn new(dir: impl Into<PathBuf>) -> VerifiedKeys {
        VerifiedKeys { dir: dir.into() }
    }

    /// Whether the keys in column `key` of the data at `source` passed the check, and
    /// the data has not changed since.
    pub fn is_verified(&self, source: &Path, key: &str) -> bool {
        (self.identity(source, key))
            .is_some_and(|identity| self.is_recorded(source, key, &identity))
    }

    /// Whether a record says the keys of `source` passed the check when its identity was
    /// `identity` (see [`VerifiedKeys::identity`]).
    pub fn is_recorded(&self, source: &Path, key: &str, identity: &str) -> bool {
        self.recorded(source, key, identity).is_some()
    }

    /// What the record of `source` says, if one says its keys passed the check when its
    /// identity was `identity`. A record this version cannot read is no record: the
    /// table is checked again.
    pub fn recorded(&self, source: &Path, key: &str, identity: &str) -> Option<Recorded> {
        let record = fs::read_to_string(self.record_path(source, key)).ok()?;
        let facts = record.strip_prefix(identity)?;
        let range = facts.strip_prefix(CONTIGUOUS)?.strip_suffix('\n')?;
        if range == NOT_CONTIGUOUS {
            return Some(Recorded::default());
        }
        let (low, high) = range.split_once(' ')?;
        let (low, high) = (low.parse().ok()?, high.parse().ok()?);
        (low <= high).then_some(Recorded {
            contiguous: Some((low, high)),
        })
    }

    /// The identity of the data at `source` (a file, or a directory of files, at any
    /// depth) checked on column `key`, one line per file in path order; `None` when it
    /// cannot be recorded (a file changed in the last [`SETTLED`], or one whose times
    /// cannot be read).
    pub fn identity(&self, source: &Path, key: &str) -> Option<String> {
        let source = fs::canonicalize(source).ok()?;
        let mut files = Vec::new();
        collect_files(&source, &mut files).ok()?;
        files.sort();
        let settled = SystemTime::now().checked_sub(SETTLED)?;
        let mut identity = format!("key {key}\n");
        for file in files {
            identity.push_str(&file_identity(&file, settled)?);
            identity.push('\n');
        }
        Some(identity)
    }

    /// Records that the keys of `source`, whose identity was `before` when the check
    /// began, passed it. Nothing is recorded if the source changed meanwhile. The record
    /// is written to a temporary file and renamed into place, so a reader never sees
    /// half of one.
    pub fn record(
        &self,
        source: &Path,
        key: &str,
        before: &str,
        facts: Recorded,
    ) -> io::Result<()> {
        if self.identity(source, key).as_deref() != Some(before) {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)?;
        let path = self.record_path(source, key);
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        let range = match facts.contiguous {
            Some((low, high)) => format!("{low} {high}"),
            None => NOT_CONTIGUOUS.to_string(),
        };
        let record = format!("{before}{CONTIGUOUS}{range}\n");
        fs::write(&temporary, record)?;
        fs::rename(&temporary, &path).inspect_err(|_| {
            let _ = fs::remove_file(&temporary);
        })
    }

    fn record_path(&self, source: &Path, key: &str) -> PathBuf {
        let source = fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
        let name = format!("{}\0{key}", source.display());
        self.dir
            .join(format!("{:016x}.keys", crate::stable_hash(name.as_bytes())))
    }
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    if fs::metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            collect_files(&entry?.path(), files)?;
        }
    } else {
        files.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(unix)]
fn file_identity(path: &Path, settled: SystemTime) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(path).ok()?;
    let at = |seconds: i64, nanoseconds: i64| {
        let seconds = u64::try_from(seconds).ok()?;
        let nanoseconds = u32::try_from(nanoseconds).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanoseconds))
    };
    let modified = at(metadata.mtime(), metadata.mtime_nsec())?;
    let changed = at(metadata.ctime(), metadata.ctime_nsec())?;
    if modified > settled || changed > settled {
        return None;
    }
    Some(format!(
        "{} size {} device {} inode {} modified {}.{:09} changed {}.{:09}",
        path.display(),
        metadata.len(),
        metadata.dev(),
        metadata.ino(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec(),
    ))
}

/// Without status-change times a rewritten file cannot be told apart for sure: nothing
/// is recorded.
#[cfg(not(unix))]
fn file_identity(_path: &Path, _settled: SystemTime) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to the file `name` in `dir`.
    fn written(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_file_written_just_now_is_not_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = written(dir.path(), "customers.csv", "id\n1\n2\n");
        let keys = VerifiedKeys::new(dir.path().join("records"));
        assert_eq!(keys.identity(&data, "id"), None);
        assert!(!keys.is_verified(&data, "id"));
    }

    #[test]
    fn a_record_holds_until_the_data_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = written(dir.path(), "customers.csv", "id\n1\n2\n");
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let keys = VerifiedKeys::new(dir.path().join("records"));
        let before = keys
            .identity(&data, "id")
            .expect("a settled file has an identity");
        keys.record(&data, "id", &before, Recorded::default())
            .expect("record");
        assert!(keys.is_verified(&data, "id"));
        assert!(!keys.is_verified(&data, "other"), "another key column");
        // The same size, the modification time put back: the status-change time differs.
        let modified = fs::metadata(&data)
            .and_then(|m| m.modified())
            .expect("mtime");
        fs::write(&data, "id\n1\n1\n").expect("write");
        fs::File::options()
            .write(true)
            .open(&data)
            .and_then(|f| f.set_modified(modified))
            .expect("set mtime");
        assert!(!keys.is_verified(&data, "id"));
    }

    #[test]
    fn a_directory_changes_with_any_file_in_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("customers");
        fs::create_dir_all(data.join("part")).expect("mkdir");
        written(&data.join("part"), "a.csv", "id\n1\n");
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let keys = VerifiedKeys::new(dir.path().join("records"));
        let before = keys.identity(&data, "id").expect("settled");
        keys.record(&data, "id", &before, Recorded::default())
            .expect("record");
        assert!(keys.is_verified(&data, "id"));
        written(&data.join("part"), "b.csv", "id\n1\n");
        assert!(!keys.is_verified(&data, "id"));
    }

    #[test]
    fn nothing_is_recorded_when_the_data_changed_during_the_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = written(dir.path(), "customers.csv", "id\n1\n2\n");
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let keys = VerifiedKeys::new(dir.path().join("records"));
        let before = keys.identity(&data, "id").expect("settled");
        fs::write(&data, "id\n1\n1\n").expect("write");
        keys.record(&data, "id", &before, Recorded::default())
            .expect("record");
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        assert!(!keys.is_verified(&data, "id"));
    }

    #[test]
    fn a_record_keeps_the_range_of_contiguous_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = written(dir.path(), "customers.csv", "id\n1\n2\n3\n");
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let keys = VerifiedKeys::new(dir.path().join("records"));
        let identity = keys.identity(&data, "id").expect("settled");
        let facts = Recorded {
            contiguous: Some((1, 3)),
        };
        keys.record(&data, "id", &identity, facts).expect("record");
        assert_eq!(keys.recorded(&data, "id", &identity), Some(facts));
        keys.record(&data, "id", &identity, Recorded::default())
            .expect("record");
        assert_eq!(
            keys.recorded(&data, "id", &identity),
            Some(Recorded::default())
        );
        // A range line this version cannot read, or none, is no record at all.
        let path = keys.record_path(&data, "id");
        for garbled in [
            "contiguous 3 1\n",
            "contiguous 1\n",
            "contiguous 1 3",
            "sorted\n",
            "",
        ] {
            fs::write(&path, format!("{identity}{garbled}")).expect("write");
            assert_eq!(keys.recorded(&data, "id", &identity), None, "{garbled:?}");
        }
    }
}
