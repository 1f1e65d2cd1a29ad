//! Reading recordings back: frames (JPEG + what was decided), CAN in/out and the metadata,
//! streamed front to back ([`FrameReader`]: one chunk in memory at a time) or collected
//! ([`Recording`]).
//!
//! Damaged files are read up to their last complete chunk (a recording cut by a crash, power
//! loss or a full disk), with a note saying so; foreign, empty or inconsistent files are errors
//! that name the file and what to do. Nothing here panics on any input (fuzzed).

use super::schema::{self, CanMsg, DecisionMsg, DetectionsMsg, Outcome, TracksMsg};
use adas_core::perception::BevProjection;
use adas_types::CanFrame;
use mcap::records::Record;
use mcap::sans_io::linear_reader::{LinearReadEvent, LinearReader, LinearReaderOptions};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("recording {path}: cannot read it: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording {path}: not an MCAP file (it does not start with the MCAP magic bytes); pass a recording made by `adasd run` with [record], `adasd replay` or `adasd record import`")]
    NotMcap { path: PathBuf },
    #[error("recording {path}: damaged before any frame could be read ({detail}); the file is unusable — record again or use a copy")]
    Unreadable { path: PathBuf, detail: String },
    #[error("recording {path}: no messages on {topic}: {hint}")]
    MissingChannel {
        path: PathBuf,
        topic: &'static str,
        hint: &'static str,
    },
    #[error("recording {path}: {topic} message {index} (t = {t_ns} ns) comes before the previous one (t = {prev_ns} ns): timestamps out of order; re-import the source with times that increase (`adasd record import`)")]
    OutOfOrder {
        path: PathBuf,
        topic: String,
        index: usize,
        t_ns: u64,
        prev_ns: u64,
    },
    #[error("recording {path}: {topic} message {index} (t = {t_ns} ns) is malformed: {detail}; the recording was made by another version or is corrupt")]
    BadMessage {
        path: PathBuf,
        topic: String,
        index: usize,
        t_ns: u64,
        detail: String,
    },
}

/// One frame time of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFrame {
    pub seq: u64,
    pub t_ns: u64,
    /// The camera image (JPEG), when recorded (and asked for).
    pub jpeg: Option<Vec<u8>>,
    /// What was decided, when recorded (not in imported recordings).
    pub outcome: Option<Outcome>,
}

/// A recording in memory (compare, render, tests). Replays stream instead: [`FrameReader`].
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub path: PathBuf,
    /// The `adas` metadata record (config, hashes, …).
    pub metadata: BTreeMap<String, String>,
    /// In time order.
    pub frames: Vec<RecordedFrame>,
    pub can_rx: Vec<(u64, CanFrame)>,
    pub can_tx: Vec<(u64, CanFrame)>,
    /// Topics that carried at least one message.
    pub topics: BTreeMap<String, usize>,
    /// Set when the file ended early or a chunk was damaged: what was lost.
    pub damage: Option<String>,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Recording, ReadError> {
        FrameReader::open(path, Images::Keep)?.collect_all()
    }

    /// Everything but the camera images (compare: decisions and detections only).
    pub fn open_without_images(path: &Path) -> Result<Recording, ReadError> {
        FrameReader::open(path, Images::Skip)?.collect_all()
    }

    pub fn has_camera(&self) -> bool {
        self.frames.iter().any(|f| f.jpeg.is_some())
    }

    pub fn has_outcomes(&self) -> bool {
        self.frames.iter().any(|f| f.outcome.is_some())
    }

    /// Fails unless detections and decisions are present (object-list replay, compare, render).
    pub fn require_outcomes(&self) -> Result<(), ReadError> {
        if self.has_outcomes() {
            Ok(())
        } else {
            Err(missing_outcomes(&self.path))
        }
    }

    /// Metadata value or "unknown".
    pub fn meta(&self, key: &str) -> &str {
        self.metadata.get(key).map_or("unknown", |s| s.as_str())
    }
}

fn missing_camera(path: &Path) -> ReadError {
    ReadError::MissingChannel {
        path: path.to_path_buf(),
        topic: schema::CAMERA,
        hint:
            "it holds no camera images; replay it with --recorded-detections, or record with images",
    }
}

