//! The recording's wire format: topics, schemas and message encodings (pure, no I/O).
//!
//! Camera frames are `foxglove.CompressedImage` in protobuf (JPEG bytes as they are), the
//! annotations `foxglove.ImageAnnotations` in JSON, so Foxglove shows both without plugins.
//! Everything the pipeline decided is JSON with full precision (floats round-trip exactly), so a
//! replay can take detections from a recording and reproduce its decisions bit for bit.

use adas_core::aeb::Decision;
use adas_core::perception::{BevProjection, Track};
use adas_types::CanFrame;
use adas_types::ImageDetection;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::LazyLock;

use crate::{can_signals, foxglove, scene};
use adas_core::can::dbc::MESSAGES;
use prost::Message as _;

pub const CAMERA: &str = "/camera/image";
pub const ANNOTATIONS: &str = "/camera/annotations";
pub const DETECTIONS: &str = "/adas/detections";
pub const BEV: &str = "/adas/bev";
pub const TRACKS: &str = "/adas/tracks";
pub const DECISION: &str = "/adas/decision";
pub const CAN_RX: &str = "/can/rx";
pub const CAN_TX: &str = "/can/tx";
/// Foxglove 3D views (`foxglove.SceneUpdate`, [`crate::scene`]).
pub const VIZ_BEV: &str = "/viz/bev";
pub const VIZ_TRACKS: &str = "/viz/tracks";
pub const VIZ_CORRIDOR: &str = "/viz/corridor";
/// Where the camera is in the vehicle frame (`foxglove.FrameTransform`), when known.
pub const TF: &str = "/tf";

/// Name of the metadata record with config, calibration and model identity.
pub const METADATA: &str = "adas";
/// Bumped when a message layout changes incompatibly (not for added topics: readers skip a
/// topic they do not know).
pub const FORMAT_VERSION: &str = "1";
/// Metadata key of the calibration file's text (the camera's place comes from it).
pub const CALIBRATION_KEY: &str = "calibration_toml";
/// `frame_id` of camera images and annotations.
pub const CAMERA_FRAME: &str = "camera";

/// One channel: topic, schema and encodings.
pub struct ChannelSpec {
    pub topic: Cow<'static, str>,
    pub schema_name: Cow<'static, str>,
    pub schema_encoding: &'static str,
    pub schema: Cow<'static, [u8]>,
    pub message_encoding: &'static str,
}

/// `foxglove.CompressedImage` as a protobuf FileDescriptorSet (with its timestamp.proto), taken
/// from the `foxglove-schemas-protobuf` package.
const COMPRESSED_IMAGE_FDS: &[u8] = include_bytes!("foxglove_CompressedImage.fds");

const IMAGE_ANNOTATIONS_SCHEMA: &str = r##"{"title":"foxglove.ImageAnnotations","type":"object","properties":{"circles":{"type":"array"},"points":{"type":"array","items":{"type":"object","properties":{"timestamp":{"type":"object","properties":{"sec":{"type":"integer"},"nsec":{"type":"integer"}}},"type":{"type":"integer"},"points":{"type":"array","items":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}}}},"outline_color":{"type":"object"},"outline_colors":{"type":"array"},"fill_color":{"type":"object"},"thickness":{"type":"number"}}}},"texts":{"type":"array","items":{"type":"object","properties":{"timestamp":{"type":"object"},"position":{"type":"object"},"text":{"type":"string"},"font_size":{"type":"number"},"text_color":{"type":"object"},"background_color":{"type":"object"}}}}}}"##;
const DETECTIONS_SCHEMA: &str = r#"{"title":"adas.Detections","type":"object","properties":{"seq":{"type":"integer"},"width":{"type":"integer"},"height":{"type":"integer"},"detections":{"type":"array","items":{"type":"object","properties":{"bbox":{"type":"object"},"score":{"type":"number"},"label":{"type":"string"},"class":{"type":"string"}}}}}}"#;
const BEV_SCHEMA: &str = r#"{"title":"adas.BevProjection","type":"object","properties":{"objects":{"type":"array"},"above_horizon":{"type":"integer"},"truncated":{"type":"integer"}}}"#;
const TRACKS_SCHEMA: &str =
    r#"{"title":"adas.Tracks","type":"object","properties":{"tracks":{"type":"array"}}}"#;
