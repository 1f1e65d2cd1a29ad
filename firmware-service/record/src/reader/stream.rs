//! The top-level records of a recording, read front to back through damage.
//!
//! A record whose framing (opcode, length), chunk lengths, compression, CRC or content is
//! damaged is skipped and reported as a [`Damage`]; reading goes on at the next record that
//! checks out:
//! - right after the damaged record, when its own lengths agree and a plausible record follows
//!   (a chunk whose data fails its CRC, or whose messages are malformed);
//! - else at the next record the file's own index places after it (the chunk and metadata
//!   indexes of its summary), when the footer is intact and the summary passes its CRC;
//! - else at the next chunk found by scanning the bytes that follow: an opcode byte whose record
//!   and chunk lengths agree, whose data passes its CRC and whose records fill it exactly.
//!
//! Every length read from the file is checked against the bytes left in the file before
//! anything is allocated, every step moves forward, and the search for intact records has a
//! budget of reads in proportion to the file's size, so no input can exhaust the memory or keep
//! the reader busy for long. Foxglove's `mcap recover` skips a chunk that fails its CRC or
//! decompression and stops at any other damage; this reader also finds its way past a damaged
//! length or opcode, and says what it skipped.

use mcap::records::{op, Record};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

/// Opcode and length in front of every record.
const RECORD_HEADER: usize = 9;
/// A chunk's header up to its compression name: start and end time, uncompressed size, CRC,
/// length of the name.
const CHUNK_FIXED: usize = 8 + 8 + 8 + 4 + 4;
/// The footer record: opcode, length, summary start, summary offset start, summary CRC.
const FOOTER: usize = RECORD_HEADER + 8 + 8 + 4;
/// The footer's bytes the summary CRC covers (all but the CRC itself).
const FOOTER_CRC_COVERS: usize = FOOTER - 4;
/// The data-end record: opcode, length, data section CRC.
const DATA_END: u64 = RECORD_HEADER as u64 + 4;
/// `mcap::MAGIC`'s length, at both ends of the file.
const MAGIC: u64 = 8;
/// Bytes read at a time while scanning for the next chunk: from the first window's size,
/// doubling up to the last's, so that a scan reads about as much as it passes over.
const SCAN_FIRST_WINDOW: usize = 1024;
const SCAN_WINDOW: usize = 64 * 1024;
/// What the scan reads of a candidate chunk before trusting it with a read of its body: record
/// header, chunk header without a compression name, the length of its records.
const SCAN_HEADER: usize = RECORD_HEADER + CHUNK_FIXED + 8;

/// `mcap::parse_record`, without its panic on an attachment shorter than its own fields (mcap
/// 0.26 slices `body[..len - 4]` before any length check; found by fuzz/fuzz_targets/
/// read_recording.rs): such a record is malformed, not a reason to abort.
pub(crate) fn parse_record(opcode: u8, body: &[u8]) -> Result<Record<'_>, mcap::McapError> {
    if opcode == op::ATTACHMENT && !attachment_fits(body) {
        return Err(mcap::McapError::UnexpectedEof);
    }
    mcap::parse_record(opcode, body)
}

/// Whether an attachment body holds its fixed fields (log and create time, name, media type,
/// data length) and its CRC.
fn attachment_fits(body: &[u8]) -> bool {
    let string_end = |at: usize| -> Option<usize> {
        let len = body.get(at..at.checked_add(4)?)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        (at + 4).checked_add(len)
    };
    let fields = string_end(8 + 8)
        .and_then(string_end)
        .and_then(|at| at.checked_add(8 + 4));
    fields.is_some_and(|end| end <= body.len())
}

/// Records a data section may hold (the spec's); any other opcode there is a damaged one.
const DATA_SECTION: [u8; 8] = [
    op::HEADER,
    op::SCHEMA,
    op::CHANNEL,
    op::MESSAGE,
    op::CHUNK,
    op::MESSAGE_INDEX,
    op::ATTACHMENT,
    op::METADATA,
];