fn missing_outcomes(path: &Path) -> ReadError {
    ReadError::MissingChannel {
        path: path.to_path_buf(),
        topic: schema::DECISION,
        hint: "it holds no detections/decisions (an imported recording?); replay it first: `adasd replay FILE --out DIR`",
    }
}

/// CAN frames with their times, ns.
pub type TimedCan = Vec<(u64, CanFrame)>;

/// Whether a reader keeps the camera images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Images {
    Keep,
    Skip,
}

#[derive(Default)]
struct Partial {
    seq: Option<u64>,
    /// A camera image was recorded at this time (kept in `jpeg` unless images are skipped).
    camera: bool,
    jpeg: Option<Vec<u8>>,
    detections: Option<DetectionsMsg>,
    bev: Option<BevProjection>,
    tracks: Option<TracksMsg>,
    decision: Option<DecisionMsg>,
}

/// What has been read but not yet handed out: frames by time (a frame is complete once a later
/// frame time has been seen), CAN frames, metadata.
struct Collector {
    path: PathBuf,
    images: Images,
    channels: HashMap<u16, String>,
    metadata: BTreeMap<String, String>,
    topics: BTreeMap<String, usize>,
    pending: BTreeMap<u64, Partial>,
    can_rx: Vec<(u64, CanFrame)>,
    can_tx: Vec<(u64, CanFrame)>,
    /// Latest frame time seen.
    frontier: Option<u64>,
    /// Time of the last frame handed out: later messages for it or before it are out of order.
    emitted: Option<u64>,
    last_camera_t: Option<u64>,
    camera_count: usize,
    frames_out: usize,
    chunk_no: usize,
}

impl Collector {
    fn bad(&self, topic: &str, index: usize, t_ns: u64, detail: impl ToString) -> ReadError {
        ReadError::BadMessage {
            path: self.path.clone(),
            topic: topic.to_string(),
            index,
            t_ns,
            detail: detail.to_string(),
        }
    }

    /// The partial frame at `t_ns`, refusing times before a frame already handed out.
    fn frame_at(
        &mut self,
        topic: &str,
        index: usize,
        t_ns: u64,
    ) -> Result<&mut Partial, ReadError> {
        if let Some(prev) = self.emitted.filter(|&e| t_ns <= e) {
            return Err(ReadError::OutOfOrder {
                path: self.path.clone(),
                topic: topic.to_string(),
                index,
                t_ns,
                prev_ns: prev,
            });
        }
        self.frontier = Some(self.frontier.map_or(t_ns, |f| f.max(t_ns)));
        Ok(self.pending.entry(t_ns).or_default())
    }

