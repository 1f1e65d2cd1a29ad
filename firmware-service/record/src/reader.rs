//! Reading recordings back: frames (JPEG + what was decided), CAN in/out and the metadata,
//! streamed front to back ([`FrameReader`]: one chunk in memory at a time) or collected
//! ([`Recording`]).
//!
//! Damage does not end the reading: a damaged chunk or record is skipped and reported
//! ([`Damage`]: where, which chunks and times, why), and reading goes on with the next intact
//! one ([`stream`] finds it); a file cut short (crash, power loss, full disk) is read up to its
//! last complete chunk. Foreign, empty or inconsistent files are errors that name the file and
//! what to do. Nothing here panics on any input (fuzzed).

mod stream;

pub use stream::{ChunkSpan, Damage};

use super::schema::{self, CanMsg, DecisionMsg, DetectionsMsg, Outcome, TracksMsg};
use adas_core::perception::BevProjection;
use adas_types::CanFrame;
use mcap::records::Record;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use stream::{RecordStream, Top};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("recording {path}: cannot read it: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording {path}: not an MCAP file (it does not start with the MCAP magic bytes); pass a recording made by `adasd run` with [record], `adasd replay` or `adasd record import`")]
    NotMcap { path: PathBuf },
    #[error("recording {path}: no frame in it could be read ({detail}); the file is unusable — record again or use a copy")]
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
    /// What was skipped: damaged parts, or the end of a file cut short. Empty: all was read.
    pub damage: Vec<Damage>,
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

/// A message on one of the recording's topics, decoded but not yet taken in.
enum Payload {
    /// The JPEG, unless images are skipped.
    Camera(Option<Vec<u8>>),
    Detections(DetectionsMsg),
    Bev(BevProjection),
    Tracks(TracksMsg),
    Decision(DecisionMsg),
    CanRx(CanFrame),
    CanTx(CanFrame),
    /// A topic adasd does not read (only counted).
    Foreign,
}

struct Message {
    topic: String,
    t_ns: u64,
    payload: Payload,
}

/// Why a record was not taken in.
enum Fault {
    /// Its content is damaged: skipped, reported, and reading goes on.
    Damaged(String),
    /// The recording is inconsistent (times out of order): reading ends.
    Fatal(ReadError),
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
}