/// A part of a recording that could not be read and was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// The bytes skipped, `start..end`; an empty range where the file ends before it should.
    pub start: u64,
    pub end: u64,
    /// What is wrong there.
    pub reason: String,
    /// The chunks the file's index places in those bytes, when its summary is intact.
    pub chunks: Option<ChunkSpan>,
    /// Data time of the latest message read before the damage, ns.
    pub after_ns: Option<u64>,
    /// Data time of the first message read after it, ns.
    pub before_ns: Option<u64>,
}

/// Chunks by the file's index: numbers in file order from 1, how many the file has, and the
/// data times of their messages, ns. `count` 0: the bytes held no chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    pub first: usize,
    pub count: usize,
    pub of: usize,
    pub start_ns: u64,
    pub end_ns: u64,
}

fn seconds(t_ns: u64) -> String {
    format!("{:.3}", t_ns as f64 / 1e9)
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (start, end) = (self.start, self.end);
        let lost = self.chunks.filter(|c| c.count > 0 && start < end);
        if start == end {
            write!(f, "at byte {start}")?;
        } else {
            write!(f, "bytes {start}–{end} ({} bytes)", end - start)?;
        }
        if let Some(c) = lost {
            match c.count {
                1 => write!(f, ", chunk {} of {}", c.first, c.of)?,
                n => write!(f, ", chunks {}–{} of {}", c.first, c.first + n - 1, c.of)?,
            }
            match (seconds(c.start_ns), seconds(c.end_ns)) {
                (a, b) if a == b => write!(f, " (messages at t = {a} s)")?,
                (a, b) => write!(f, " (messages at t = {a} … {b} s)")?,
            }
        } else {
            if self.chunks.is_some_and(|c| c.count == 0) && start < end {
                write!(f, ", no chunk by the file's index")?;
            }
            match (self.after_ns.map(seconds), self.before_ns.map(seconds)) {
                (Some(a), Some(b)) => write!(f, ", between t = {a} s and {b} s")?,
                (Some(a), None) => write!(f, ", after t = {a} s")?,
                (None, Some(b)) => write!(f, ", before t = {b} s")?,
                (None, None) => {}
            }
        }
        write!(f, ": {}", self.reason)
    }
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The records laid end to end in `bytes` (a chunk's data, the summary): opcode and body range.
pub(super) fn split_records(bytes: &[u8]) -> Result<Vec<(u8, Range<usize>)>, String> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (Some(&opcode), Some(len)) = (bytes.get(at), le_u64(bytes, at + 1)) else {
            return Err(format!(
                "a record header is cut short ({} bytes left)",
                bytes.len() - at
            ));
        };
        let body = at + RECORD_HEADER;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| body.checked_add(l))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "a record of {len} bytes with {} left: a damaged length",
                    bytes.len() - body
                )
            })?;
        records.push((opcode, body..end));
        at = end;
    }
    Ok(records)
}

/// Why a chunk failed its checks, and whether its lengths agree all the same (then the damage
/// is inside it, and the next record follows it).
struct ChunkFault {
    reason: String,
    framed: bool,
}

/// A chunk's records (opcode, range in `body`) once its lengths, compression and CRC check out.
/// MCAP allows padding after a chunk's records; no writer adds any, and requiring none is what
/// shows a damaged length.
fn check_chunk(body: &[u8]) -> Result<Vec<(u8, Range<usize>)>, ChunkFault> {
    let fault = |reason: String, framed| ChunkFault { reason, framed };
    let name_len = le_u32(body, 28).map(|n| n as usize);
    let records_at = name_len.and_then(|n| CHUNK_FIXED.checked_add(n)?.checked_add(8));
    let (Some(name_len), Some(records_at), Some(uncompressed), Some(crc)) =
        (name_len, records_at, le_u64(body, 16), le_u32(body, 24))
    else {
        return Err(fault("its header is cut short".into(), false));
    };
    let Some(size) = le_u64(body, records_at - 8) else {
        return Err(fault("its header is cut short".into(), false));
    };
    let records = body.get(records_at..).unwrap_or_default();
    if size != records.len() as u64 {
        return Err(fault(
            format!(
                "its lengths disagree ({size} bytes of records in a record with room for {}): a damaged length",
                records.len()
            ),
            false,
        ));
    }
    let name = body
        .get(CHUNK_FIXED..CHUNK_FIXED + name_len)
        .unwrap_or_default();
    if !name.is_empty() {
        return Err(fault(
            format!(
                "it is compressed (`{}`), which adasd does not read (adasd writes uncompressed chunks)",
                String::from_utf8_lossy(name)
            ),
            true,
        ));
    }
    if uncompressed != size {
        return Err(fault(
            format!(
                "its header says {uncompressed} bytes uncompressed for {size} bytes of records"
            ),
            true,
        ));
    }
    if crc != 0 && crc32fast::hash(records) != crc {
        return Err(fault("its data fails its CRC check".into(), true));
    }
    let inner = split_records(records).map_err(|e| fault(format!("inside it, {e}"), true))?;
    Ok(inner
        .into_iter()
        .map(|(opcode, r)| (opcode, r.start + records_at..r.end + records_at))
        .collect())
}