const DECISION_SCHEMA: &str = r#"{"title":"adas.Decision","type":"object","properties":{"seq":{"type":"integer"},"ego_speed_mps":{"type":["number","null"]},"decision":{"type":"object"}}}"#;
const CAN_SCHEMA: &str = r#"{"title":"adas.CanFrame","type":"object","properties":{"id":{"type":"integer"},"data":{"type":"string","description":"payload, hex"}}}"#;

/// Every channel of a recording, in the order of their ids: the eight of format 1, then the
/// views added since (Foxglove's 3D scene, the camera's place, decoded CAN signals, one topic
/// per DBC message). Channels are only ever added: a reader skips a topic it does not know.
pub fn channels() -> &'static [ChannelSpec] {
    static CHANNELS: LazyLock<Vec<ChannelSpec>> = LazyLock::new(|| {
        let mut c = vec![
            protobuf_channel(CAMERA, "foxglove.CompressedImage", COMPRESSED_IMAGE_FDS),
            json_channel(
                ANNOTATIONS,
                "foxglove.ImageAnnotations",
                IMAGE_ANNOTATIONS_SCHEMA,
            ),
            json_channel(DETECTIONS, "adas.Detections", DETECTIONS_SCHEMA),
            json_channel(BEV, "adas.BevProjection", BEV_SCHEMA),
            json_channel(TRACKS, "adas.Tracks", TRACKS_SCHEMA),
            json_channel(DECISION, "adas.Decision", DECISION_SCHEMA),
            json_channel(CAN_RX, "adas.CanFrame", CAN_SCHEMA),
            json_channel(CAN_TX, "adas.CanFrame", CAN_SCHEMA),
            protobuf_channel(VIZ_BEV, "foxglove.SceneUpdate", foxglove::SCENE_UPDATE_FDS),
            protobuf_channel(
                VIZ_TRACKS,
                "foxglove.SceneUpdate",
                foxglove::SCENE_UPDATE_FDS,
            ),
            protobuf_channel(
                VIZ_CORRIDOR,
                "foxglove.SceneUpdate",
                foxglove::SCENE_UPDATE_FDS,
            ),
            protobuf_channel(TF, "foxglove.FrameTransform", foxglove::FRAME_TRANSFORM_FDS),
        ];
        debug_assert_eq!(c.len(), CAN_SIGNALS_FIRST_CHANNEL);
        c.extend(MESSAGES.iter().map(|m| ChannelSpec {
            topic: can_signals::topic(m).into(),
            schema_name: can_signals::schema_name(m).into(),
            schema_encoding: "jsonschema",
            schema: can_signals::json_schema(m).into_bytes().into(),
            message_encoding: "json",
        }));
        c
    });
    &CHANNELS
}

/// Index in [`channels`] of the decoded topic of the first DBC message (the others follow in
/// the DBC's order).
const CAN_SIGNALS_FIRST_CHANNEL: usize = 12;

const fn protobuf_channel(
    topic: &'static str,
    name: &'static str,
    descriptor_set: &'static [u8],
) -> ChannelSpec {
    ChannelSpec {
        topic: Cow::Borrowed(topic),
        schema_name: Cow::Borrowed(name),
        schema_encoding: "protobuf",
        schema: Cow::Borrowed(descriptor_set),
        message_encoding: "protobuf",
    }
}

const fn json_channel(
    topic: &'static str,
    name: &'static str,
    schema: &'static str,
) -> ChannelSpec {
    ChannelSpec {
        topic: Cow::Borrowed(topic),
        schema_name: Cow::Borrowed(name),
        schema_encoding: "jsonschema",
        schema: Cow::Borrowed(schema.as_bytes()),
        message_encoding: "json",
    }
}

/// Index into [`channels`] of a topic.
pub fn channel_index(topic: &str) -> Option<usize> {
    channels().iter().position(|c| c.topic == topic)
}

