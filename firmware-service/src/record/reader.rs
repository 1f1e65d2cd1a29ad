//! Reading recordings back: frames (JPEG + what was decided), CAN in/out and the metadata.
//!
//! Damaged files are read up to their last complete chunk (a recording cut by a crash, power
//! loss or a full disk), with a note saying so; foreign, empty or inconsistent files are errors
//! that name the file and what to do. Nothing here panics on any input (fuzzed).

use super::schema::{self, CanMsg, DecisionMsg, DetectionsMsg, Outcome, TracksMsg};
use crate::can::CanFrame;
use crate::perception::BevProjection;
use mcap::records::Record;
use std::collections::{BTreeMap, HashMap};
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
    /// The camera image (JPEG), when recorded.
    pub jpeg: Option<Vec<u8>>,
    /// What was decided, when recorded (not in imported recordings).
    pub outcome: Option<Outcome>,
}

/// A recording in memory.
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
        let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        parse(&bytes, path)
    }

    pub fn has_camera(&self) -> bool {
        self.frames.iter().any(|f| f.jpeg.is_some())
    }

    pub fn has_outcomes(&self) -> bool {
        self.frames.iter().any(|f| f.outcome.is_some())
    }

    /// Fails unless camera frames are present (what a replay with the detector needs).
    pub fn require_camera(&self) -> Result<(), ReadError> {
        if self.has_camera() {
            Ok(())
        } else {
            Err(ReadError::MissingChannel {
                path: self.path.clone(),
                topic: schema::CAMERA,
                hint: "it holds no camera images; replay it with --recorded-detections, or record with images",
            })
        }
    }

    /// Fails unless detections and decisions are present (object-list replay, compare, render).
    pub fn require_outcomes(&self) -> Result<(), ReadError> {
        if self.has_outcomes() {
            Ok(())
        } else {
            Err(ReadError::MissingChannel {
                path: self.path.clone(),
                topic: schema::DECISION,
                hint: "it holds no detections/decisions (an imported recording?); replay it first: `adasd replay FILE --out DIR`",
            })
        }
    }

    /// Metadata value or "unknown".
    pub fn meta(&self, key: &str) -> &str {
        self.metadata.get(key).map_or("unknown", |s| s.as_str())
    }
}

#[derive(Default)]
struct Partial {
    seq: Option<u64>,
    jpeg: Option<Vec<u8>>,
    detections: Option<DetectionsMsg>,
    bev: Option<BevProjection>,
    tracks: Option<TracksMsg>,
    decision: Option<DecisionMsg>,
}

struct Collector<'p> {
    path: &'p Path,
    channels: HashMap<u16, String>,
    frames: BTreeMap<u64, Partial>,
    rec: Recording,
    last_camera_t: Option<u64>,
    camera_count: usize,
}

