//! What the fuzz targets share: the input as text, and fixed-size fields taken off its front
//! (sizes, parameters) before the rest goes to the parser.

use std::path::Path;

/// The input as a file's text, as `read_to_string` gives it (`None`: not UTF-8, which the
/// loaders refuse before parsing).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The file name the parsers put into their errors; nothing opens it.
pub fn path(name: &str) -> &Path {
    Path::new(name)
}

/// Reads little-endian fields off the front of the input; past the end they read as zero, so
/// every input is usable.
pub struct Header<'a> {
    rest: &'a [u8],
}

impl<'a> Header<'a> {
    pub fn new(data: &'a [u8]) -> Header<'a> {
        Header { rest: data }
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.rest.len());
        out[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }

    /// Whether anything is left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes after the header.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}