/// How a record other than a chunk checks out.
enum Content {
    /// What it holds fills its length exactly: the length is right.
    Exact,
    /// It parses, but its kind cannot show whether its length is right (a message, an
    /// attachment): only the record after it can.
    Unverified,
    /// It does not parse, or does not fill its length: a damaged opcode or length.
    Damaged(String),
}

/// Checks a record other than a chunk by what it holds: a chunk whose opcode was damaged into
/// another one is found so, and a damaged record is told from a damaged one after it.
fn content(opcode: u8, body: &[u8]) -> Content {
    let map = |m: &BTreeMap<String, String>| -> usize {
        m.iter().map(|(k, v)| 4 + k.len() + 4 + v.len()).sum()
    };
    let filled = match parse_record(opcode, body) {
        Err(e) => {
            return Content::Damaged(format!("a record (opcode {opcode:#04x}) is malformed: {e}"))
        }
        Ok(Record::Header(h)) => 4 + h.profile.len() + 4 + h.library.len(),
        Ok(Record::Schema { header, data }) => {
            2 + 4 + header.name.len() + 4 + header.encoding.len() + 4 + data.len()
        }
        Ok(Record::Channel(c)) => {
            2 + 2 + 4 + c.topic.len() + 4 + c.message_encoding.len() + 4 + map(&c.metadata)
        }
        Ok(Record::MessageIndex(m)) => 2 + 4 + 16 * m.records.len(),
        Ok(Record::Metadata(m)) => 4 + m.name.len() + 4 + map(&m.metadata),
        Ok(_) => return Content::Unverified,
    };
    if filled == body.len() {
        Content::Exact
    } else {
        Content::Damaged(format!(
            "a record (opcode {opcode:#04x}) of {} bytes whose content fills {filled}: a damaged \
             opcode or length",
            body.len()
        ))
    }
}

/// One top-level record that checked out: where it is, and its records (a chunk's, or itself).
pub(super) struct Top {
    pub start: u64,
    pub end: u64,
    opcode: u8,
    body: Vec<u8>,
    /// A chunk's records: opcode and range in `body`.
    inner: Option<Vec<(u8, Range<usize>)>>,
}

impl Top {
    /// The records to take in: a chunk's records, or the record itself.
    pub fn records(&self) -> Vec<(u8, &[u8])> {
        match &self.inner {
            Some(inner) => inner
                .iter()
                .filter_map(|(opcode, r)| Some((*opcode, self.body.get(r.clone())?)))
                .collect(),
            None => vec![(self.opcode, self.body.as_slice())],
        }
    }
}

/// What the summary at the end of a complete file says.
pub(super) struct Index {
    /// Where the data section ends (the summary, or the footer when there is none).
    data_end: u64,
    /// Channels by id (a chunk holding their definitions may be the damaged one).
    pub channels: HashMap<u16, String>,
    /// Messages per channel, from the statistics record.
    pub counts: Option<BTreeMap<u16, u64>>,
    /// Chunks in file order: offset and message times.
    chunks: Vec<(u64, u64, u64)>,
    /// Offsets where the index says a record starts (chunks, metadata, the data end), sorted.
    starts: Vec<u64>,
}

