//! An append-only file of text lines (`can.log`, `frames.jsonl`) that a full, read-only or
//! vanished disk cannot stop.
//!
//! Lines are handed over with [`LineFile::push`] and written with one `write(2)` per
//! [`LineFile::commit`] (the run loop commits once per frame): after a kill, even SIGKILL, every
//! committed line is in the kernel and survives the process; only lines pushed since the last
//! commit are lost. Every `sync_every` commits the data is also fsynced, which bounds what a
//! power loss can take.
//!
//! What cannot be written waits in a bounded backlog and goes out with the next commit that
//! succeeds, in order; the file is reopened (appending) after a failure, so a folder that comes
//! back, or space freed, lets writing resume by itself. Lines that would overflow the backlog are
//! dropped whole and counted, so the file never holds a torn line except at a kill mid-write.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Backlog the daemon's logs keep while their disk refuses writes: about a minute of
/// `frames.jsonl` at 30 frames/s.
pub const DEFAULT_BACKLOG_BYTES: usize = 4 << 20;

/// What a [`LineFile`] did so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineFileStats {
    /// Lines accepted (written or waiting in the backlog).
    pub lines: u64,
    /// Lines refused because the backlog was full.
    pub dropped_lines: u64,
    /// Commits that failed (open, write or fsync).
    pub failed_commits: u64,
}

pub struct LineFile {
    path: PathBuf,
    file: Option<File>,
    /// Once the file was created (truncated), later opens append.
    created: bool,
    backlog: Vec<u8>,
    backlog_cap: usize,
    sync_every: u32,
    commits: u32,
    stats: LineFileStats,
}

impl LineFile {
    /// A line file at `path`, created (truncated) by the first commit that can. `sync_every`:
    /// fsync every that many commits (0: never); `backlog_cap`: bytes kept while writes fail.
    pub fn new(path: &Path, sync_every: u32, backlog_cap: usize) -> LineFile {
        LineFile {
            path: path.to_path_buf(),
            file: None,
            created: false,
            backlog: Vec::new(),
            backlog_cap,
            sync_every,
            commits: 0,
            stats: LineFileStats::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> LineFileStats {
        self.stats
    }

    /// Bytes waiting for the disk.
    pub fn backlog_bytes(&self) -> usize {
        self.backlog.len()
    }

    /// Queues one line (without its newline). Returns false when it was dropped because the
    /// backlog is full.
    pub fn push(&mut self, line: &[u8]) -> bool {
        if self.backlog.len() + line.len() + 1 > self.backlog_cap {
            self.stats.dropped_lines += 1;
            return false;
        }
        self.backlog.extend_from_slice(line);
        self.backlog.push(b'\n');
        self.stats.lines += 1;
        true
    }

    /// Writes the backlog. On an error what was written is gone from the backlog, the rest
    /// waits for the next commit, and the file is closed so that the next commit reopens it.
    pub fn commit(&mut self) -> std::io::Result<()> {
        let result = self.try_commit();
        if result.is_err() {
            self.stats.failed_commits += 1;
            self.file = None;
        }
        result
    }

    fn try_commit(&mut self) -> std::io::Result<()> {
        let file = match self.file.take() {
            Some(f) => f,
            None => self.open()?,
        };
        let file = self.file.insert(file);
        let mut written = 0;
        let result = loop {
            if written == self.backlog.len() {
                break Ok(());
            }
            match file.write(&self.backlog[written..]) {
                Ok(0) => break Err(std::io::Error::from(ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.backlog.drain(..written);
        result?;
        self.commits = self.commits.wrapping_add(1);
        if self.sync_every > 0 && self.commits.is_multiple_of(self.sync_every) {
            file.sync_data()?;
        }
        Ok(())
    }

    /// The first successful open creates the file afresh; later ones append to it. A missing
    /// folder is created (it may have been unmounted or removed under the running daemon).
    fn open(&mut self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = if self.created {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?
        } else {
            File::create(&self.path)?
        };
        self.created = true;
        Ok(file)
    }

    /// Commits what is left and fsyncs it: the file is complete.
    pub fn close(mut self) -> std::io::Result<LineFileStats> {
        self.commit()?;
        if let Some(f) = &self.file {
            f.sync_data()?;
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_at_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out").join("log.txt");
        let mut log = LineFile::new(&path, 2, 1024);
        assert!(log.push(b"one"));
        assert!(!path.exists(), "nothing is written before the commit");
        log.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        log.push(b"two");
        log.commit().unwrap();
        let stats = log.close().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(stats.lines, 2);
        assert_eq!(stats.failed_commits, 0);
    }

    #[test]
    fn a_folder_that_appears_later_gets_the_backlog_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be: every open fails until it is removed.
        let blocker = dir.path().join("out");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let path = blocker.join("log.txt");
        let mut log = LineFile::new(&path, 0, 1024);
        log.push(b"first");
        assert!(log.commit().is_err());
        log.push(b"second");
        assert!(log.commit().is_err());
        assert_eq!(log.stats().failed_commits, 2);
        std::fs::remove_file(&blocker).unwrap();
        log.push(b"third");
        log.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "first\nsecond\nthird\n"
        );
        assert_eq!(log.backlog_bytes(), 0);
    }

    #[test]
    fn a_full_backlog_drops_whole_lines_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("out");
        std::fs::write(&blocker, b"").unwrap();
        let mut log = LineFile::new(&blocker.join("log.txt"), 0, 10);
        assert!(log.push(b"1234"));
        assert!(log.push(b"5678"));
        assert!(!log.push(b"9"), "10 bytes are taken: no room for 2 more");
        assert_eq!(log.stats().dropped_lines, 1);
        assert_eq!(log.stats().lines, 2);
        assert_eq!(log.backlog_bytes(), 10);
    }

    #[test]
    fn a_reopen_appends_instead_of_truncating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let mut log = LineFile::new(&path, 0, 1024);
        log.push(b"kept");
        log.commit().unwrap();
        // As after a failed write: the next commit has to open the file again.
        log.file = None;
        log.push(b"appended");
        log.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\nappended\n");
    }

    /// A real full disk: /dev/full fails every write with ENOSPC.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_keeps_the_lines_for_later() {
        let mut log = LineFile::new(Path::new("/dev/full"), 0, 1024);
        log.created = true; // append to the device rather than truncate it
        log.push(b"waiting");
        let err = log.commit().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
        assert_eq!(log.backlog_bytes(), "waiting\n".len());
    }
}