impl Collector {
    fn io_error(&self, source: std::io::Error) -> ReadError {
        ReadError::Io {
            path: self.path.clone(),
            source,
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

    /// Decodes one message's payload (pure: nothing is taken in).
    fn decode(&self, topic: &str, data: &[u8]) -> Result<Payload, String> {
        fn json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, String> {
            serde_json::from_slice(data).map_err(|e| e.to_string())
        }
        Ok(match topic {
            schema::CAMERA => {
                let image = schema::decode_compressed_image(data)?;
                Payload::Camera((self.images == Images::Keep).then_some(image.data))
            }
            schema::DETECTIONS => Payload::Detections(json(data)?),
            schema::BEV => Payload::Bev(json(data)?),
            schema::TRACKS => Payload::Tracks(json(data)?),
            schema::DECISION => Payload::Decision(json(data)?),
            schema::CAN_RX | schema::CAN_TX => {
                let m: CanMsg = json(data)?;
                let f = m.to_frame()?;
                if topic == schema::CAN_RX {
                    Payload::CanRx(f)
                } else {
                    Payload::CanTx(f)
                }
            }
            _ => Payload::Foreign,
        })
    }

    /// Takes in one top-level record (a chunk: one frame). Everything in it is parsed and
    /// decoded first, so a damaged record adds nothing. Returns the data times of its
    /// messages (first, last), if it has any.
    fn take(&mut self, top: &Top) -> Result<Option<(u64, u64)>, Fault> {
        let mut channels: Vec<(u16, String)> = Vec::new();
        let mut metadata = Vec::new();
        let mut messages = Vec::new();
        for (opcode, body) in top.records() {
            let record = stream::parse_record(opcode, body).map_err(|e| {
                Fault::Damaged(format!("a record (opcode {opcode:#04x}) is malformed: {e}"))
            })?;
            match record {
                Record::Channel(c) => channels.push((c.id, c.topic)),
                Record::Metadata(m) if m.name == schema::METADATA => metadata.push(m.metadata),
                Record::Message { header, data } => {
                    let (id, t_ns) = (header.channel_id, header.log_time);
                    let topic = channels
                        .iter()
                        .rev()
                        .find(|(i, _)| *i == id)
                        .map(|(_, t)| t)
                        .or_else(|| self.channels.get(&id))
                        .ok_or_else(|| {
                            Fault::Damaged(format!(
                                "a message (t = {t_ns} ns) on channel {id}, which no channel record \
                                 defines (defined in a damaged part?)"
                            ))
                        })?
                        .clone();
                    let payload = self.decode(&topic, &data).map_err(|e| {
                        Fault::Damaged(format!(
                            "its {topic} message (t = {t_ns} ns) is malformed: {e} (damaged, or \
                             written by another version of adasd)"
                        ))
                    })?;
                    messages.push(Message {
                        topic,
                        t_ns,
                        payload,
                    });
                }
                _ => {}
            }
        }
        self.channels.extend(channels);
        for m in metadata {
            self.metadata.extend(m);
        }
        let times = messages.iter().map(|m| m.t_ns).fold(None, |span, t| {
            Some(span.map_or((t, t), |(a, b): (u64, u64)| (a.min(t), b.max(t))))
        });
        for m in messages {
            self.apply(m).map_err(Fault::Fatal)?;
        }
        Ok(times)
    }

    /// Takes in one decoded message; fails on times out of order.
    fn apply(&mut self, m: Message) -> Result<(), ReadError> {
        let Message {
            topic,
            t_ns,
            payload,
        } = m;
        let index = {
            let n = self.topics.entry(topic.clone()).or_default();
            *n += 1;
            *n - 1
        };
        match payload {
            Payload::Camera(jpeg) => {
                if let Some(prev) = self.last_camera_t.filter(|&prev| t_ns <= prev) {
                    return Err(ReadError::OutOfOrder {
                        path: self.path.clone(),
                        topic,
                        index,
                        t_ns,
                        prev_ns: prev,
                    });
                }
                self.last_camera_t = Some(t_ns);
                let seq = self.camera_count as u64;
                self.camera_count += 1;
                let p = self.frame_at(&topic, index, t_ns)?;
                p.camera = true;
                p.jpeg = jpeg;
                p.seq.get_or_insert(seq);
            }
            Payload::Detections(m) => {
                let p = self.frame_at(&topic, index, t_ns)?;
                p.seq = Some(m.seq);
                p.detections = Some(m);
            }
            Payload::Bev(m) => self.frame_at(&topic, index, t_ns)?.bev = Some(m),
            Payload::Tracks(m) => self.frame_at(&topic, index, t_ns)?.tracks = Some(m),
            Payload::Decision(m) => self.frame_at(&topic, index, t_ns)?.decision = Some(m),
            Payload::CanRx(f) => self.can_rx.push((t_ns, f)),
            Payload::CanTx(f) => self.can_tx.push((t_ns, f)),
            Payload::Foreign => {}
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

/// Reads a recording front to back, one frame at a time: only the chunk being read and the
/// frames not yet complete are in memory, so hours of driving replay in constant memory.
pub struct FrameReader<R: Read + Seek> {
    stream: RecordStream<R>,
    c: Collector,
    /// The next frame, read ahead (the first one is read by `new`).
    ahead: Option<RecordedFrame>,
    ended: bool,
    /// The summary's channels have been taken in (after the first damage: the chunk that
    /// defines the channels may be the damaged one).
    summary_channels: bool,
}

impl FrameReader<BufReader<File>> {
    /// Opens `path` and reads up to its first frame (errors: not MCAP, no intact frame in it,
    /// no frames at all).
    pub fn open(path: &Path, images: Images) -> Result<Self, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        FrameReader::new(BufReader::with_capacity(READ_BLOCK, file), path, images)
    }
}

impl<R: Read + Seek> FrameReader<R> {
    /// Reads a recording from `input` (`path` only names it in messages).
    pub fn new(input: R, path: &Path, images: Images) -> Result<Self, ReadError> {
        let stream = RecordStream::open(input)
            .map_err(|source| ReadError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .ok_or_else(|| ReadError::NotMcap {
                path: path.to_path_buf(),
            })?;
        let mut reader = FrameReader {
            stream,
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
            },
            ahead: None,
            ended: false,
            summary_channels: false,
        };
        reader.ahead = reader.read_frame()?;
        if reader.ahead.is_none() {
            let damage = reader.damage();
            return Err(match damage.first() {
                Some(first) => ReadError::Unreadable {
                    path: path.to_path_buf(),
                    detail: match damage.len() {
                        1 => first.to_string(),
                        n => format!("{first}; and {} more damaged parts", n - 1),
                    },
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

    /// What was skipped so far (read ahead by one chunk): damaged parts, in file order, and
    /// the end of a file cut short. Complete once [`Self::next_frame`] has returned `None`.
    pub fn damage(&self) -> &[Damage] {
        self.stream.damage()
    }

    /// The next frame in time order; an error (times out of order) ends the recording.
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

    /// Reads until a frame is complete; `None` at the end.
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

    /// Reads and takes in one top-level record that checks out (a chunk: one frame), skipping
    /// and reporting damaged ones; sets `ended` at the end of the data.
    fn read_record(&mut self) -> Result<(), ReadError> {
        let top = self.stream.next().map_err(|e| self.c.io_error(e))?;
        self.take_summary_channels();
        let Some(top) = top else {
            self.ended = true;
            return Ok(());
        };
        match self.c.take(&top) {
            Ok(Some((first, last))) => self.stream.read_times(first, last),
            Ok(None) => {}
            Err(Fault::Damaged(reason)) => {
                self.stream
                    .report(&top, reason)
                    .map_err(|e| self.c.io_error(e))?;
                self.take_summary_channels();
            }
            Err(Fault::Fatal(e)) => return Err(e),
        }
        Ok(())
    }

    /// After the first damage, the channels the summary defines (the chunk that defines them
    /// may be the damaged one, and the messages after it would be on unknown channels).
    fn take_summary_channels(&mut self) {
        if self.summary_channels || self.stream.damage().is_empty() {
            return;
        }
        self.summary_channels = true;
        if let Some(channels) = self.stream.summary_channels() {
            for (id, topic) in channels {
                self.c.channels.entry(*id).or_insert_with(|| topic.clone());
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
            damage: self.stream.damage().to_vec(),
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
    FrameReader::new(std::io::Cursor::new(bytes), path, Images::Keep)?.collect_all()
}

/// Messages per topic from the summary section of a complete file (its Statistics record), read
/// from the end of the file without touching the data; `None` for files cut short or with a
/// damaged footer or summary, or without statistics.
pub fn summary_counts(path: &Path) -> Option<BTreeMap<String, u64>> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let index = stream::read_index(file, len).ok()??;
    let counts = index.counts?;
    Some(
        counts
            .into_iter()
            .filter_map(|(id, n)| Some((index.channels.get(&id)?.clone(), n)))
            .collect(),
    )
}

/// Whether the recording holds CAN input (`/can/rx`): decides whether a replay takes its ego
/// speed from the recorded CAN or from the config. From the summary's statistics when the file is
/// complete; otherwise read (through damage) up to the first such message, to the end when
/// there is none, decoding no payloads.
pub fn has_can_input(path: &Path) -> Result<bool, ReadError> {
    if let Some(counts) = summary_counts(path) {
        return Ok(counts.get(schema::CAN_RX).is_some_and(|&n| n > 0));
    }
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = BufReader::with_capacity(READ_BLOCK, File::open(path).map_err(io)?);
    let mut stream = RecordStream::open(file)
        .map_err(io)?
        .ok_or_else(|| ReadError::NotMcap {
            path: path.to_path_buf(),
        })?;
    let mut rx_channels = Vec::new();
    while let Some(top) = stream.next().map_err(io)? {
        for (opcode, body) in top.records() {
            match stream::parse_record(opcode, body) {
                Ok(Record::Channel(c)) if c.topic == schema::CAN_RX => rx_channels.push(c.id),
                Ok(Record::Message { header, .. }) if rx_channels.contains(&header.channel_id) => {
                    return Ok(true)
                }
                _ => {}
            }
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
        assert!(r.damage.is_empty(), "{:?}", r.damage);
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
                    // Every cut is reported, down to a missing byte of the end magic.
                    assert!(!r.damage.is_empty(), "cut {cut}");
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
        assert!(r.damage().is_empty(), "{:?}", r.damage());
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

    /// `with_can(6, …)`'s bytes: 6 frames (t = 0.1 … 0.6 s), each with one CAN input frame.
    fn six() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("six.mcap");
        with_can(6, &path, true);
        std::fs::read(&path).unwrap()
    }

    /// Byte ranges of the file's top-level records with `opcode` (header included), in order.
    fn records_of(bytes: &[u8], opcode: u8) -> Vec<std::ops::Range<usize>> {
        stream::split_records(&bytes[8..bytes.len() - 8])
            .unwrap()
            .into_iter()
            .filter(|(o, _)| *o == opcode)
            .map(|(_, r)| r.start - 9 + 8..r.end + 8)
            .collect()
    }

    /// The frames' times, ms.
    fn times_ms(r: &Recording) -> Vec<u64> {
        r.frames.iter().map(|f| f.t_ns / 1_000_000).collect()
    }

    /// Damage as bytes (start, end).
    fn regions(r: &Recording) -> Vec<(u64, u64)> {
        r.damage.iter().map(|d| (d.start, d.end)).collect()
    }

    /// Breaks the end magic: no footer, so no index (resynchronising falls back to scanning).
    fn without_footer(mut bytes: Vec<u8>) -> Vec<u8> {
        let n = bytes.len();
        bytes[n - 1] ^= 0xFF;
        bytes
    }

    use mcap::records::op;

    #[test]
    fn a_chunk_failing_its_crc_is_skipped_and_the_rest_read() {
        let intact = six();
        let chunks = records_of(&intact, op::CHUNK);
        assert_eq!(chunks.len(), 7, "channels + 6 frames");
        let third = chunks[3].clone(); // the frame at 0.3 s
        for bytes in [intact.clone(), without_footer(intact.clone())] {
            let mut bytes = bytes;
            bytes[third.end - 3] ^= 0x40;
            let r = parse(&bytes, Path::new("flip.mcap")).unwrap();
            assert_eq!(times_ms(&r), [100, 200, 400, 500, 600]);
            assert_eq!(r.can_rx.len(), 5, "the lost frame's CAN input went with it");
            let d = &r.damage[0];
            assert_eq!(d.start..d.end, third.start as u64..third.end as u64);
            assert!(d.reason.contains("CRC"), "{d}");
            assert_eq!(
                (d.after_ns, d.before_ns),
                (Some(200_000_000), Some(350_000_000))
            );
        }
        // With the index: the chunk's number and times; without: the times around it.
        let mut bytes = intact.clone();
        bytes[third.end - 3] ^= 0x40;
        let r = parse(&bytes, Path::new("flip.mcap")).unwrap();
        assert_eq!(r.damage.len(), 1, "{:?}", r.damage);
        let text = r.damage[0].to_string();
        assert!(
            text.starts_with(&format!("bytes {}–{}", third.start, third.end))
                && text.contains("chunk 4 of 7 (messages at t = 0.250 … 0.300 s)"),
            "{text}"
        );
        let mut bytes = without_footer(intact);
        bytes[third.end - 3] ^= 0x40;
        let r = parse(&bytes, Path::new("flip.mcap")).unwrap();
        let text = r.damage[0].to_string();
        assert!(text.contains("between t = 0.200 s and 0.350 s"), "{text}");
        assert_eq!(r.damage.len(), 2, "and the footer: {:?}", r.damage);
        assert!(r.damage[1].reason.contains("footer"), "{}", r.damage[1]);
    }

    #[test]
    fn a_damaged_length_or_opcode_is_passed_by_the_index_or_by_scanning() {
        let intact = six();
        let chunks = records_of(&intact, op::CHUNK);
        let (second, after) = (chunks[2].clone(), chunks[3].start as u64);
        let len = u64::from_le_bytes(
            intact[second.start + 1..second.start + 9]
                .try_into()
                .unwrap(),
        );
        for new_len in [len + 1, len - 1, len + 1000, 1 << 40, u64::MAX] {
            for bytes in [intact.clone(), without_footer(intact.clone())] {
                let mut bytes = bytes;
                bytes[second.start + 1..second.start + 9].copy_from_slice(&new_len.to_le_bytes());
                let r = parse(&bytes, Path::new("length.mcap")).unwrap();
                assert_eq!(times_ms(&r), [100, 300, 400, 500, 600], "length {new_len}");
                // From the damaged chunk to the next one (its message indexes are lost too).
                assert_eq!(
                    regions(&r)[0],
                    (second.start as u64, after),
                    "length {new_len}"
                );
            }
        }
        // The record lengths inside the chunk: its own lengths disagree.
        let mut bytes = intact.clone();
        let size_at = second.start + 9 + 32;
        bytes[size_at] ^= 0x10;
        let r = parse(&bytes, Path::new("size.mcap")).unwrap();
        assert_eq!(times_ms(&r), [100, 300, 400, 500, 600]);
        assert!(
            r.damage[0].reason.contains("lengths disagree"),
            "{}",
            r.damage[0]
        );
        // A chunk's opcode damaged into a message index's, or into nothing.
        for opcode in [op::MESSAGE_INDEX, op::SCHEMA, op::METADATA, 0x86, 0x00] {
            for bytes in [intact.clone(), without_footer(intact.clone())] {
                let mut bytes = bytes;
                bytes[second.start] = opcode;
                let r = parse(&bytes, Path::new("opcode.mcap")).unwrap();
                assert_eq!(times_ms(&r), [100, 300, 400, 500, 600], "opcode {opcode}");
                let (start, end) = regions(&r)[0];
                assert_eq!(start, second.start as u64, "opcode {opcode}");
                assert!(
                    end == second.end as u64 || end == after,
                    "opcode {opcode}: {end}"
                );
            }
        }
    }

    #[test]
    fn every_byte_of_a_chunk_damaged_loses_that_frame_at_most() {
        let intact = six();
        let whole = parse(&intact, Path::new("six.mcap")).unwrap();
        let chunk = records_of(&intact, op::CHUNK)[4].clone(); // the frame at 0.4 s
                                                               // Its start and end times are in no CRC: the data section's CRC finds them.
        let times = chunk.start + 9..chunk.start + 9 + 16;
        for footer in [true, false] {
            for at in chunk.clone() {
                for flip in [0x01, 0x80, 0xFF] {
                    let mut bytes = intact.clone();
                    bytes[at] ^= flip;
                    if !footer {
                        bytes = without_footer(bytes);
                    }
                    let r = parse(&bytes, Path::new("byte.mcap")).unwrap();
                    let case = format!("byte {at} ^ {flip:#x}, footer {footer}: {:?}", r.damage);
                    assert!(!r.damage.is_empty(), "{case}");
                    // Frames are numbered as read (camera-only recordings): compare the rest.
                    let content = |frames: &[RecordedFrame], all: bool| -> Vec<_> {
                        frames
                            .iter()
                            .filter(|f| all || f.t_ns != 400_000_000)
                            .map(|f| (f.t_ns, f.jpeg.clone()))
                            .collect()
                    };
                    assert_eq!(
                        content(&r.frames, false),
                        content(&whole.frames, false),
                        "{case}"
                    );
                    if times.contains(&at) {
                        assert_eq!(
                            content(&r.frames, true),
                            content(&whole.frames, true),
                            "{case}"
                        );
                        assert!(r.damage[0].reason.contains("data section"), "{case}");
                    } else {
                        assert_eq!(r.frames.len(), 5, "{case}");
                        assert_eq!(r.damage[0].start, chunk.start as u64, "{case}");
                    }
                }
            }
        }
    }

    /// Replaces the first `from` in chunk `chunk` by `to` (same length) and fixes the chunk's
    /// CRC: damage only the content checks can find.
    fn rewrite_in_chunk(bytes: &mut [u8], chunk: std::ops::Range<usize>, from: &[u8], to: &[u8]) {
        let records_at = chunk.start + 9 + 40;
        let at = bytes[records_at..chunk.end]
            .windows(from.len())
            .position(|w| w == from)
            .unwrap()
            + records_at;
        bytes[at..at + to.len()].copy_from_slice(to);
        let crc = crc32fast::hash(&bytes[records_at..chunk.end]);
        bytes[chunk.start + 9 + 24..chunk.start + 9 + 28].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn malformed_messages_skip_their_chunk_and_damaged_indexes_are_reported() {
        let intact = six();
        let chunks = records_of(&intact, op::CHUNK);
        // A CAN frame whose payload is not hex, in a chunk that passes its CRC.
        let mut bytes = intact.clone();
        rewrite_in_chunk(
            &mut bytes,
            chunks[5].clone(),
            b"\"data\":\"",
            b"\"data\":\"Z",
        );
        let r = parse(&bytes, Path::new("content.mcap")).unwrap();
        assert_eq!(times_ms(&r), [100, 200, 300, 400, 600]);
        assert_eq!(
            regions(&r),
            [(chunks[5].start as u64, chunks[5].end as u64)]
        );
        assert!(
            r.damage[0]
                .reason
                .contains("/can/rx message (t = 450000000 ns) is malformed"),
            "{}",
            r.damage[0]
        );
        // The chunk that defines the channels: the summary defines them too.
        let mut bytes = intact.clone();
        bytes[chunks[0].end - 2] ^= 0x01;
        let r = parse(&bytes, Path::new("channels.mcap")).unwrap();
        assert_eq!(times_ms(&r), [100, 200, 300, 400, 500, 600]);
        assert!(
            r.damage[0].to_string().contains("chunk 1 of 7"),
            "{}",
            r.damage[0]
        );
        // … and without the summary, nothing can be read: an error that says why.
        let err = parse(&without_footer(bytes), Path::new("channels.mcap")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("channels.mcap: no frame in it could be read")
                && text.contains("CRC")
                && text.contains("more damaged parts"),
            "{text}"
        );
        // A message index (covered by no chunk's CRC): the data section's CRC finds it.
        let mut bytes = intact.clone();
        let index = records_of(&intact, op::MESSAGE_INDEX)[3].clone();
        bytes[index.end - 1] ^= 0x01;
        let r = parse(&bytes, Path::new("index.mcap")).unwrap();
        assert_eq!(r.frames, parse(&intact, Path::new("i")).unwrap().frames);
        let data_end = records_of(&intact, op::DATA_END)[0].start as u64;
        assert_eq!(regions(&r), [(data_end, data_end)]);
        assert!(
            r.damage[0].reason.contains("data section fails its CRC"),
            "{}",
            r.damage[0]
        );
    }

    #[test]
    fn a_damaged_summary_or_footer_is_reported_and_everything_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("six.mcap");
        with_can(6, &path, true);
        let intact = std::fs::read(&path).unwrap();
        let data_end = records_of(&intact, op::DATA_END)[0].end as u64;
        let n = intact.len();
        let chunk_index = records_of(&intact, op::CHUNK_INDEX)[2].clone();
        // A chunk index entry, the footer's summary offset, the end magic.
        for at in [chunk_index.start + 20, n - 8 - 20, n - 3] {
            let mut bytes = intact.clone();
            bytes[at] ^= 0x04;
            let r = parse(&bytes, Path::new("summary.mcap")).unwrap();
            assert_eq!(times_ms(&r), [100, 200, 300, 400, 500, 600], "byte {at}");
            assert_eq!(regions(&r), [(data_end, n as u64)], "byte {at}");
            let text = r.damage[0].to_string();
            assert!(text.contains("summary and footer are damaged"), "{text}");
            // The statistics are not trusted either; reading the data finds the CAN input.
            std::fs::write(&path, &bytes).unwrap();
            assert!(summary_counts(&path).is_none(), "byte {at}");
            assert!(has_can_input(&path).unwrap(), "byte {at}");
        }
    }

    #[test]
    fn a_crafted_file_of_false_chunks_is_given_up_in_bounded_time() {
        // Chunk headers every 64 bytes, each claiming the rest of the file and failing its CRC:
        // trying each in turn would read the file about len / 128 times over.
        let len = 4 << 20;
        let mut bytes = mcap::MAGIC.to_vec();
        bytes.push(0); // no record starts at the first byte: search from there
        while bytes.len() + 64 <= len {
            let at = bytes.len();
            let size = (len - at - 9 - 40) as u64;
            bytes.push(op::CHUNK);
            bytes.extend_from_slice(&(size + 40).to_le_bytes());
            bytes.extend_from_slice(&[0; 16]); // start and end time
            bytes.extend_from_slice(&size.to_le_bytes()); // uncompressed size
            bytes.extend_from_slice(&1u32.to_le_bytes()); // a CRC that does not match
            bytes.extend_from_slice(&0u32.to_le_bytes()); // no compression
            bytes.extend_from_slice(&size.to_le_bytes());
            bytes.resize(at + 64, 0xAA);
        }
        bytes.resize(len, 0xAA);
        let started = std::time::Instant::now();
        let err = parse(&bytes, Path::new("crafted.mcap"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("search for intact records after it stopped"),
            "{err}"
        );
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
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
        fn mutated_recordings_never_panic_nor_invent_frames(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let intact = sample();
            let whole = parse(&intact, Path::new("intact.mcap")).unwrap();
            let mut bytes = intact.clone();
            for (at, v) in flips {
                let k = at.index(bytes.len());
                bytes[k] = v;
            }
            let n = cut.index(bytes.len() + 1);
            if let Ok(r) = parse(&bytes[..n], Path::new("mutated.mcap")) {
                // Whatever is read is what was written: no frame, message or CAN frame more.
                for f in &r.frames {
                    prop_assert!(
                        whole.frames.iter().any(|w| w.t_ns == f.t_ns && w.jpeg == f.jpeg && w.outcome == f.outcome),
                        "a frame the intact file does not have: {f:?}"
                    );
                }
                for (topic, count) in &r.topics {
                    prop_assert!(whole.topics.get(topic).is_some_and(|w| count <= w), "{topic}: {count}");
                }
                prop_assert!(r.can_rx.iter().all(|c| whole.can_rx.contains(c)));
                // Anything changed or cut is reported, unless the change left the bytes as they were.
                if bytes[..n] != intact[..] {
                    prop_assert!(!r.damage.is_empty());
                }
            }
        }
    }
}