impl Index {
    /// The indexed chunks that start in `bytes`.
    fn span(&self, bytes: Range<u64>) -> ChunkSpan {
        let first = self.chunks.partition_point(|c| c.0 < bytes.start);
        let within = self.chunks[first..].iter().take_while(|c| c.0 < bytes.end);
        let (mut count, mut start_ns, mut end_ns) = (0, u64::MAX, 0);
        for c in within {
            count += 1;
            start_ns = start_ns.min(c.1);
            end_ns = end_ns.max(c.2);
        }
        ChunkSpan {
            first: first + 1,
            count,
            of: self.chunks.len(),
            start_ns: if count == 0 { 0 } else { start_ns },
            end_ns,
        }
    }
}

/// A reader at offsets, seeking only where the next read is not where the last one ended.
struct Input<R> {
    inner: R,
    at: Option<u64>,
    /// Bytes read so far.
    read: u64,
}

impl<R: Read + Seek> Input<R> {
    fn new(inner: R) -> Self {
        Input {
            inner,
            at: None,
            read: 0,
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.at != Some(offset) {
            self.inner.seek(SeekFrom::Start(offset))?;
        }
        // Unknown until the read succeeds.
        self.at = None;
        self.inner.read_exact(buf)?;
        self.at = Some(offset + buf.len() as u64);
        self.read += buf.len() as u64;
        Ok(())
    }
}

/// Reads the footer and summary at the end of a file of `len` bytes: the index, or what is
/// wrong with them.
fn read_tail<R: Read + Seek>(input: &mut Input<R>, len: u64) -> io::Result<Result<Index, String>> {
    let Some(footer_at) = len
        .checked_sub(FOOTER as u64 + MAGIC)
        .filter(|&at| at >= MAGIC)
    else {
        return Ok(Err("the file is too short to end with a footer".into()));
    };
    let mut tail = [0u8; FOOTER + MAGIC as usize];
    input.read_at(footer_at, &mut tail)?;
    let footer_len = (FOOTER - RECORD_HEADER) as u64;
    if tail[0] != op::FOOTER
        || le_u64(&tail, 1) != Some(footer_len)
        || tail.get(FOOTER..) != Some(mcap::MAGIC)
    {
        return Ok(Err(
            "the file does not end with a footer and the MCAP magic bytes".into(),
        ));
    }
    let (Some(summary_start), Some(crc)) = (le_u64(&tail, 9), le_u32(&tail, FOOTER_CRC_COVERS))
    else {
        return Ok(Err("the footer is cut short".into()));
    };
    if summary_start == 0 {
        // No summary: nothing to index, the data section runs up to the footer.
        return Ok(Ok(Index {
            data_end: footer_at,
            channels: HashMap::new(),
            counts: None,
            chunks: Vec::new(),
            starts: Vec::new(),
        }));
    }
    if !(MAGIC..=footer_at).contains(&summary_start) {
        return Ok(Err(format!(
            "the footer places the summary at byte {summary_start}, outside the file"
        )));
    }
    // Bounded by the file's length (checked above).
    let Ok(size) = usize::try_from(footer_at - summary_start) else {
        return Ok(Err(
            "the summary is larger than this machine can address".into()
        ));
    };
    let mut summary = vec![0u8; size];
    input.read_at(summary_start, &mut summary)?;
    if crc != 0 {
        let mut h = crc32fast::Hasher::new();
        h.update(&summary);
        h.update(&tail[..FOOTER_CRC_COVERS]);
        if h.finalize() != crc {
            return Ok(Err("the summary fails its CRC check".into()));
        }
    }
    Ok(index_of(&summary, summary_start))
}

/// The index in a summary section that starts at byte `summary_start`.
fn index_of(summary: &[u8], summary_start: u64) -> Result<Index, String> {
    let mut index = Index {
        data_end: summary_start,
        channels: HashMap::new(),
        counts: None,
        chunks: Vec::new(),
        starts: Vec::new(),
    };
    let in_data = |start: u64, len: u64| {
        start >= MAGIC
            && start
                .checked_add(len)
                .is_some_and(|end| end <= summary_start)
    };
    let records = split_records(summary).map_err(|e| format!("the summary is damaged: {e}"))?;
    for (opcode, r) in records {
        let body = summary.get(r).unwrap_or_default();
        match parse_record(opcode, body) {
            Err(e) => return Err(format!("a summary record is malformed: {e}")),
            Ok(Record::Channel(c)) => {
                index.channels.insert(c.id, c.topic);
            }
            Ok(Record::Statistics(s)) => index.counts = Some(s.channel_message_counts),
            Ok(Record::ChunkIndex(c)) => {
                if !in_data(c.chunk_start_offset, c.chunk_length) {
                    return Err("the summary's chunk index points outside the data section".into());
                }
                index.chunks.push((
                    c.chunk_start_offset,
                    c.message_start_time,
                    c.message_end_time,
                ));
                index.starts.push(c.chunk_start_offset);
            }
            Ok(Record::MetadataIndex(m)) => {
                if !in_data(m.offset, m.length) {
                    return Err(
                        "the summary's metadata index points outside the data section".into(),
                    );
                }
                index.starts.push(m.offset);
            }
            Ok(_) => {}
        }
    }
    index.chunks.sort_by_key(|c| c.0);
    if let Some(data_end) = summary_start.checked_sub(DATA_END).filter(|&d| d >= MAGIC) {
        index.starts.push(data_end);
    }
    index.starts.sort_unstable();
    index.starts.dedup();
    Ok(index)
}

/// The index of the file `inner` of `len` bytes, when its footer and summary are intact.
pub(super) fn read_index<R: Read + Seek>(inner: R, len: u64) -> io::Result<Option<Index>> {
    Ok(read_tail(&mut Input::new(inner), len)?.ok())
}

/// What reading one record at an offset gave.
enum Attempt {
    Good(Top),
    /// The file ends exactly here.
    End,
    /// Damaged; `framed`: where it ends all the same, when its lengths can be trusted.
    Bad {
        reason: String,
        framed: Option<u64>,
    },
}

/// Where reading goes on after damage.
enum Resume {
    At(u64),
    /// No intact record after it in the data section, which ends here.
    EndOfData(u64),
    /// The search was given up (see [`RecordStream::budget`]): nothing more is read.
    GaveUp,
}

/// The top-level records of a recording, with what was skipped ([`Damage`]).
pub(super) struct RecordStream<R> {
    input: Input<R>,
    len: u64,
    /// Offset of the next record.
    pos: u64,
    /// The header of the record at this offset, read with the record before it.
    ahead: Option<(u64, [u8; RECORD_HEADER])>,
    /// CRC of the file's bytes up to the offset, while they have all been read in order.
    data_crc: Option<(u64, crc32fast::Hasher)>,
    /// The footer and summary, once read (on the first damage, and at the end of the data).
    tail: Option<Result<Index, String>>,
    damage: Vec<Damage>,
    /// Latest message time read so far, ns (for the damage reports).
    latest_ns: Option<u64>,
    /// Bytes the reading may take in all before the search for intact records gives up. Reading
    /// in order takes each byte once; trying candidate records can take some again, and a
    /// crafted file could make that quadratic.
    budget: u64,
    done: bool,
}

impl<R: Read + Seek> RecordStream<R> {
    /// `None`: `inner` does not start with the MCAP magic bytes.
    pub fn open(inner: R) -> io::Result<Option<Self>> {
        let mut input = Input::new(inner);
        let len = input.inner.seek(SeekFrom::End(0))?;
        if len < MAGIC {
            return Ok(None);
        }
        let mut magic = [0u8; MAGIC as usize];
        input.read_at(0, &mut magic)?;
        if magic != mcap::MAGIC {
            return Ok(None);
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&magic);
        Ok(Some(RecordStream {
            input,
            len,
            pos: MAGIC,
            ahead: None,
            data_crc: Some((MAGIC, crc)),
            tail: None,
            damage: Vec::new(),
            latest_ns: None,
            budget: len.saturating_mul(4).saturating_add(1 << 20),
            done: false,
        }))
    }