/// One message ready to write: channel (index into [`channels`]), log time and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub channel: usize,
    pub t_ns: u64,
    pub data: Vec<u8>,
}

/// `/adas/detections` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionsMsg {
    pub seq: u64,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<ImageDetection>,
}

/// `/adas/tracks` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracksMsg {
    pub tracks: Vec<Track>,
}

/// [`TracksMsg`] borrowed, for writing without copying the tracks.
#[derive(Serialize)]
struct TracksRef<'a> {
    tracks: &'a [Track],
}

/// `/adas/decision` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionMsg {
    pub seq: u64,
    /// The ego speed the decision used (`None`: no ego sample).
    pub ego_speed_mps: Option<f64>,
    pub decision: Decision,
}

/// `/can/rx`, `/can/tx` payload.
///
/// `id` is [`CanFrame::id`] as it is, Linux's convention: a standard frame is its 11-bit id
/// (`{"id":160,…}` for 0x0A0), an extended frame its 29-bit id with bit 31 set
/// (`CanFrame::EFF_FLAG`: `{"id":2147483808,…}` for extended 0x0A0). So recordings of standard
/// frames are what they always were, and the schema text (in every file) is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanMsg {
    pub id: u32,
    /// Payload bytes, hex.
    pub data: String,
}

impl CanMsg {
    pub fn from_frame(f: &CanFrame) -> Self {
        Self {
            id: f.id,
            data: f.payload().iter().map(|b| format!("{b:02X}")).collect(),
        }
    }

    /// The frame, or why the message holds none.
    pub fn to_frame(&self) -> Result<CanFrame, &'static str> {
        let hex = self.data.as_bytes();
        let bad_data = "payload is not 0–8 hex bytes";
        if !hex.len().is_multiple_of(2) || hex.len() > 16 {
            return Err(bad_data);
        }
        let mut data = [0u8; 8];
        for (byte, pair) in data.iter_mut().zip(hex.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad_data)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad_data)?;
        }
        // Recordings made before the id kept its width stored an extended id without the flag;
        // one above 0x7FF can only have been extended. (One at or below 0x7FF is
        // indistinguishable from a standard id and is read as one.)
        let id = match self.id {
            id @ 0x800..=CanFrame::EFF_MASK => id | CanFrame::EFF_FLAG,
            id => id,
        };
        if !CanFrame::is_valid_id(id) {
            return Err("id is neither 11-bit nor 29-bit with bit 31 (extended) set");
        }
        Ok(CanFrame {
            id,
            len: u8::try_from(hex.len() / 2).map_err(|_| bad_data)?,
            data,
        })
    }
}

/// What was decided about one frame, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub detections: DetectionsMsg,
    pub bev: BevProjection,
    pub tracks: Vec<Track>,
    pub decision: DecisionMsg,
}

/// Everything recorded at one frame time: the image (JPEG), what was decided, and the CAN
/// frames received / sent since the previous frame (with their own times).
pub struct FrameRecord<'a> {
    pub seq: u64,
    pub t_ns: u64,
    pub jpeg: Option<&'a [u8]>,
    pub outcome: Option<&'a Outcome>,
    pub can_rx: &'a [(u64, CanFrame)],
    pub can_tx: &'a [(u64, CanFrame)],
}

