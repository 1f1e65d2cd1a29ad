//! Is stderr the systemd journal? systemd says so in `JOURNAL_STREAM` ("DEV:INODE" of the
//! stream it connected), and a program compares that with what its stderr is: the variable is
//! inherited by children whose stderr may go elsewhere (systemd.exec(5), "JOURNAL_STREAM").

/// Whether stderr is the journal stream named by `JOURNAL_STREAM`.
pub fn stderr_is_journal() -> bool {
    let Some(named) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    match (parse(&named.to_string_lossy()), stderr_id()) {
        (Some(named), Some(actual)) => named == actual,
        _ => false,
    }
}

/// `"DEV:INODE"`, both decimal.
fn parse(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Device and inode of what stderr is (fstat(2) on a duplicate of file descriptor 2).
#[cfg(unix)]
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn stderr_id() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn journal_stream_is_dev_colon_inode() {
        assert_eq!(parse("64768:123456"), Some((64768, 123456)));
        assert_eq!(parse("64768:123456\n"), Some((64768, 123456)));
        assert_eq!(parse("64768"), None);
        assert_eq!(parse("a:1"), None);
        assert_eq!(parse(""), None);
    }
}