    /// What was skipped so far.
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// Channels from the summary, once it was read and found intact.
    pub fn summary_channels(&self) -> Option<&HashMap<u16, String>> {
        Some(&self.tail.as_ref()?.as_ref().ok()?.channels)
    }

    /// The next record of the data section that checks out; `None` at its end.
    pub fn next(&mut self) -> io::Result<Option<Top>> {
        while !self.done {
            let at = self.pos;
            if self.index_data_end().is_some_and(|end| at >= end) {
                // Reached through the index: what follows is the summary, not data.
                self.done = true;
                break;
            }
            match self.attempt(at)? {
                Attempt::End => {
                    self.done = true;
                    // Unless damage found before already runs to the end.
                    if self.damage.last().is_none_or(|d| d.end < self.len) {
                        self.push(
                            at,
                            at,
                            "the file ends here, without the end of its data section, its summary \
                             and footer: cut off (power loss, kill or full disk?)"
                                .into(),
                        )?;
                    }
                }
                Attempt::Bad { reason, framed } => {
                    let resume = match framed {
                        Some(end) if self.plausible_at(end)? => Resume::At(end),
                        _ => self.next_intact(at)?,
                    };
                    let (end, reason) = match resume {
                        Resume::At(p) => {
                            self.pos = p;
                            (p, reason)
                        }
                        Resume::EndOfData(end) => {
                            self.done = true;
                            (end, reason)
                        }
                        Resume::GaveUp => {
                            self.done = true;
                            let gave_up = "; the search for intact records after it stopped \
                                           (too much damage to search through)";
                            (self.len, reason + gave_up)
                        }
                    };
                    self.push(at, end, reason)?;
                }
                Attempt::Good(top) => {
                    self.pos = top.end;
                    if top.opcode == op::DATA_END {
                        self.end_of_data(&top)?;
                    } else {
                        self.hash(&top);
                        return Ok(Some(top));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Reports a record that checked out but whose content did not (a malformed message).
    pub fn report(&mut self, top: &Top, reason: String) -> io::Result<()> {
        self.push(top.start, top.end, reason)
    }

    /// The data times of the messages of the record just taken in, ns.
    pub fn read_times(&mut self, first_ns: u64, last_ns: u64) {
        for d in self.damage.iter_mut().rev() {
            if d.before_ns.is_some() {
                break;
            }
            d.before_ns = Some(first_ns);
        }
        self.latest_ns = Some(self.latest_ns.map_or(last_ns, |t| t.max(last_ns)));
    }

    fn push(&mut self, start: u64, end: u64, reason: String) -> io::Result<()> {
        self.data_crc = None;
        let chunks = self.index()?.map(|i| i.span(start..end));
        self.damage.push(Damage {
            start,
            end,
            reason,
            chunks,
            after_ns: self.latest_ns,
            before_ns: None,
        });
        Ok(())
    }

    /// Where the data section ends by the index, when it has been read and is intact.
    fn index_data_end(&self) -> Option<u64> {
        Some(self.tail.as_ref()?.as_ref().ok()?.data_end)
    }

    /// The file's index, read on first use; `None` when its footer or summary is damaged.
    fn index(&mut self) -> io::Result<Option<&Index>> {
        if self.tail.is_none() {
            self.tail = Some(read_tail(&mut self.input, self.len)?);
        }
        Ok(self.tail.as_ref().and_then(|t| t.as_ref().ok()))
    }

    /// Adds a record read in order to the data section's CRC.
    fn hash(&mut self, top: &Top) {
        match &mut self.data_crc {
            Some((upto, crc)) if *upto == top.start => {
                crc.update(&[top.opcode]);
                crc.update(&(top.body.len() as u64).to_le_bytes());
                crc.update(&top.body);
                *upto = top.end;
            }
            _ => self.data_crc = None,
        }
    }

    /// The data section ended with its data-end record `top`: checks its CRC and the summary
    /// and footer after it.
    fn end_of_data(&mut self, top: &Top) -> io::Result<()> {
        self.done = true;
        let saved = le_u32(&top.body, 0).unwrap_or(0);
        if let Some((upto, crc)) = self.data_crc.take() {
            if saved != 0 && upto == top.start && crc.finalize() != saved {
                self.push(
                    top.start,
                    top.start,
                    "the data section fails its CRC check though every chunk passes its own: a \
                     damaged byte in a chunk header, a message index or the metadata (nothing \
                     was skipped; the metadata may be wrong)"
                        .into(),
                )?;
            }
        }
        if self.index()?.is_none() {
            let reason = match &self.tail {
                Some(Err(e)) => e.clone(),
                _ => String::new(),
            };
            self.push(
                top.end,
                self.len,
                format!(
                    "the summary and footer are damaged ({reason}): no index and no statistics"
                ),
            )?;
        }
        Ok(())
    }

    /// The record header at `at`, from the read before when it fetched it.
    fn header(&mut self, at: u64) -> io::Result<[u8; RECORD_HEADER]> {
        if let Some((_, header)) = self.ahead.filter(|(p, _)| *p == at) {
            return Ok(header);
        }
        let mut header = [0u8; RECORD_HEADER];
        self.input.read_at(at, &mut header)?;
        Ok(header)
    }

    /// Whether a record can start at `at`: a known opcode and a length the file can hold. A
    /// file that ends there, or inside the header, counts (the reading of it will say so).
    fn plausible_at(&mut self, at: u64) -> io::Result<bool> {
        if self.len - at < RECORD_HEADER as u64 {
            return Ok(true);
        }
        let header = self.header(at)?;
        Ok(self.plausible(&header))
    }

    fn plausible(&self, header: &[u8; RECORD_HEADER]) -> bool {
        (op::HEADER..=op::DATA_END).contains(&header[0])
            && le_u64(header, 1).is_some_and(|len| len <= self.len)
    }

    /// Reads and checks the record at `at` (`at` ≤ the file's length).
    fn attempt(&mut self, at: u64) -> io::Result<Attempt> {
        let left = self.len - at;
        if left == 0 {
            return Ok(Attempt::End);
        }
        if left < RECORD_HEADER as u64 {
            return Ok(Attempt::Bad {
                reason: format!(
                    "the file ends inside a record header ({left} bytes): cut off (power loss, \
                     kill or full disk?)"
                ),
                framed: None,
            });
        }
        let header = self.header(at)?;
        let opcode = header[0];
        let len = le_u64(&header, 1).unwrap_or(u64::MAX);
        let room = left - RECORD_HEADER as u64;
        if !(op::HEADER..=op::DATA_END).contains(&opcode) {
            return Ok(Attempt::Bad {
                reason: format!("no record starts here (opcode {opcode:#04x})"),
                framed: None,
            });
        }
        if len > room {
            return Ok(Attempt::Bad {
                reason: format!(
                    "a record of {len} bytes with {room} left in the file: cut off (power loss, \
                     kill or full disk?) or a damaged length"
                ),
                framed: None,
            });
        }
        let (Ok(body_len), end) = (usize::try_from(len), at + RECORD_HEADER as u64 + len) else {
            return Ok(Attempt::Bad {
                reason: format!("a record of {len} bytes, more than this machine can address"),
                framed: None,
            });
        };
        // The body and the next record's header in one read: the header shows whether this
        // record's length leads to another record. Both bounded by the file's length.
        let next = (self.len - end).min(RECORD_HEADER as u64) as usize;
        let mut body = vec![0u8; body_len + next];
        self.input.read_at(at + RECORD_HEADER as u64, &mut body)?;
        let next_header: Option<[u8; RECORD_HEADER]> = body.split_off(body_len).try_into().ok();
        if let Some(h) = next_header {
            self.ahead = Some((end, h));
        }
        let inner = if opcode == op::CHUNK {
            match check_chunk(&body) {
                Ok(inner) => Some(inner),
                Err(f) => {
                    return Ok(Attempt::Bad {
                        reason: format!("a chunk: {}", f.reason),
                        framed: f.framed.then_some(end),
                    })
                }
            }
        } else {
            // A record's length is vouched for by what it holds where its kind allows, else by
            // a plausible record after it.
            let leads_on = next_header.is_none_or(|h| self.plausible(&h));
            let fault = if opcode == op::DATA_END {
                (len != DATA_END - RECORD_HEADER as u64).then(|| {
                    let reason = format!("a data-end record of {len} bytes instead of 4");
                    (reason, None)
                })
            } else if !DATA_SECTION.contains(&opcode) {
                let reason = format!(
                    "a record with opcode {opcode:#04x}, which has no place in the data section: \
                     a damaged opcode"
                );
                Some((reason, None))
            } else {
                match content(opcode, &body) {
                    Content::Exact => None,
                    Content::Unverified if leads_on => None,
                    Content::Unverified => Some((
                        format!(
                            "a record (opcode {opcode:#04x}) whose length ({len} bytes) leads to \
                             no record after it: a damaged length"
                        ),
                        None,
                    )),
                    // Where the next record follows, the damage is inside this one.
                    Content::Damaged(reason) => Some((reason, leads_on.then_some(end))),
                }
            };
            if let Some((reason, framed)) = fault {
                return Ok(Attempt::Bad { reason, framed });
            }
            None
        };
        Ok(Attempt::Good(Top {
            start: at,
            end,
            opcode,
            body,
            inner,
        }))
    }

    /// Where reading goes on after damage at `at` whose extent is unknown: the next record the
    /// index places after it, else the next chunk that checks out.
    fn next_intact(&mut self, at: u64) -> io::Result<Resume> {
        if self.input.read > self.budget {
            return Ok(Resume::GaveUp);
        }
        if let Some(index) = self.index()? {
            let next = index.starts.iter().find(|&&s| s > at);
            return Ok(
                next.map_or(Resume::EndOfData(index.data_end.max(at)), |&s| {
                    Resume::At(s)
                }),
            );
        }
        Ok(match self.scan(at + 1)? {
            Some(found) => Resume::At(found),
            None if self.input.read > self.budget => Resume::GaveUp,
            None => Resume::EndOfData(self.len),
        })
    }

    /// The offset of the first chunk at or after `from` that checks out.
    fn scan(&mut self, mut from: u64) -> io::Result<Option<u64>> {
        let mut window = Vec::new();
        let mut size = SCAN_FIRST_WINDOW;
        while from < self.len && self.input.read <= self.budget {
            let n = (self.len - from).min(size as u64) as usize;
            size = (size * 2).min(SCAN_WINDOW);
            window.resize(n, 0);
            self.input.read_at(from, &mut window)?;
            let last_window = from + n as u64 == self.len;
            let mut next = from + n as u64;
            for (i, _) in window.iter().enumerate().filter(|(_, &b)| b == op::CHUNK) {
                let Some(head) = window.get(i..i + SCAN_HEADER) else {
                    if last_window {
                        break; // too short to be a chunk
                    }
                    // Read it whole: the next window starts here (i > 0, as the window is
                    // longer than a header, so the scan moves on).
                    next = from + i as u64;
                    break;
                };
                let candidate = from + i as u64;
                if self.input.read > self.budget {
                    return Ok(None);
                }
                if self.looks_like_chunk(candidate, head) {
                    if let Attempt::Good(_) = self.attempt(candidate)? {
                        return Ok(Some(candidate));
                    }
                }
            }
            from = next;
        }
        Ok(None)
    }

    /// A quick look at a candidate chunk header `head` at `at`: uncompressed, lengths that
    /// agree and fit in the file (false positives are rare; [`Self::attempt`] has the last word).
    fn looks_like_chunk(&self, at: u64, head: &[u8]) -> bool {
        let fixed = RECORD_HEADER + CHUNK_FIXED;
        let (Some(len), Some(uncompressed), Some(name_len), Some(size)) = (
            le_u64(head, 1),
            le_u64(head, RECORD_HEADER + 16),
            le_u32(head, RECORD_HEADER + 28),
            le_u64(head, fixed),
        ) else {
            return false;
        };
        name_len == 0
            && uncompressed == size
            && size.checked_add((CHUNK_FIXED + 8) as u64) == Some(len)
            && len <= self.len - at - RECORD_HEADER as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attachment body: times, name, media type, data, CRC (0: not checked).
    fn attachment(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        for s in [name, "application/octet-stream"] {
            b.extend((s.len() as u32).to_le_bytes());
            b.extend(s.as_bytes());
        }
        b.extend((data.len() as u64).to_le_bytes());
        b.extend(data);
        b.extend(0u32.to_le_bytes());
        b
    }

    #[test]
    fn an_attachment_shorter_than_its_fields_is_malformed_not_a_panic() {
        let whole = attachment("calibration.toml", b"abc");
        assert!(matches!(
            parse_record(op::ATTACHMENT, &whole),
            Ok(Record::Attachment { .. })
        ));
        // Every cut inside the fixed fields and the CRC (the data length then claims more).
        for cut in 0..whole.len() {
            assert!(
                parse_record(op::ATTACHMENT, &whole[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // A name length beyond the body.
        let mut huge = whole.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_record(op::ATTACHMENT, &huge).is_err());
    }
}