/// Serialises one frame's messages, in time order per channel: each CAN frame the DBC defines
/// also decoded on its message's topic, the outcome also as Foxglove scene updates.
pub fn encode_frame(r: &FrameRecord) -> Result<Vec<Encoded>, serde_json::Error> {
    let mut out = Vec::with_capacity(12 + 2 * (r.can_rx.len() + r.can_tx.len()));
    let msg = |channel: &str, t_ns: u64, data: Vec<u8>| Encoded {
        channel: channel_index(channel).unwrap_or(0),
        t_ns,
        data,
    };
    let can = |out: &mut Vec<Encoded>, frames: &[(u64, CanFrame)], tx: bool| {
        let raw = if tx { CAN_TX } else { CAN_RX };
        for (t, f) in frames {
            out.push(msg(raw, *t, serde_json::to_vec(&CanMsg::from_frame(f))?));
            if let Some(decoded) = can_signals::decode(f, tx) {
                let (message, data) = decoded?;
                out.push(Encoded {
                    channel: CAN_SIGNALS_FIRST_CHANNEL + message,
                    t_ns: *t,
                    data,
                });
            }
        }
        Ok::<(), serde_json::Error>(())
    };
    can(&mut out, r.can_rx, false)?;
    if let Some(jpeg) = r.jpeg {
        out.push(msg(
            CAMERA,
            r.t_ns,
            encode_compressed_image(r.t_ns, CAMERA_FRAME, "jpeg", jpeg),
        ));
    }
    if let Some(o) = r.outcome {
        out.push(msg(DETECTIONS, r.t_ns, serde_json::to_vec(&o.detections)?));
        out.push(msg(BEV, r.t_ns, serde_json::to_vec(&o.bev)?));
        out.push(msg(
            TRACKS,
            r.t_ns,
            serde_json::to_vec(&TracksRef { tracks: &o.tracks })?,
        ));
        out.push(msg(DECISION, r.t_ns, serde_json::to_vec(&o.decision)?));
        out.push(msg(
            ANNOTATIONS,
            r.t_ns,
            serde_json::to_vec(&image_annotations(r.t_ns, o))?,
        ));
        let [bev, tracks, corridor] = scene::frame(r.t_ns, o);
        out.push(msg(VIZ_BEV, r.t_ns, bev.encode_to_vec()));
        out.push(msg(VIZ_TRACKS, r.t_ns, tracks.encode_to_vec()));
        out.push(msg(VIZ_CORRIDOR, r.t_ns, corridor.encode_to_vec()));
    }
    can(&mut out, r.can_tx, true)?;
    Ok(out)
}

/// The `vehicle` → `camera` transform of a frame (`/tf`).
pub fn camera_transform(t_ns: u64, pose: &crate::camera::CameraPose) -> Encoded {
    Encoded {
        channel: channel_index(TF).unwrap_or(0),
        t_ns,
        data: crate::camera::transform(t_ns, pose, CAMERA_FRAME).encode_to_vec(),
    }
}

/// `foxglove.Time`.
#[derive(Serialize)]
struct Stamp {
    sec: u64,
    nsec: u64,
}

fn stamp(t_ns: u64) -> Stamp {
    Stamp {
        sec: t_ns / 1_000_000_000,
        nsec: t_ns % 1_000_000_000,
    }
}

/// `foxglove.Color`.
#[derive(Serialize, Clone, Copy)]
struct Colour {
    r: f64,
    g: f64,
    b: f64,
    a: f64,
}

fn colour(r: f64, g: f64, b: f64, a: f64) -> Colour {
    Colour { r, g, b, a }
}

/// `foxglove.Point2`.
#[derive(Serialize)]
struct Point2 {
    x: f64,
    y: f64,
}

/// `foxglove.PointsAnnotation` (a closed line loop: type 2).
#[derive(Serialize)]
struct PointsAnnotation {
    timestamp: Stamp,
    #[serde(rename = "type")]
    kind: u8,
    points: [Point2; 4],
    outline_color: Colour,
    outline_colors: [Colour; 0],
    fill_color: Colour,
    thickness: f64,
}

/// `foxglove.TextAnnotation`.
#[derive(Serialize)]
struct TextAnnotation {
    timestamp: Stamp,
    position: Point2,
    text: String,
    font_size: f64,
    text_color: Colour,
    background_color: Colour,
}

/// `foxglove.ImageAnnotations` (typed: serialised straight to JSON, no intermediate maps).
#[derive(Serialize)]
pub struct ImageAnnotations {
    circles: [Colour; 0],
    points: Vec<PointsAnnotation>,
    texts: Vec<TextAnnotation>,
}