impl Collector<'_> {
    fn bad(&self, topic: &str, index: usize, t_ns: u64, detail: impl ToString) -> ReadError {
        ReadError::BadMessage {
            path: self.path.to_path_buf(),
            topic: topic.to_string(),
            index,
            t_ns,
            detail: detail.to_string(),
        }
    }

    fn message(&mut self, channel_id: u16, t_ns: u64, data: &[u8]) -> Result<(), ReadError> {
        let Some(topic) = self.channels.get(&channel_id).cloned() else {
            return Ok(()); // unknown channel: a foreign topic, ignored
        };
        let index = {
            let n = self.rec.topics.entry(topic.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let json = |this: &Self| -> Result<serde_json::Value, ReadError> {
            serde_json::from_slice(data).map_err(|e| this.bad(&topic, index, t_ns, e))
        };
        match topic.as_str() {
            schema::CAMERA => {
                if let Some(prev) = self.last_camera_t {
                    if t_ns <= prev {
                        return Err(ReadError::OutOfOrder {
                            path: self.path.to_path_buf(),
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
                let p = self.frames.entry(t_ns).or_default();
                p.jpeg = Some(image.data);
                p.seq.get_or_insert(seq);
            }
            schema::DETECTIONS => {
                let v = json(self)?;
                let m: DetectionsMsg =
                    serde_json::from_value(v).map_err(|e| self.bad(&topic, index, t_ns, e))?;
                let p = self.frames.entry(t_ns).or_default();
                p.seq = Some(m.seq);
                p.detections = Some(m);
            }
            schema::BEV => {
                let m: BevProjection = serde_json::from_value(json(self)?)
                    .map_err(|e| self.bad(&topic, index, t_ns, e))?;
                self.frames.entry(t_ns).or_default().bev = Some(m);
            }
            schema::TRACKS => {
                let m: TracksMsg = serde_json::from_value(json(self)?)
                    .map_err(|e| self.bad(&topic, index, t_ns, e))?;
                self.frames.entry(t_ns).or_default().tracks = Some(m);
            }
            schema::DECISION => {
                let m: DecisionMsg = serde_json::from_value(json(self)?)
                    .map_err(|e| self.bad(&topic, index, t_ns, e))?;
                self.frames.entry(t_ns).or_default().decision = Some(m);
            }
            schema::CAN_RX | schema::CAN_TX => {
                let m: CanMsg = serde_json::from_value(json(self)?)
                    .map_err(|e| self.bad(&topic, index, t_ns, e))?;
                let f = m
                    .to_frame()
                    .ok_or_else(|| self.bad(&topic, index, t_ns, "payload is not 0–8 hex bytes"))?;
                if topic == schema::CAN_RX {
                    self.rec.can_rx.push((t_ns, f));
                } else {
                    self.rec.can_tx.push((t_ns, f));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn record(&mut self, record: Record<'_>, chunk_no: &mut usize) -> Result<(), ReadError> {
        match record {
            Record::Channel(c) => {
                self.channels.insert(c.id, c.topic);
            }
            Record::Message { header, data } => {
                self.message(header.channel_id, header.log_time, &data)?;
            }
            Record::Metadata(m) if m.name == schema::METADATA => {
                self.rec.metadata.extend(m.metadata);
            }
            Record::Chunk { header, data } => {
                *chunk_no += 1;
                if header.compression.is_empty() && header.uncompressed_crc != 0 {
                    let crc = crc32fast::hash(&data);
                    if crc != header.uncompressed_crc {
                        return Err(ReadError::Unreadable {
                            path: self.path.to_path_buf(),
                            detail: format!(
                                "chunk {} (t = {} ns …) fails its CRC check",
                                *chunk_no, header.message_start_time
                            ),
                        });
                    }
                }
                let inner = mcap::read::ChunkReader::new(header, &data).map_err(|e| {
                    ReadError::Unreadable {
                        path: self.path.to_path_buf(),
                        detail: format!("chunk {}: {e}", *chunk_no),
                    }
                })?;
                // Parse the whole chunk first, so a damaged chunk adds nothing.
                let mut records = Vec::new();
                for r in inner {
                    records.push(r.map_err(|e| ReadError::Unreadable {
                        path: self.path.to_path_buf(),
                        detail: format!("chunk {}: {e}", *chunk_no),
                    })?);
                }
                for r in records {
                    let mut nested = 0;
                    self.record(r, &mut nested)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Parses a recording from its bytes (`path` only names it in messages).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Recording, ReadError> {
    if bytes.len() < 8 || &bytes[..8] != mcap::MAGIC {
        return Err(ReadError::NotMcap {
            path: path.to_path_buf(),
        });
    }
    let reader = mcap::read::LinearReader::new_with_options(
        bytes,
        mcap::read::Options::IgnoreEndMagic.into(),
    )
    .map_err(|e| ReadError::Unreadable {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut c = Collector {
        path,
        channels: HashMap::new(),
        frames: BTreeMap::new(),
        rec: Recording {
            path: path.to_path_buf(),
            ..Default::default()
        },
        last_camera_t: None,
        camera_count: 0,
    };
    let mut chunk_no = 0usize;
    let mut damage = None;
    let mut saw_footer = false;
    for record in reader {
        match record {
            Ok(Record::Footer(_)) => saw_footer = true,
            Ok(r) => match c.record(r, &mut chunk_no) {
                Ok(()) => {}
                Err(ReadError::Unreadable { detail, .. }) => {
                    damage = Some(detail);
                    break;
                }
                Err(e) => return Err(e),
            },
            Err(e) => {
                damage = Some(e.to_string());
                break;
            }
        }
    }
    if damage.is_none() && !saw_footer {
        damage = Some("the file ends without a footer".into());
    }
    let mut rec = c.rec;
    for (t_ns, p) in c.frames {
        let outcome = match (p.detections, p.bev, p.tracks, p.decision) {
            (Some(detections), Some(bev), Some(tracks), Some(decision)) => Some(Outcome {
                detections,
                bev,
                tracks: tracks.tracks,
                decision,
            }),
            _ => None,
        };
        if p.jpeg.is_none() && outcome.is_none() {
            continue;
        }
        rec.frames.push(RecordedFrame {
            seq: p.seq.unwrap_or(rec.frames.len() as u64),
            t_ns,
            jpeg: p.jpeg,
            outcome,
        });
    }
    rec.can_rx.sort_by_key(|(t, _)| *t);
    rec.can_tx.sort_by_key(|(t, _)| *t);
    if let Some(detail) = damage {
        if rec.frames.is_empty() {
            return Err(ReadError::Unreadable {
                path: path.to_path_buf(),
                detail,
            });
        }
        let last = rec.frames.last().map_or(0, |f| f.t_ns);
        rec.damage = Some(format!(
            "{detail}: read up to the last complete chunk, {} frames up to t = {:.3} s (interrupted recording: power loss, kill or full disk?)",
            rec.frames.len(),
            last as f64 / 1e9
        ));
    }
    if rec.frames.is_empty() {
        return Err(ReadError::MissingChannel {
            path: path.to_path_buf(),
            topic: schema::CAMERA,
            hint: "no frames at all (neither camera images nor decisions): not an adasd recording",
        });
    }
    Ok(rec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::schema::{encode_frame, FrameRecord};
    use crate::record::writer::McapFile;
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