    fn message(&mut self, channel_id: u16, t_ns: u64, data: &[u8]) -> Result<(), ReadError> {
        let Some(topic) = self.channels.get(&channel_id).cloned() else {
            return Ok(()); // unknown channel: a foreign topic, ignored
        };
        let index = {
            let n = self.topics.entry(topic.clone()).or_default();
            *n += 1;
            *n - 1
        };
        fn json<T: serde::de::DeserializeOwned>(
            this: &Collector,
            topic: &str,
            index: usize,
            t_ns: u64,
            data: &[u8],
        ) -> Result<T, ReadError> {
            serde_json::from_slice(data).map_err(|e| this.bad(topic, index, t_ns, e))
        }
        match topic.as_str() {
            schema::CAMERA => {
                if let Some(prev) = self.last_camera_t {
                    if t_ns <= prev {
                        return Err(ReadError::OutOfOrder {
                            path: self.path.clone(),
                            topic,
                            index,
                            t_ns,
                            prev_ns: prev,
                        });
                    }
                }
                self.last_camera_t = Some(t_ns);
                let image = schema::decode_compressed_image(data)
                    .map_err(|e| self.bad(&topic, index, t_ns, e))?;
                let seq = self.camera_count as u64;
                self.camera_count += 1;
                let keep = self.images == Images::Keep;
                let p = self.frame_at(&topic, index, t_ns)?;
                p.camera = true;
                if keep {
                    p.jpeg = Some(image.data);
                }
                p.seq.get_or_insert(seq);
            }
            schema::DETECTIONS => {
                let m: DetectionsMsg = json(self, &topic, index, t_ns, data)?;
                let p = self.frame_at(&topic, index, t_ns)?;
                p.seq = Some(m.seq);
                p.detections = Some(m);
            }
            schema::BEV => {
                let m: BevProjection = json(self, &topic, index, t_ns, data)?;
                self.frame_at(&topic, index, t_ns)?.bev = Some(m);
            }
            schema::TRACKS => {
                let m: TracksMsg = json(self, &topic, index, t_ns, data)?;
                self.frame_at(&topic, index, t_ns)?.tracks = Some(m);
            }
            schema::DECISION => {
                let m: DecisionMsg = json(self, &topic, index, t_ns, data)?;
                self.frame_at(&topic, index, t_ns)?.decision = Some(m);
            }
            schema::CAN_RX | schema::CAN_TX => {
                let m: CanMsg = json(self, &topic, index, t_ns, data)?;
                let f = m
                    .to_frame()
                    .map_err(|why| self.bad(&topic, index, t_ns, why))?;
                if topic == schema::CAN_RX {
                    self.can_rx.push((t_ns, f));
                } else {
                    self.can_tx.push((t_ns, f));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn record(&mut self, record: Record<'_>) -> Result<(), ReadError> {
        match record {
            Record::Channel(c) => {
                self.channels.insert(c.id, c.topic);
            }
            Record::Message { header, data } => {
                self.message(header.channel_id, header.log_time, &data)?;
            }
            Record::Metadata(m) if m.name == schema::METADATA => {
                self.metadata.extend(m.metadata);
            }
            Record::Chunk { header, data } => {
                self.chunk_no += 1;
                let chunk_no = self.chunk_no;
                let unreadable = |detail: String| ReadError::Unreadable {
                    path: self.path.clone(),
                    detail,
                };
                if header.compression.is_empty() && header.uncompressed_crc != 0 {
                    let crc = crc32fast::hash(&data);
                    if crc != header.uncompressed_crc {
                        return Err(unreadable(format!(
                            "chunk {chunk_no} (t = {} ns …) fails its CRC check",
                            header.message_start_time
                        )));
                    }
                }
                let inner = mcap::read::ChunkReader::new(header, &data)
                    .map_err(|e| unreadable(format!("chunk {chunk_no}: {e}")))?;
                // Parse the whole chunk first, so a damaged chunk adds nothing.
                let mut records = Vec::new();
                for r in inner {
                    records.push(r.map_err(|e| unreadable(format!("chunk {chunk_no}: {e}")))?);
                }
                for r in records {
                    self.record(r)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The pending frame at the earliest time, if it is complete (`all`: the file has ended).
    fn next_complete(&mut self, all: bool) -> Option<RecordedFrame> {
        loop {
            let (&t_ns, _) = self.pending.first_key_value()?;
            if !all && self.frontier.is_none_or(|f| t_ns >= f) {
                return None;
            }
            let p = self.pending.remove(&t_ns)?;
            self.emitted = Some(t_ns);
            let outcome = match (p.detections, p.bev, p.tracks, p.decision) {
                (Some(detections), Some(bev), Some(tracks), Some(decision)) => Some(Outcome {
                    detections,
                    bev,
                    tracks: tracks.tracks,
                    decision,
                }),
                _ => None,
            };
            if !p.camera && outcome.is_none() {
                continue;
            }
            let frame = RecordedFrame {
                seq: p.seq.unwrap_or(self.frames_out as u64),
                t_ns,
                jpeg: p.jpeg,
                outcome,
            };
            self.frames_out += 1;
            return Some(frame);
        }
    }
}

/// Size of one read from the file.
const READ_BLOCK: usize = 256 * 1024;

/// Answers the MCAP reader's request for `need` more bytes with one read from `input` (0 bytes
/// read: the end of the file).
fn feed(linear: &mut LinearReader, input: &mut impl Read, need: usize) -> std::io::Result<()> {
    let buf = linear.insert(need.clamp(1, READ_BLOCK));
    let n = loop {
        match input.read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    linear.notify_read(n);
    Ok(())
}

/// Reads a recording front to back, one frame at a time: only the chunk being read and the
/// frames not yet complete are in memory, so hours of driving replay in constant memory.
pub struct FrameReader<R: Read> {
    input: R,
    linear: LinearReader,
    c: Collector,
    /// The next frame, read ahead (the first one is read by `new`).
    ahead: Option<RecordedFrame>,
    ended: bool,
    saw_footer: bool,
    damage: Option<String>,
}

impl FrameReader<BufReader<File>> {
    /// Opens `path` and reads up to its first frame (errors: not MCAP, damaged before any
    /// frame, no frames at all).
    pub fn open(path: &Path, images: Images) -> Result<Self, ReadError> {
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        FrameReader::new(
            BufReader::with_capacity(READ_BLOCK, file),
            path,
            usize::try_from(len).unwrap_or(usize::MAX),
            images,
        )
    }
}

impl<R: Read> FrameReader<R> {
    /// Reads a recording of `len` bytes from `input` (`path` only names it in messages).
    pub fn new(mut input: R, path: &Path, len: usize, images: Images) -> Result<Self, ReadError> {
        let mut magic = [0u8; 8];
        match input.read_exact(&mut magic) {
            Ok(()) if magic == *mcap::MAGIC => {}
            Ok(()) => {
                return Err(ReadError::NotMcap {
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ReadError::NotMcap {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(ReadError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        let options = LinearReaderOptions::default()
            .with_skip_start_magic(true)
            .with_skip_end_magic(true)
            .with_emit_chunks(true)
            // No record is longer than the file: a damaged length field cannot make the reader
            // allocate more than that.
            .with_record_length_limit(len);
        let mut reader = FrameReader {
            input,
            linear: LinearReader::new_with_options(options),
            c: Collector {
                path: path.to_path_buf(),
                images,
                channels: HashMap::new(),
                metadata: BTreeMap::new(),
                topics: BTreeMap::new(),
                pending: BTreeMap::new(),
                can_rx: Vec::new(),
                can_tx: Vec::new(),
                frontier: None,
                emitted: None,
                last_camera_t: None,
                camera_count: 0,
                frames_out: 0,
                chunk_no: 0,
            },
            ahead: None,
            ended: false,
            saw_footer: false,
            damage: None,
        };
        reader.ahead = reader.read_frame()?;
        if reader.ahead.is_none() {
            return Err(match reader.damage.take() {
                Some(detail) => ReadError::Unreadable {
                    path: path.to_path_buf(),
                    detail,
                },
                None => ReadError::MissingChannel {
                    path: path.to_path_buf(),
                    topic: schema::CAMERA,
                    hint: "no frames at all (neither camera images nor decisions): not an adasd recording",
                },
            });
        }
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.c.path
    }

    /// The `adas` metadata record (written before the first frame).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.c.metadata
    }

    /// The next frame without taking it.
    pub fn peek(&self) -> Option<&RecordedFrame> {
        self.ahead.as_ref()
    }

    /// Fails unless the first frame has a camera image (what a replay with the detector needs;
    /// a recording has images in every frame or in none).
    pub fn require_camera(&self) -> Result<(), ReadError> {
        match self.peek() {
            Some(f) if f.jpeg.is_some() => Ok(()),
            _ => Err(missing_camera(&self.c.path)),
        }
    }

    /// Fails unless the first frame has detections and a decision (object-list replay).
    pub fn require_outcomes(&self) -> Result<(), ReadError> {
        match self.peek() {
            Some(f) if f.outcome.is_some() => Ok(()),
            _ => Err(missing_outcomes(&self.c.path)),
        }
    }

    /// CAN frames read so far with times up to `t_ns`, received and sent, in time order.
    pub fn take_can_until(&mut self, t_ns: u64) -> (TimedCan, TimedCan) {
        let split = |v: &mut Vec<(u64, CanFrame)>| {
            v.sort_by_key(|(t, _)| *t);
            let n = v.partition_point(|(t, _)| *t <= t_ns);
            v.drain(..n).collect()
        };
        (split(&mut self.c.can_rx), split(&mut self.c.can_tx))
    }

    /// Topics and their message counts so far.
    pub fn topics(&self) -> &BTreeMap<String, usize> {
        &self.c.topics
    }

    /// What was lost, once the reader has come to a damaged part (see [`Recording::damage`]).
    pub fn damage(&self) -> Option<String> {
        if self.ahead.is_some() && !self.ended {
            return None;
        }
        let detail = self
            .damage
            .clone()
            .or_else(|| (!self.saw_footer).then(|| "the file ends without a footer".to_string()))?;
        Some(format!(
            "{detail}: read up to the last complete chunk, {} frames up to t = {:.3} s (interrupted recording: power loss, kill or full disk?)",
            self.c.frames_out,
            self.c.emitted.unwrap_or(0) as f64 / 1e9
        ))
    }

    /// The next frame in time order; an error ends the recording (out of order, malformed).
    pub fn next_frame(&mut self) -> Option<Result<RecordedFrame, ReadError>> {
        let next = match self.read_frame() {
            Ok(f) => f,
            Err(e) => {
                self.ended = true;
                return Some(Err(e));
            }
        };
        std::mem::replace(&mut self.ahead, next).map(Ok)
    }

    /// Reads until a frame is complete; `None` at the end (or the damaged part).
    fn read_frame(&mut self) -> Result<Option<RecordedFrame>, ReadError> {
        loop {
            if let Some(f) = self.c.next_complete(self.ended) {
                return Ok(Some(f));
            }
            if self.ended {
                return Ok(None);
            }
            self.read_record()?;
        }
    }

    /// Reads and takes in one top-level record (a chunk: one frame); sets `ended` at the end of
    /// the file or at the first damaged part.
    fn read_record(&mut self) -> Result<(), ReadError> {
        loop {
            let event = match self.linear.next_event() {
                None => {
                    self.ended = true;
                    return Ok(());
                }
                Some(Err(e)) => {
                    self.damage = Some(e.to_string());
                    self.ended = true;
                    return Ok(());
                }
                Some(Ok(event)) => event,
            };
            match event {
                LinearReadEvent::ReadRequest(need) => {
                    feed(&mut self.linear, &mut self.input, need).map_err(|source| {
                        ReadError::Io {
                            path: self.c.path.clone(),
                            source,
                        }
                    })?;
                }
                LinearReadEvent::Record { opcode, data } => {
                    let result = match mcap::parse_record(opcode, data) {
                        Ok(Record::Footer(_)) => {
                            self.saw_footer = true;
                            Ok(())
                        }
                        Ok(r) => self.c.record(r),
                        Err(e) => Err(ReadError::Unreadable {
                            path: self.c.path.clone(),
                            detail: e.to_string(),
                        }),
                    };
                    match result {
                        Ok(()) => {}
                        Err(ReadError::Unreadable { detail, .. }) => {
                            self.damage = Some(detail);
                            self.ended = true;
                        }
                        Err(e) => return Err(e),
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Reads the rest into memory.
    pub fn collect_all(mut self) -> Result<Recording, ReadError> {
        let mut frames = Vec::new();
        while let Some(f) = self.next_frame() {
            frames.push(f?);
        }
        let (can_rx, can_tx) = self.take_can_until(u64::MAX);
        Ok(Recording {
            damage: self.damage(),
            path: self.c.path,
            metadata: self.c.metadata,
            frames,
            can_rx,
            can_tx,
            topics: self.c.topics,
        })
    }
}

/// Parses a recording from its bytes (`path` only names it in messages).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Recording, ReadError> {
    FrameReader::new(bytes, path, bytes.len(), Images::Keep)?.collect_all()
}

/// Messages per topic from the summary section of a complete file (its Statistics record), read
/// from the end of the file without touching the data; `None` for files cut short (no footer or
/// summary) or without statistics.
pub fn summary_counts(path: &Path) -> Option<BTreeMap<String, u64>> {
    use std::io::{Seek, SeekFrom};
    // Footer record (opcode, length, summary start, summary offset start, CRC) + end magic.
    const FOOTER: usize = 1 + 8 + 8 + 8 + 4 + 8;
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let footer_at = len.checked_sub(FOOTER as u64)?;
    file.seek(SeekFrom::Start(footer_at)).ok()?;
    let mut footer = [0u8; FOOTER];
    file.read_exact(&mut footer).ok()?;
    if footer[0] != mcap::records::op::FOOTER || footer[FOOTER - 8..] != *mcap::MAGIC {
        return None;
    }
    let summary_start = u64::from_le_bytes(footer[9..17].try_into().ok()?);
    if summary_start < mcap::MAGIC.len() as u64 || summary_start >= footer_at {
        return None;
    }
    let mut summary = vec![0u8; usize::try_from(footer_at - summary_start).ok()?];
    file.seek(SeekFrom::Start(summary_start)).ok()?;
    file.read_exact(&mut summary).ok()?;
    let (mut topics, mut counts) = (HashMap::new(), None);
    let mut rest = summary.as_slice();
    while rest.len() >= 9 {
        let opcode = rest[0];
        let body_len = usize::try_from(u64::from_le_bytes(rest[1..9].try_into().ok()?)).ok()?;
        let body = rest.get(9..9usize.checked_add(body_len)?)?;
        match mcap::parse_record(opcode, body).ok()? {
            Record::Channel(c) => {
                topics.insert(c.id, c.topic);
            }
            Record::Statistics(st) => counts = Some(st.channel_message_counts),
            _ => {}
        }
        rest = &rest[9 + body_len..];
    }
    Some(
        counts?
            .into_iter()
            .filter_map(|(id, n)| Some((topics.get(&id)?.clone(), n)))
            .collect(),
    )
}

/// Whether the recording holds CAN input (`/can/rx`): decides whether a replay takes its ego
/// speed from the recorded CAN or from the config. From the summary's statistics when the file is
/// complete; otherwise read up to the first such message (to the end when there is none),
/// decoding no payloads.
pub fn has_can_input(path: &Path) -> Result<bool, ReadError> {
    if let Some(counts) = summary_counts(path) {
        return Ok(counts.get(schema::CAN_RX).is_some_and(|&n| n > 0));
    }
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::with_capacity(READ_BLOCK, File::open(path).map_err(io)?);
    let mut linear = LinearReader::new_with_options(
        LinearReaderOptions::default()
            .with_skip_end_magic(true)
            .with_record_length_limit(
                usize::try_from(file.get_ref().metadata().map_err(io)?.len()).unwrap_or(usize::MAX),
            ),
    );
    let mut rx_channels = Vec::new();
    while let Some(event) = linear.next_event() {
        match event {
            Ok(LinearReadEvent::ReadRequest(need)) => {
                feed(&mut linear, &mut file, need).map_err(io)?
            }
            Ok(LinearReadEvent::Record { opcode, data }) => {
                match mcap::parse_record(opcode, data) {
                    Ok(Record::Channel(c)) if c.topic == schema::CAN_RX => rx_channels.push(c.id),
                    Ok(Record::Message { header, .. })
                        if rx_channels.contains(&header.channel_id) =>
                    {
                        return Ok(true)
                    }
                    Ok(_) => {}
                    Err(_) => return Ok(false),
                }
            }
            // Damaged from here on: what was read had none.
            Err(_) => return Ok(false),
        }
    }
    Ok(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::{encode_frame, FrameRecord};
    use crate::writer::McapFile;
    use proptest::prelude::*;

    /// A small valid recording: 3 frames with a fake JPEG and CAN input.
    fn sample() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.mcap");
        let mut w = McapFile::create(&path, &BTreeMap::new(), 0).unwrap();
        let can = [(
            5u64,
            CanFrame {
                id: 0x120,
                len: 2,
                data: [1, 2, 0, 0, 0, 0, 0, 0],
            },
        )];
        for i in 0..3u64 {
            let m = encode_frame(&FrameRecord {
                seq: i,
                t_ns: i * 100_000_000 + 10,
                jpeg: Some(&[0xFF, 0xD8, i as u8, 0xFF, 0xD9]),
                outcome: None,
                can_rx: &can,
                can_tx: &[],
            })
            .unwrap();
            w.write_frame(&m).unwrap();
        }
        w.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn reads_back_what_was_written() {
        let r = parse(&sample(), Path::new("s.mcap")).unwrap();
        assert!(r.damage.is_none());
        assert_eq!(r.frames.len(), 3);
        assert_eq!(
            r.frames[2].jpeg.as_deref(),
            Some(&[0xFF, 0xD8, 2, 0xFF, 0xD9][..])
        );
        assert_eq!(r.can_rx.len(), 3);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_prefix() {
        let bytes = sample();
        let mut last = 0;
        for cut in 0..bytes.len() {
            match parse(&bytes[..cut], Path::new("t.mcap")) {
                Ok(r) => {
                    // Only the end magic missing: complete, nothing lost.
                    assert!(r.damage.is_some() || cut >= bytes.len() - 8, "cut {cut}");
                    assert!(
                        r.frames.len() >= last,
                        "frames never disappear as the file grows"
                    );
                    last = r.frames.len();
                }
                Err(e) => assert!(e.to_string().contains("t.mcap"), "{e}"),
            }
        }
        assert_eq!(last, 3);
    }

    /// `n` frames 100 ms apart, each with one CAN input frame 50 ms before it (as the recorder
    /// writes them: CAN received since the previous frame, in the frame's chunk).
    fn with_can(n: u64, path: &Path, can_input: bool) {
        let mut w = McapFile::create(path, &BTreeMap::new(), 0).unwrap();
        for i in 0..n {
            let t_ns = (i + 1) * 100_000_000;
            let can = [(
                t_ns - 50_000_000,
                CanFrame {
                    id: 0x0A0,
                    len: 1,
                    data: [i as u8, 0, 0, 0, 0, 0, 0, 0],
                },
            )];
            let m = encode_frame(&FrameRecord {
                seq: i,
                t_ns,
                jpeg: Some(&[0xFF, 0xD8, i as u8, 0xFF, 0xD9]),
                outcome: None,
                can_rx: if can_input { &can } else { &[] },
                can_tx: &[],
            })
            .unwrap();
            w.write_frame(&m).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn streams_frames_in_order_each_with_its_can_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("can.mcap");
        with_can(50, &path, true);
        assert!(has_can_input(&path).unwrap());
        let mut r = FrameReader::open(&path, Images::Keep).unwrap();
        assert_eq!(r.peek().map(|f| f.t_ns), Some(100_000_000));
        let mut n = 0u64;
        while let Some(f) = r.next_frame() {
            let f = f.unwrap();
            assert_eq!((f.seq, f.t_ns), (n, (n + 1) * 100_000_000));
            assert_eq!(
                f.jpeg.as_deref(),
                Some(&[0xFF, 0xD8, n as u8, 0xFF, 0xD9][..])
            );
            let (rx, tx) = r.take_can_until(f.t_ns);
            assert_eq!(rx.len(), 1, "frame {n}: exactly its own CAN input");
            assert_eq!((rx[0].0, rx[0].1.data[0]), (f.t_ns - 50_000_000, n as u8));
            assert!(tx.is_empty());
            // Read ahead by at most one frame: nothing beyond the next frame is held.
            assert!(
                r.c.pending.len() <= 1,
                "frame {n}: {} pending",
                r.c.pending.len()
            );
            n += 1;
        }
        assert_eq!(n, 50);
        assert!(r.damage().is_none());
        // Complete files answer from their summary; files cut short are read (up to the first
        // CAN input message, or to the end).
        let counts = summary_counts(&path).unwrap();
        assert_eq!(counts[schema::CAN_RX], 50);
        assert_eq!(counts[schema::CAMERA], 50);
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.mcap");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(summary_counts(&cut).is_none());
        assert!(has_can_input(&cut).unwrap());
        let plain = dir.path().join("plain.mcap");
        with_can(5, &plain, false);
        assert!(!has_can_input(&plain).unwrap());
        let bytes = std::fs::read(&plain).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(!has_can_input(&cut).unwrap());
        let mut skip = FrameReader::open(&path, Images::Skip).unwrap();
        let first = skip.next_frame().unwrap().unwrap();
        assert!(
            first.jpeg.is_none(),
            "images skipped, the frame is still there"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes, Path::new("fuzz.mcap"));
            let mut with_magic = mcap::MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = parse(&with_magic, Path::new("fuzz.mcap"));
        }

        #[test]
        fn mutated_recordings_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = sample();
            for (at, v) in flips {
                let k = at.index(bytes.len());
                bytes[k] = v;
            }
            let n = cut.index(bytes.len() + 1);
            let _ = parse(&bytes[..n], Path::new("mutated.mcap"));
        }
    }
}