/// `foxglove.ImageAnnotations`: a box (line loop) and a label per road-user detection, the
/// track id and ground distance when known, and the stage in the top-left corner.
pub fn image_annotations(t_ns: u64, o: &Outcome) -> ImageAnnotations {
    let mut points = Vec::new();
    let mut texts = Vec::new();
    let threat_det = o.decision.decision.threat.and_then(|t| t.detection);
    for (i, d) in o.detections.detections.iter().enumerate() {
        if d.class == adas_plugins::manifest::RoadUser::Ignored {
            continue;
        }
        let b = d.bbox;
        let bev = o.bev.objects.iter().position(|g| g.detection == i);
        let is_threat = bev.is_some() && bev == threat_det;
        let c = if is_threat {
            colour(1.0, 0.1, 0.1, 1.0)
        } else {
            colour(0.0, 0.8, 1.0, 1.0)
        };
        let point = |x: f32, y: f32| Point2 {
            x: f64::from(x),
            y: f64::from(y),
        };
        points.push(PointsAnnotation {
            timestamp: stamp(t_ns),
            kind: 2,
            points: [
                point(b.x1, b.y1),
                point(b.x2, b.y1),
                point(b.x2, b.y2),
                point(b.x1, b.y2),
            ],
            outline_color: c,
            outline_colors: [],
            fill_color: colour(0.0, 0.0, 0.0, 0.0),
            thickness: 2.0,
        });
        let mut text = format!("{} {:.2}", d.label, d.score);
        if let Some(g) = bev.and_then(|k| o.bev.objects.get(k)) {
            text.push_str(&format!(" {:.1}m", g.x_m));
            if let Some(t) = o.tracks.iter().find(|t| t.detection == bev && t.confirmed) {
                text = format!("#{} {text}", t.id);
            }
        }
        texts.push(TextAnnotation {
            timestamp: stamp(t_ns),
            position: point(b.x1, b.y1 - 4.0),
            text,
            font_size: 14.0,
            text_color: colour(1.0, 1.0, 1.0, 1.0),
            background_color: colour(0.0, 0.0, 0.0, 0.7),
        });
    }
    let d = &o.decision.decision;
    texts.push(TextAnnotation {
        timestamp: stamp(t_ns),
        position: Point2 { x: 8.0, y: 20.0 },
        text: format!("AEB {}", d.stage.as_str()),
        font_size: 18.0,
        text_color: if d.warning() {
            colour(1.0, 0.1, 0.1, 1.0)
        } else {
            colour(1.0, 1.0, 1.0, 1.0)
        },
        background_color: colour(0.0, 0.0, 0.0, 0.7),
    });
    ImageAnnotations {
        circles: [],
        points,
        texts,
    }
}

// --- protobuf, just enough for foxglove.CompressedImage ------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `foxglove.CompressedImage { timestamp = 1, data = 2, format = 3, frame_id = 4 }`.
pub fn encode_compressed_image(t_ns: u64, frame_id: &str, format: &str, data: &[u8]) -> Vec<u8> {
    let mut ts = Vec::with_capacity(12);
    let (sec, nsec) = (t_ns / 1_000_000_000, t_ns % 1_000_000_000);
    if sec != 0 {
        put_varint(&mut ts, 1 << 3);
        put_varint(&mut ts, sec);
    }
    if nsec != 0 {
        put_varint(&mut ts, 2 << 3);
        put_varint(&mut ts, nsec);
    }
    let mut out = Vec::with_capacity(data.len() + 32);
    put_bytes(&mut out, 1, &ts);
    put_bytes(&mut out, 4, frame_id.as_bytes());
    put_bytes(&mut out, 2, data);
    put_bytes(&mut out, 3, format.as_bytes());
    out
}

/// A decoded `foxglove.CompressedImage`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressedImage {
    pub t_ns: u64,
    pub format: String,
    pub data: Vec<u8>,
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One protobuf field: `(field, wire type, varint value, length-delimited bytes)`.
type Field<'a> = (u64, u64, u64, &'a [u8]);

/// Walks protobuf fields.
fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = get_varint(buf, &mut pos).ok_or("truncated field key")?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = get_varint(buf, &mut pos).ok_or("truncated varint")?;
                out.push((field, wire, v, &buf[0..0]));
            }
            2 => {
                let len = get_varint(buf, &mut pos).ok_or("truncated length")?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&e| e <= buf.len())
                    .ok_or("length past the end of the message")?;
                out.push((field, wire, 0, &buf[pos..end]));
                pos = end;
            }
            1 => pos = pos.checked_add(8).ok_or("overflow")?,
            5 => pos = pos.checked_add(4).ok_or("overflow")?,
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    if pos > buf.len() {
        return Err("fixed-size field past the end of the message".into());
    }
    Ok(out)
}

pub fn decode_compressed_image(buf: &[u8]) -> Result<CompressedImage, String> {
    let mut image = CompressedImage {
        t_ns: 0,
        format: String::new(),
        data: Vec::new(),
    };
    for (field, wire, _, bytes) in fields(buf)? {
        match (field, wire) {
            (1, 2) => {
                for (f, w, v, _) in fields(bytes)? {
                    match (f, w) {
                        (1, 0) => image.t_ns += v.saturating_mul(1_000_000_000),
                        (2, 0) => image.t_ns += v,
                        _ => {}
                    }
                }
            }
            (2, 2) => image.data = bytes.to_vec(),
            (3, 2) => image.format = String::from_utf8_lossy(bytes).into_owned(),
            _ => {}
        }
    }
    Ok(image)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_once_and_each_dbc_message_at_its_index() {
        let topics: std::collections::BTreeSet<_> = channels().iter().map(|c| &c.topic).collect();
        assert_eq!(topics.len(), channels().len());
        assert_eq!(channels().len(), CAN_SIGNALS_FIRST_CHANNEL + MESSAGES.len());
        for (i, m) in MESSAGES.iter().enumerate() {
            assert_eq!(
                channels()[CAN_SIGNALS_FIRST_CHANNEL + i].topic,
                can_signals::topic(m)
            );
        }
        // The eight topics of format 1 keep their channel ids.
        let first: Vec<&str> = channels()[..8].iter().map(|c| c.topic.as_ref()).collect();
        assert_eq!(
            first,
            [
                CAMERA,
                ANNOTATIONS,
                DETECTIONS,
                BEV,
                TRACKS,
                DECISION,
                CAN_RX,
                CAN_TX
            ]
        );
    }

    #[test]
    fn compressed_image_round_trips() {
        let data = vec![0xFF, 0xD8, 1, 2, 3];
        let enc = encode_compressed_image(12_345_678_901, "camera", "jpeg", &data);
        let dec = decode_compressed_image(&enc).unwrap();
        assert_eq!(dec.t_ns, 12_345_678_901);
        assert_eq!(dec.format, "jpeg");
        assert_eq!(dec.data, data);
        assert!(decode_compressed_image(&enc[..enc.len() - 3]).is_err());
    }

    #[test]
    fn can_message_round_trips() {
        let f = CanFrame {
            id: 0x1A0,
            len: 3,
            data: [1, 0xAB, 0xFF, 0, 0, 0, 0, 0],
        };
        let m = CanMsg::from_frame(&f);
        assert_eq!(m.data, "01ABFF");
        assert_eq!(m.to_frame(), Ok(f));
        // Standard frames are written as they always were.
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"id":416,"data":"01ABFF"}"#
        );
        let ext = CanFrame {
            id: 0x0A0 | CanFrame::EFF_FLAG,
            ..f
        };
        let m = CanMsg::from_frame(&ext);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"id":2147483808,"data":"01ABFF"}"#
        );
        assert_eq!(m.to_frame(), Ok(ext));
        // An old recording's flagless extended id, and ids no frame has.
        let old = CanMsg {
            id: 0x18DA_F110,
            data: String::new(),
        };
        assert_eq!(old.to_frame().unwrap().id, 0x18DA_F110 | CanFrame::EFF_FLAG);
        for id in [0x2000_0000, 0x4000_00A0 | CanFrame::EFF_FLAG] {
            assert!(CanMsg {
                id,
                data: String::new()
            }
            .to_frame()
            .is_err());
        }
        assert!(CanMsg {
            id: 1,
            data: "0".into()
        }
        .to_frame()
        .is_err());
    }
}
