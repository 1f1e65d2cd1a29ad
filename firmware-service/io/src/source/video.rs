//! Video files: MP4/MOV with an H.264 track (`file://drive.mp4`) and raw Annex-B H.264
//! (`file://drive.h264`), decoded frame by frame with OpenH264 (the `openh264` crate builds it
//! from source: no system library, no ffmpeg).
//!
//! **MP4.** The top-level boxes are walked with seeks (the `mdat` is never read through), the
//! `moov` box alone is parsed with `mp4parse` (Firefox's demuxer) and the first H.264 video track
//! is decoded; other tracks (AAC audio, a second video) are ignored. Samples hold length-prefixed
//! NAL units (AVCC): each is rewritten to Annex B, and the SPS/PPS of the `avcC` box go to the
//! decoder before the first sample. One sample is one frame.
//!
//! **Time.** Unless the config gives `fps` or `timestamps`, a frame's capture time is its
//! sample's composition (presentation) time from the container (`stts` + `ctts`), minus the first
//! frame's, so the first frame is at 0. `fps` replaces the container times with `i / fps`
//! (e.g. to replay a time-lapse at its real rate); `timestamps` gives one time per frame. Streams
//! whose presentation order differs from the decode order (B-frames) are refused: the decoder's
//! output order could not be tied to the samples' times. A raw `.h264` stream carries no times:
//! `fps` (default 10, as for image sequences) or `timestamps`.
//!
//! **Colour.** YUV 4:2:0 → RGB by openh264's `write_rgb8`: limited-range ("TV", Y 16–235)
//! **BT.601** (Kr 0.299, Kb 0.114), chroma nearest-neighbour (no interpolation). openh264 picks
//! its implementation at run time — AVX2 integer maths on x86-64 CPUs that have AVX2, portable
//! SIMD otherwise (e.g. aarch64), float scalar code when the width is not a multiple of 8 — and
//! these differ by up to 1 level: the RGB of a video is the same on every run on one machine, not
//! bit-identical across CPU types (the decoded YUV is). The stream's own colour description (VUI:
//! BT.709 for most HD cameras, full range) is not applied: BT.709 material comes out with
//! slightly shifted hues, as it does from the `yuyv` camera path (`yuv.rs`, also BT.601).
//!
//! Nothing here panics on any input: a damaged file is a [`SourceError`] at open, a damaged
//! sample a [`FrameError`] for that frame (the next frames are still decoded; those that refer to
//! the damaged one may fail too, up to the next keyframe).

use super::{Frame, FrameError, FrameSource, SourceError, Timing};
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Largest `moov` box read; its sample tables take about 12–20 bytes per sample.
const MAX_MOOV_BYTES: u64 = 64 << 20;
/// Largest sample (access unit) read; an intra-coded 4K frame is a few MB.
const MAX_SAMPLE_BYTES: u64 = 64 << 20;
/// Most frames a file may index (22 h at 25 fps): bounds the memory a damaged index can ask for
/// (mp4parse's sample table takes 48 bytes per frame).
const MAX_FRAMES: u64 = 2_000_000;
/// Largest picture converted (8192 × 8192 pixels).
const MAX_PIXELS: usize = 8192 * 8192;

/// How a video file's bytes are organised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoKind {
    /// ISO base media file (MP4, M4V, QuickTime MOV).
    Mp4,
    /// Raw H.264 elementary stream with start codes (Annex B), as `.h264` / `.264`.
    AnnexB,
}

impl VideoKind {
    /// By file extension: `.h264`/`.264` are raw streams, the rest MP4.
    pub fn of_path(path: &Path) -> VideoKind {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("h264" | "264") => VideoKind::AnnexB,
            _ => VideoKind::Mp4,
        }
    }
}

trait Input: Read + Seek {}
impl<T: Read + Seek> Input for T {}

/// Where one frame's bytes are in the file.
#[derive(Debug, Clone, Copy)]
struct Unit {
    offset: u64,
    len: u64,
}

/// A video file as a [`FrameSource`].
pub struct VideoFile {
    name: String,
    input: Box<dyn Input>,
    input_len: u64,
    units: Vec<Unit>,
    /// The container's picture size, when it has one.
    size: Option<(u32, u32)>,
    /// MP4: bytes of each NAL unit's length prefix; `None`: Annex B as it is.
    nal_length_size: Option<usize>,
    times_ns: Vec<u64>,
    decoder: Decoder,
    /// The decoder holds each picture back until the next one is decoded (not Baseline).
    reorders: bool,
    /// Frames whose pictures the decoder holds, oldest first.
    in_decoder: VecDeque<usize>,
    /// Frames decoded (or failed) but not yet returned; at most a couple.
    done: BTreeMap<usize, Result<Picture, String>>,
    /// The next frame to feed the decoder, and the next to return.
    next_feed: usize,
    next_out: usize,
    flushed: bool,
    /// Keep each picture's YUV planes too (tests compare them with a reference decoder).
    keep_planes: bool,
    raw: Vec<u8>,
    annexb: Vec<u8>,
}

/// A decoded frame.
struct Picture {
    image: image::RgbImage,
    #[cfg_attr(not(test), allow(dead_code))]
    planes: Option<Planes>,
}

/// A picture's 4:2:0 planes without stride padding.
#[cfg_attr(not(test), allow(dead_code))]
struct Planes {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

/// A frame's place, time and name, before its picture.
struct Slot {
    seq: u64,
    t_capture_ns: u64,
    origin: String,
}

impl Slot {
    fn error(self, message: String) -> FrameError {
        FrameError {
            seq: self.seq,
            t_capture_ns: self.t_capture_ns,
            origin: self.origin,
            message,
        }
    }
}

fn open_error(name: &str, message: impl Into<String>) -> SourceError {
    SourceError::Open {
        path: PathBuf::from(name),
        message: message.into(),
    }
}

impl VideoFile {
    /// Opens `path`: MP4 or raw H.264 by extension (`.h264`/`.264` raw), or, for another
    /// extension, by its first bytes.
    pub fn open(path: &Path, timing: Timing) -> Result<Self, SourceError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| {
            open_error(
                &name,
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "no such file ({e}); check [source] uri (a relative path is resolved \
                         against the config file's folder)"
                    )
                } else {
                    format!("cannot open the video: {e}")
                },
            )
        })?;
        let len = file
            .metadata()
            .map_err(|e| open_error(&name, format!("cannot read the file's size: {e}")))?
            .len();
        let mut input = std::io::BufReader::new(file);
        let kind = if super::is_video_path(path) {
            VideoKind::of_path(path)
        } else {
            let mut head = [0u8; 4];
            let n = input.read(&mut head).unwrap_or(0);
            if head[..n].starts_with(&[0, 0, 1]) || head[..n].starts_with(&[0, 0, 0, 1]) {
                VideoKind::AnnexB
            } else {
                VideoKind::Mp4
            }
        };
        Self::from_reader(&name, input, len, kind, timing)
    }

    /// A video held by any reader of `len` bytes; `name` stands for it in messages and origins.
    pub fn from_reader(
        name: &str,
        input: impl Read + Seek + 'static,
        len: u64,
        kind: VideoKind,
        timing: Timing,
    ) -> Result<Self, SourceError> {
        let mut input: Box<dyn Input> = Box::new(input);
        if len == 0 {
            return Err(open_error(
                name,
                "empty file (0 bytes), not a video; was the recording stopped before anything \
                 was written?",
            ));
        }
        let demuxed = match kind {
            VideoKind::Mp4 => mp4_track(&mut input, len).map_err(|m| open_error(name, m))?,
            VideoKind::AnnexB => annexb_units(&mut input, len).map_err(|m| open_error(name, m))?,
        };
        let frames = demuxed.units.len();
        let beyond = demuxed
            .units
            .iter()
            .filter(|u| u.offset.saturating_add(u.len) > len)
            .count();
        if beyond > 0 {
            tracing::warn!(
                "{name}: the file is truncated: {beyond} of its {frames} frames lie past its end \
                 and will be reported as unreadable"
            );
        }
        let times_ns = match timing {
            Timing::FixedRate(fps) => super::fixed_rate_ns(frames, fps),
            Timing::File(path) => super::images::read_timestamps(&path, frames)?,
            Timing::FromSource { fallback_fps } => match demuxed.times {
                Some(times) => container_times(&times).map_err(|m| open_error(name, m))?,
                None => super::fixed_rate_ns(frames, fallback_fps),
            },
        };
        // No flush after each decode: for streams other than Baseline, OpenH264 holds every
        // picture in its reordering queue until the next one is decoded, and taking it out early
        // (openh264's `Flush`, i.e. `FlushFrame`) does not release its buffer (OpenH264 2.7,
        // single-threaded: `ReleaseBufferedReadyPictureNoReorder` without a context), so after
        // `max_num_ref_frames + 2` frames the decoder fails with dsOutOfMemory. Instead a frame's
        // picture is taken when the next frame is decoded, and the last one by a flush at the end.
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let mut decoder =
            Decoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| {
                open_error(
                    name,
                    format!("cannot start the H.264 decoder (OpenH264): {e}"),
                )
            })?;
        if !demuxed.parameter_sets.is_empty() {
            decoder.decode(&demuxed.parameter_sets).map_err(|e| {
                open_error(
                    name,
                    format!(
                        "the decoder refuses the SPS/PPS of the avcC box ({e}): the file is \
                         damaged or uses H.264 features OpenH264 does not decode"
                    ),
                )
            })?;
        }
        Ok(VideoFile {
            name: name.to_string(),
            input,
            input_len: len,
            units: demuxed.units,
            size: demuxed.size,
            nal_length_size: demuxed.nal_length_size,
            times_ns,
            decoder,
            reorders: demuxed.profile_idc != Some(66),
            in_decoder: VecDeque::new(),
            done: BTreeMap::new(),
            next_feed: 0,
            next_out: 0,
            flushed: false,
            keep_planes: false,
            raw: Vec::new(),
            annexb: Vec::new(),
        })
    }

    /// Reads frame `unit` into `self.annexb` as Annex B.
    fn read_unit(&mut self, unit: Unit) -> Result<(), String> {
        let end = unit.offset.saturating_add(unit.len);
        if end > self.input_len {
            return Err(format!(
                "its bytes {}..{end} lie past the end of the {}-byte file: the file is truncated",
                unit.offset, self.input_len
            ));
        }
        if unit.len > MAX_SAMPLE_BYTES {
            return Err(format!(
                "{} bytes for one frame (more than {MAX_SAMPLE_BYTES}): damaged sample table",
                unit.len
            ));
        }
        let target = match self.nal_length_size {
            Some(_) => &mut self.raw,
            None => &mut self.annexb,
        };
        target.clear();
        target.resize(unit.len as usize, 0);
        self.input
            .seek(SeekFrom::Start(unit.offset))
            .and_then(|_| self.input.read_exact(target))
            .map_err(|e| format!("cannot read its {} bytes: {e}", unit.len))?;
        if let Some(n) = self.nal_length_size {
            avcc_to_annexb(&self.raw, n, &mut self.annexb)?;
        }
        Ok(())
    }

    /// Feeds frame `index` to the decoder; files what comes out under the frame it belongs to.
    fn feed(&mut self, index: usize) {
        let Some(&unit) = self.units.get(index) else {
            return;
        };
        if let Err(message) = self.read_unit(unit) {
            self.done.insert(index, Err(message));
            return;
        }
        let held = self.in_decoder.len();
        match self.decoder.decode(&self.annexb) {
            Ok(Some(yuv)) => {
                // Streams without reordering give each picture at once; the others give the
                // oldest held picture (no B-frames: decode order is display order) and hold
                // this one.
                let owner = match self.in_decoder.pop_front() {
                    Some(older) if self.reorders => {
                        self.in_decoder.push_back(index);
                        older
                    }
                    _ => index,
                };
                let picture = picture(&yuv, self.keep_planes);
                self.done.insert(owner, picture);
            }
            Ok(None) if self.reorders && held == 0 => self.in_decoder.push_back(index),
            Ok(None) => {
                self.done.insert(
                    index,
                    Err(
                        "the decoder made no picture of this frame (no complete picture in \
                         it, or it depends on a damaged one)"
                            .into(),
                    ),
                );
            }
            Err(e) => {
                self.done.insert(
                    index,
                    Err(format!(
                        "damaged H.264 data, frame skipped ({e}); the frames after it may fail \
                         too, up to the next keyframe"
                    )),
                );
            }
        }
    }

    /// After the last frame: the pictures the decoder still holds.
    fn flush(&mut self) {
        self.flushed = true;
        let keep_planes = self.keep_planes;
        let pictures: Vec<Result<Picture, String>> = match self.decoder.flush_remaining() {
            Ok(yuvs) => yuvs.iter().map(|yuv| picture(yuv, keep_planes)).collect(),
            Err(e) => {
                tracing::warn!("{}: flushing the decoder failed: {e}", self.name);
                Vec::new()
            }
        };
        for picture in pictures {
            if let Some(owner) = self.in_decoder.pop_front() {
                self.done.insert(owner, picture);
            }
        }
        self.in_decoder.clear();
    }

    /// The next frame's slot and picture (or why there is none).
    fn next_picture(&mut self) -> Option<(Slot, Result<Picture, String>)> {
        let index = self.next_out;
        if index >= self.units.len() {
            return None;
        }
        self.next_out += 1;
        let slot = Slot {
            seq: index as u64,
            t_capture_ns: self.times_ns.get(index).copied().unwrap_or_default(),
            origin: format!("{}#frame {index}", self.name),
        };
        loop {
            if let Some(result) = self.done.remove(&index) {
                return Some((slot, result));
            }
            if index < self.next_feed && !self.in_decoder.contains(&index) {
                return Some((
                    slot,
                    Err("the decoder returned no picture for this frame".into()),
                ));
            }
            if self.next_feed < self.units.len() {
                self.feed(self.next_feed);
                self.next_feed += 1;
            } else if !self.flushed {
                self.flush();
            } else {
                return Some((
                    slot,
                    Err("the decoder returned no picture for this frame".into()),
                ));
            }
        }
    }
}

impl FrameSource for VideoFile {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let (slot, picture) = self.next_picture()?;
        Some(match picture {
            Ok(p) => Ok(Frame {
                seq: slot.seq,
                t_capture_ns: slot.t_capture_ns,
                image: p.image,
                origin: slot.origin,
            }),
            Err(message) => Err(slot.error(message)),
        })
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.units.len())
    }

    fn frame_size(&self) -> Option<(u32, u32)> {
        self.size
    }
}

/// Size and strides of a decoded picture, checked so that reading its planes stays in bounds.
fn checked_geometry(yuv: &DecodedYUV<'_>) -> Result<(usize, usize), String> {
    let (w, h) = yuv.dimensions();
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 {
        return Err(format!(
            "the decoded picture is {w}×{h}: an odd or empty size, which 4:2:0 → RGB does not \
             handle; crop or scale the video to an even width and height"
        ));
    }
    if w * h > MAX_PIXELS {
        return Err(format!(
            "the decoded picture is {w}×{h}: larger than 8192×8192"
        ));
    }
    let (sy, su, sv) = yuv.strides();
    let fits = |plane: &[u8], stride: usize, width: usize, rows: usize| {
        stride >= width && plane.len() >= stride * (rows - 1) + width
    };
    if !(fits(yuv.y(), sy, w, h)
        && fits(yuv.u(), su, w / 2, h / 2)
        && fits(yuv.v(), sv, w / 2, h / 2))
    {
        return Err("the decoder returned an inconsistent picture buffer".into());
    }
    Ok((w, h))
}

/// RGB (and, if asked, the planes) of a decoded picture.
fn picture(yuv: &DecodedYUV<'_>, keep_planes: bool) -> Result<Picture, String> {
    let (w, h) = checked_geometry(yuv)?;
    let mut rgb = vec![0u8; w * h * 3];
    // Limited-range BT.601, nearest-neighbour chroma (see the module comment).
    yuv.write_rgb8(&mut rgb);
    let image = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| format!("cannot make a {w}×{h} RGB image"))?;
    let planes = keep_planes.then(|| {
        let (sy, su, sv) = yuv.strides();
        let copy = |plane: &[u8], stride: usize, width: usize, rows: usize| -> Vec<u8> {
            let mut out = Vec::with_capacity(width * rows);
            for row in plane.chunks(stride).take(rows) {
                out.extend_from_slice(row.get(..width).unwrap_or(row));
            }
            out
        };
        Planes {
            width: w,
            height: h,
            y: copy(yuv.y(), sy, w, h),
            u: copy(yuv.u(), su, w / 2, h / 2),
            v: copy(yuv.v(), sv, w / 2, h / 2),
        }
    });
    Ok(Picture { image, planes })
}

/// Rewrites one MP4 sample (NAL units each behind an `n`-byte big-endian length) as Annex B.
fn avcc_to_annexb(sample: &[u8], n: usize, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut rest = sample;
    while !rest.is_empty() {
        if rest.len() < n {
            return Err(format!(
                "the sample ends inside a NAL unit's length field ({} of {n} bytes): damaged sample",
                rest.len()
            ));
        }
        let (prefix, tail) = rest.split_at(n);
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len > tail.len() {
            return Err(format!(
                "a NAL unit of {len} bytes with {} bytes left in the sample: damaged sample",
                tail.len()
            ));
        }
        let (nal, tail) = tail.split_at(len);
        if !nal.is_empty() {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        rest = tail;
    }
    if out.is_empty() {
        return Err("the sample holds no NAL unit".into());
    }
    Ok(())
}

/// Capture times from composition times (track ticks per second, ticks).
fn container_times(times: &(u64, Vec<i64>)) -> Result<Vec<u64>, String> {
    let (timescale, ticks) = times;
    let first = ticks.first().copied().unwrap_or_default();
    let mut out = Vec::with_capacity(ticks.len());
    for (i, &t) in ticks.iter().enumerate() {
        if i > 0 && t <= ticks[i - 1] {
            return Err(format!(
                "frames {} and {i} have the same presentation time in the file: its timing is \
                 damaged; give [source] fps to use a fixed rate instead",
                i - 1
            ));
        }
        let since_first = u128::try_from(i128::from(t) - i128::from(first)).unwrap_or(0);
        let ns =
            (since_first * 1_000_000_000 + u128::from(*timescale / 2)) / u128::from(*timescale);
        out.push(u64::try_from(ns).map_err(|_| format!("frame {i}'s time is out of range"))?);
    }
    Ok(out)
}

/// What the demuxer found: frame byte ranges, optional (timescale, composition ticks), the
/// parameter sets to feed first, the NAL length size (MP4).
struct Demuxed {
    units: Vec<Unit>,
    /// The picture size the container declares (MP4 sample entry); raw H.264 has none.
    size: Option<(u32, u32)>,
    profile_idc: Option<u8>,
    times: Option<(u64, Vec<i64>)>,
    parameter_sets: Vec<u8>,
    nal_length_size: Option<usize>,
}

// ------------------------------------------------------------------------------------------------
// MP4

/// A top-level box: type, offset, header length, total size (may reach past the end).
struct TopBox {
    kind: [u8; 4],
    offset: u64,
    header: u64,
    size: u64,
}

const TOP_LEVEL_KINDS: [&[u8; 4]; 14] = [
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"styp", b"sidx",
    b"moof", b"mfra", b"meta", b"udta",
];

fn fourcc(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// The top-level boxes, and why the walk stopped before the end of the file (truncated or
/// damaged), if it did.
fn top_level_boxes(
    input: &mut dyn Input,
    len: u64,
) -> Result<(Vec<TopBox>, Option<String>), String> {
    let mut boxes: Vec<TopBox> = Vec::new();
    let mut offset = 0u64;
    while offset < len {
        let mut head = [0u8; 16];
        let available = (len - offset).min(16) as usize;
        input
            .seek(SeekFrom::Start(offset))
            .and_then(|_| input.read_exact(&mut head[..available]))
            .map_err(|e| format!("cannot read at byte {offset}: {e}"))?;
        let kind = [head[4], head[5], head[6], head[7]];
        if boxes.is_empty() && (available < 8 || !TOP_LEVEL_KINDS.contains(&&kind)) {
            let shown: Vec<String> = head[..available.min(8)]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            return Err(format!(
                "not an MP4/MOV file: it starts with bytes {} where an MP4 has a box such as \
                 `ftyp`; is it another format (AVI, MKV, TS)? Convert it to MP4 with H.264, or \
                 name a raw H.264 stream .h264",
                shown.join(" ")
            ));
        }
        let truncated = |inside: &str| {
            Some(format!(
                "the file ends inside its {inside} at byte {len}: it is truncated"
            ))
        };
        if available < 8 {
            return Ok((boxes, truncated("last box header")));
        }
        if !kind.iter().all(|&b| b.is_ascii_graphic() || b == b' ') {
            let damaged = format!(
                "its box structure is damaged at byte {offset} (box type `{}`)",
                fourcc(&kind)
            );
            return Ok((boxes, Some(damaged)));
        }
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let (size, header) = match size32 {
            0 => (len - offset, 8),
            1 if available == 16 => (
                u64::from_be_bytes([
                    head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
                ]),
                16,
            ),
            1 => return Ok((boxes, truncated("last box header"))),
            s => (u64::from(s), 8),
        };
        if size < header {
            let damaged = format!(
                "its box structure is damaged at byte {offset} (box `{}` of size {size})",
                fourcc(&kind)
            );
            return Ok((boxes, Some(damaged)));
        }
        boxes.push(TopBox {
            kind,
            offset,
            header,
            size,
        });
        match offset.checked_add(size) {
            Some(next) if next <= len => offset = next,
            _ => return Ok((boxes, truncated(&format!("`{}` box", fourcc(&kind))))),
        }
    }
    Ok((boxes, None))
}

/// Finds, parses and checks the first H.264 video track.
fn mp4_track(input: &mut dyn Input, len: u64) -> Result<Demuxed, String> {
    let (boxes, stopped) = top_level_boxes(input, len)?;
    let Some(moov) = boxes.iter().find(|b| &b.kind == b"moov") else {
        let why = stopped.unwrap_or_else(|| "it is not a complete MP4 file".into());
        return Err(format!(
            "no `moov` box (the index of the frames): {why}. A recording cut short (power \
             loss, full card) has none; use a complete copy, or let the camera's software or a \
             repair tool (untrunc) rebuild the index"
        ));
    };
    if boxes.iter().any(|b| &b.kind == b"moof") {
        return Err(
            "a fragmented MP4 (`moof` boxes), which adasd does not read; remux it into a \
                    plain MP4 without re-encoding, e.g. `ffmpeg -i IN -c copy OUT.mp4`"
                .into(),
        );
    }
    if moov.offset.saturating_add(moov.size) > len {
        return Err(format!(
            "truncated: the `moov` box (the index of the frames) needs {} bytes from byte {} but \
             the file has {len}; use a complete copy",
            moov.size, moov.offset
        ));
    }
    if moov.size > MAX_MOOV_BYTES {
        return Err(format!(
            "the `moov` box is {} bytes, more than {MAX_MOOV_BYTES} adasd reads: damaged file?",
            moov.size
        ));
    }
    let mut moov_bytes = vec![0u8; moov.size as usize];
    input
        .seek(SeekFrom::Start(moov.offset))
        .and_then(|_| input.read_exact(&mut moov_bytes))
        .map_err(|e| format!("cannot read the `moov` box: {e}"))?;
    check_table_counts(moov_bytes.get(moov.header as usize..).unwrap_or_default())?;
    let context = mp4parse::read_mp4(&mut std::io::Cursor::new(&moov_bytes)).map_err(|e| {
        format!("cannot read the `moov` box (the index of the frames): {e}; the file is damaged")
    })?;

    let h264 = context.tracks.iter().find_map(|track| {
        let description = track.stsd.as_ref()?.descriptions.first()?;
        match description {
            mp4parse::SampleEntry::Video(v) if v.codec_type == mp4parse::CodecType::H264 => {
                match &v.codec_specific {
                    mp4parse::VideoCodecSpecific::AVCConfig(avcc) => Some((track, v, avcc)),
                    _ => None,
                }
            }
            _ => None,
        }
    });
    let Some((track, entry, avcc)) = h264 else {
        let header = moov.header as usize;
        let found = track_codecs(moov_bytes.get(header..).unwrap_or_default());
        let listed = if found.is_empty() {
            "no tracks".to_string()
        } else {
            found.join(", ")
        };
        return Err(format!(
            "no H.264 video track (the file has: {listed}); adasd decodes H.264 only: re-encode \
             the video, e.g. `ffmpeg -i IN -c:v libx264 -bf 0 -an OUT.mp4`, or export its frames \
             as JPEG files and use dir://"
        ));
    };
    let descriptions = track.stsd.as_ref().map_or(0, |s| s.descriptions.len());
    if descriptions != 1 {
        return Err(format!(
            "the H.264 track has {descriptions} sample descriptions (its parameters change \
             mid-file), which adasd does not read; re-encode it into one stream"
        ));
    }
    let config = parse_avcc(avcc.as_slice())?;
    if entry.width % 2 == 1 || entry.height % 2 == 1 || entry.width == 0 || entry.height == 0 {
        return Err(format!(
            "the video is {}×{}: an odd or empty size, which 4:2:0 → RGB does not handle; crop \
             or scale it to an even width and height",
            entry.width, entry.height
        ));
    }
    let timescale = match track.timescale {
        Some(mp4parse::TrackTimeScale(t, _)) if t > 0 => t,
        _ => return Err("the H.264 track has no time scale (`mdhd`): damaged file".into()),
    };
    check_sample_count(track, len)?;
    let table =
        mp4parse::unstable::create_sample_table(track, mp4parse::unstable::CheckedInteger(0))
            .ok_or(
                "the H.264 track's sample tables (stsc, stco, stsz, stts) disagree: damaged file",
            )?;
    if table.is_empty() {
        return Err("the H.264 track has no frames".into());
    }
    let mut units = Vec::with_capacity(table.len());
    let mut ticks = Vec::with_capacity(table.len());
    for (i, s) in table.iter().enumerate() {
        let (start, end) = (s.start_offset.0, s.end_offset.0);
        units.push(Unit {
            offset: start,
            len: end.saturating_sub(start),
        });
        let t = s.start_composition.0;
        if ticks.last().is_some_and(|&last| t < last) {
            return Err(format!(
                "the video has B-frames (frame {i} is shown before frame {}, which is decoded \
                 first), which adasd does not decode; re-encode without B-frames, e.g. `ffmpeg -i \
                 IN -c:v libx264 -bf 0 -an OUT.mp4`",
                i - 1
            ));
        }
        ticks.push(t);
    }
    Ok(Demuxed {
        units,
        size: Some((u32::from(entry.width), u32::from(entry.height))),
        profile_idc: Some(config.profile_idc),
        times: Some((timescale, ticks)),
        parameter_sets: config.parameter_sets,
        nal_length_size: Some(config.nal_length_size),
    })
}

/// The number of samples mp4parse's `create_sample_table` reserves room for: its walk of the
/// `stsc` runs over the `stco` chunks, repeated here step by step (it stops at the first empty or
/// invalid run), so that a damaged table is refused before it asks for gigabytes.
fn stsc_sample_total(stsc: &[mp4parse::SampleToChunk], chunks: usize) -> u64 {
    let mut remain = u32::try_from(chunks).unwrap_or(u32::MAX);
    let mut total = 0u64;
    let mut i = 0;
    loop {
        let (run, per_chunk) = loop {
            let Some(entry) = stsc.get(i) else {
                return total;
            };
            i += 1;
            match stsc.get(i) {
                Some(peek) if entry.first_chunk == peek.first_chunk => continue,
                Some(peek) if entry.first_chunk > 0 && peek.first_chunk > 0 => {
                    break (
                        peek.first_chunk.saturating_sub(entry.first_chunk),
                        entry.samples_per_chunk,
                    );
                }
                None if entry.first_chunk > 0
                    && entry.first_chunk.checked_add(remain).is_some() =>
                {
                    break (remain, entry.samples_per_chunk);
                }
                _ => return total,
            }
        };
        if run == 0 || run > remain {
            return total;
        }
        remain -= run;
        total = total.saturating_add(u64::from(run) * u64::from(per_chunk));
    }
}

/// Refuses sample tables that describe more frames than the file can hold.
fn check_sample_count(track: &mp4parse::Track, file_len: u64) -> Result<(), String> {
    let (Some(stsc), Some(stco), Some(stsz)) = (&track.stsc, &track.stco, &track.stsz) else {
        return Err("the H.264 track has no sample tables (stsc, stco, stsz): damaged file".into());
    };
    let total = stsc_sample_total(stsc.samples.as_slice(), stco.offsets.len());
    let sizes = stsz.sample_sizes.len() as u64;
    // Every sample has at least one byte.
    let limit = if stsz.sample_size == 0 {
        sizes
    } else {
        file_len
    };
    if total > limit.min(MAX_FRAMES) {
        return Err(format!(
            "the sample tables describe {total} frames (`stsz`: {}), more than the file can \
             hold or adasd reads ({MAX_FRAMES}): damaged file",
            if stsz.sample_size == 0 {
                format!("{sizes} sizes")
            } else {
                "one size for all".into()
            }
        ));
    }
    Ok(())
}

/// `handler codec` for each track of a `moov` box's content, e.g. "video `hvc1` (H.265/HEVC)".
fn track_codecs(moov: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for trak in children(moov, b"trak") {
        let Some(mdia) = children(trak, b"mdia").next() else {
            continue;
        };
        let handler = children(mdia, b"hdlr")
            .next()
            .and_then(|h| h.get(8..12))
            .map(|h| match h {
                b"vide" => "video".to_string(),
                b"soun" => "audio".to_string(),
                b"text" | b"sbtl" | b"subt" => "subtitles".to_string(),
                b"meta" => "metadata".to_string(),
                other => format!("`{}`", String::from_utf8_lossy(other)),
            })
            .unwrap_or_else(|| "unknown".into());
        let codec = children(mdia, b"minf")
            .next()
            .and_then(|m| children(m, b"stbl").next())
            .and_then(|s| children(s, b"stsd").next())
            .and_then(|s| s.get(12..16))
            .and_then(|k| <[u8; 4]>::try_from(k).ok());
        out.push(match codec {
            Some(k) => format!("{handler} `{}`{}", fourcc(&k), codec_name(&k)),
            None => handler,
        });
    }
    out
}

fn codec_name(kind: &[u8; 4]) -> &'static str {
    match kind {
        b"avc1" | b"avc3" => " (H.264)",
        b"hvc1" | b"hev1" => " (H.265/HEVC)",
        b"av01" => " (AV1)",
        b"vp09" => " (VP9)",
        b"vp08" => " (VP8)",
        b"mp4v" => " (MPEG-4 Part 2)",
        b"jpeg" | b"mjpa" | b"mjpb" => " (Motion JPEG)",
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" => " (ProRes)",
        b"encv" | b"enca" => " (encrypted)",
        b"mp4a" => " (AAC)",
        b"Opus" => " (Opus)",
        b"ac-3" => " (AC-3)",
        b"lpcm" | b"sowt" | b"twos" => " (PCM)",
        _ => "",
    }
}

/// The child boxes (type, content) in `data` (a box's content); stops at the first malformed
/// header or at a box that reaches past the end of `data` (which it yields cut short).
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (header, size) = match size {
            0 => (8, rest.len()),
            1 => {
                let large = rest.get(8..16)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                (16, usize::try_from(u64::from_be_bytes(b)).ok()?)
            }
            s => (8, s),
        };
        if size < header {
            rest = &[];
            return None;
        }
        // A box that claims more than its parent holds is cut at the parent's end (as mp4parse
        // reads it) and ends the walk.
        let (whole, tail) = rest.split_at(size.min(rest.len()));
        rest = if size > whole.len() { &[] } else { tail };
        Some((kind, whole.get(header..).unwrap_or_default()))
    })
}

/// The contents of the child boxes of type `kind` in `data`.
fn children<'a>(data: &'a [u8], kind: &'a [u8; 4]) -> impl Iterator<Item = &'a [u8]> + 'a {
    boxes(data)
        .filter(move |(k, _)| k == kind)
        .map(|(_, body)| body)
}

/// Checks that every table of the `moov` content claims no more entries than its box holds.
/// mp4parse reserves memory for the claimed count before reading the entries: without this, a
/// damaged count (up to 2³² entries) asks for gigabytes at once.
fn check_table_counts(data: &[u8]) -> Result<(), String> {
    let be32 = |b: &[u8], at: usize| -> u64 {
        b.get(at..at + 4).map_or(0, |x| {
            u64::from(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        })
    };
    for (kind, body) in boxes(data) {
        let len = body.len() as u64;
        // (entry count, bytes per entry, where the entries start)
        let claim = match &kind {
            b"trak" | b"edts" | b"mdia" | b"minf" | b"stbl" => {
                check_table_counts(body)?;
                None
            }
            b"stts" | b"ctts" | b"co64" => Some((be32(body, 4), 8, 8)),
            b"stsc" => Some((be32(body, 4), 12, 8)),
            b"stss" | b"stco" => Some((be32(body, 4), 4, 8)),
            b"stsd" => Some((be32(body, 4), 8, 8)),
            b"elst" => Some((
                be32(body, 4),
                if body.first() == Some(&1) { 20 } else { 12 },
                8,
            )),
            b"stsz" if be32(body, 4) == 0 => Some((be32(body, 8), 4, 12)),
            // 4-, 8- or 16-bit entries: half a byte at least.
            b"stz2" => Some((be32(body, 8) / 2, 1, 12)),
            b"pssh" if body.first().is_some_and(|&v| v > 0) => Some((be32(body, 20), 16, 24)),
            _ => None,
        };
        if let Some((count, size, start)) = claim {
            if count.saturating_mul(size) > len.saturating_sub(start) {
                return Err(format!(
                    "its `{}` table claims {count} entries in a {len}-byte box: the index of the \
                     frames is damaged",
                    fourcc(&kind)
                ));
            }
        }
    }
    Ok(())
}

/// The `avcC` box's content: profile, NAL length size, SPS and PPS.
struct AvcConfig {
    profile_idc: u8,
    nal_length_size: usize,
    /// SPS and PPS as Annex B.
    parameter_sets: Vec<u8>,
}

fn parse_avcc(b: &[u8]) -> Result<AvcConfig, String> {
    let damaged = || "the avcC box (H.264 decoder configuration) is damaged".to_string();
    if b.len() < 6 || b[0] != 1 {
        return Err(damaged());
    }
    check_profile(b[1])?;
    let nal_length_size = usize::from(b[4] & 3) + 1;
    let mut parameter_sets = Vec::new();
    let mut at = 5;
    // SPS count in the low 5 bits, then the PPS count (a byte) after the SPSs.
    for count_mask in [0x1f, 0xff] {
        let count = b.get(at).ok_or_else(damaged)? & count_mask;
        at += 1;
        for _ in 0..count {
            let len = b.get(at..at + 2).ok_or_else(damaged)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let nal = b.get(at + 2..at + 2 + len).ok_or_else(damaged)?;
            parameter_sets.extend_from_slice(&[0, 0, 0, 1]);
            parameter_sets.extend_from_slice(nal);
            at += 2 + len;
        }
    }
    Ok(AvcConfig {
        profile_idc: b[1],
        nal_length_size,
        parameter_sets,
    })
}

/// OpenH264 decodes 8-bit 4:2:0 progressive Baseline, Main and High profile streams.
fn check_profile(profile_idc: u8) -> Result<(), String> {
    let name = match profile_idc {
        66 | 77 | 100 => return Ok(()),
        88 => "Extended",
        110 => "High 10 (10-bit)",
        122 => "High 4:2:2",
        244 => "High 4:4:4",
        44 => "CAVLC 4:4:4",
        83 | 86 => "Scalable (SVC)",
        118 | 128 | 134 | 135 | 138 | 139 => "Multiview/3D",
        _ => "unknown",
    };
    Err(format!(
        "H.264 {name} profile (profile_idc {profile_idc}), which the built-in decoder (OpenH264) \
         does not decode: it reads 8-bit 4:2:0 Baseline, Main and High profile; re-encode, e.g. \
         `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p -bf 0 -an OUT.mp4`"
    ))
}

// ------------------------------------------------------------------------------------------------
// Annex B

/// A NAL unit of an Annex-B stream: where its start code begins, its header byte and the byte
/// after it (a slice's first bit there is 1 when `first_mb_in_slice` is 0; an SPS's is the
/// profile).
struct NalStart {
    offset: u64,
    header: u8,
    next: u8,
}

/// Finds the start codes of a whole stream, reading it in blocks, and hands each NAL unit to
/// `on_nal` in order.
fn scan_nals(
    input: &mut dyn Input,
    len: u64,
    on_nal: &mut dyn FnMut(NalStart) -> Result<(), String>,
) -> Result<(), String> {
    input
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut zeros = 0usize;
    // Start of a start code whose header (None) or next byte (Some) is still to come.
    let mut pending: Option<(u64, Option<u8>)> = None;
    let mut block = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(block.len() as u64) as usize;
        input
            .read_exact(&mut block[..n])
            .map_err(|e| format!("cannot read at byte {pos}: {e}"))?;
        for &byte in &block[..n] {
            match pending {
                Some((offset, None)) => pending = Some((offset, Some(byte))),
                Some((offset, Some(header))) => {
                    on_nal(NalStart {
                        offset,
                        header,
                        next: byte,
                    })?;
                    pending = None;
                }
                None => {}
            }
            if byte == 0 {
                zeros += 1;
            } else {
                if byte == 1 && zeros >= 2 {
                    if let Some((offset, Some(header))) = pending {
                        // A NAL unit of one byte: no byte after its header.
                        on_nal(NalStart {
                            offset,
                            header,
                            next: 0,
                        })?;
                    }
                    pending = Some((pos - zeros.min(3) as u64, None));
                }
                zeros = 0;
            }
            pos += 1;
        }
    }
    if let Some((offset, Some(header))) = pending {
        on_nal(NalStart {
            offset,
            header,
            next: 0,
        })?;
    }
    Ok(())
}

/// Groups NAL units into access units (one picture each), H.264 § 7.4.1.2.3: a new one begins
/// at an access unit delimiter, SPS, PPS, SEI or NAL types 14–18 after a slice, or at a slice
/// with `first_mb_in_slice` 0 after a slice. Units without a slice (trailing SEI) are dropped.
fn annexb_units(input: &mut dyn Input, len: u64) -> Result<Demuxed, String> {
    let not_h264 = "not a raw H.264 (Annex B) stream: it does not start with a start code \
                    (00 00 01); an MP4 file must be named .mp4/.m4v/.mov";
    let mut units = Vec::new();
    let mut profile_idc = None;
    // The access unit being collected: (start, has a slice).
    let mut current: Option<(u64, bool)> = None;
    scan_nals(input, len, &mut |nal| {
        if current.is_none() && nal.offset > 16 {
            return Err(not_h264.into());
        }
        let kind = nal.header & 0x1f;
        if kind == 7 && profile_idc.is_none() {
            check_profile(nal.next)?;
            profile_idc = Some(nal.next);
        }
        let slice = matches!(kind, 1 | 5);
        let begins = match current {
            None => true,
            Some((_, seen_slice)) => {
                seen_slice && (matches!(kind, 6..=9 | 14..=18) || (slice && nal.next & 0x80 != 0))
            }
        };
        if begins {
            if let Some((start, true)) = current {
                units.push(Unit {
                    offset: start,
                    len: nal.offset - start,
                });
                if units.len() as u64 > MAX_FRAMES {
                    return Err(format!(
                        "more than {MAX_FRAMES} pictures, more than adasd reads from one file"
                    ));
                }
            }
            current = Some((nal.offset, slice));
        } else if let Some((_, seen)) = current.as_mut() {
            *seen |= slice;
        }
        Ok(())
    })?;
    match current {
        None => return Err(not_h264.into()),
        Some((start, true)) => units.push(Unit {
            offset: start,
            len: len - start,
        }),
        Some((_, false)) => {}
    }
    if units.is_empty() {
        return Err("the H.264 stream holds no picture (no slice NAL units)".into());
    }
    Ok(Demuxed {
        units,
        size: None,
        profile_idc,
        times: None,
        parameter_sets: Vec::new(),
        nal_length_size: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn manifest() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// samples/udacity/solidWhiteRight.mp4: 960×540, 25 fps, 221 frames, H.264 High + AAC.
    fn sample() -> PathBuf {
        Path::new(env!("ADAS_REPO_ROOT")).join("samples/udacity/solidWhiteRight.mp4")
    }

    fn fixture(name: &str) -> PathBuf {
        manifest().join("tests/fixtures/video").join(name)
    }

    fn from_file() -> Timing {
        Timing::FromSource { fallback_fps: 10.0 }
    }

    fn open_err(path: &Path, timing: Timing) -> String {
        match VideoFile::open(path, timing) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(e) => e.to_string(),
        }
    }

    /// Opens with the YUV planes kept.
    fn open_with_planes(path: &Path, timing: Timing) -> VideoFile {
        let mut src = VideoFile::open(path, timing).unwrap();
        src.keep_planes = true;
        src
    }

    fn sha(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Frame → (sha256 Y, U, V) decoded by ffmpeg (tests/fixtures/solidWhiteRight_yuv420p.txt).
    fn ffmpeg_reference() -> Vec<(usize, [String; 3])> {
        let text =
            std::fs::read_to_string(manifest().join("tests/fixtures/solidWhiteRight_yuv420p.txt"))
                .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].parse().unwrap(),
                    [f[1].to_string(), f[2].to_string(), f[3].to_string()],
                )
            })
            .collect()
    }

    #[test]
    fn mp4_decodes_bit_exact_with_ffmpeg_at_the_files_times() {
        let reference = ffmpeg_reference();
        assert_eq!(
            reference.iter().map(|r| r.0).collect::<Vec<_>>(),
            [0, 1, 100, 220]
        );
        let mut src = open_with_planes(&sample(), from_file());
        assert_eq!(src.len_hint(), Some(221));
        let mut n = 0;
        let mut checked = 0;
        while let Some((slot, picture)) = src.next_picture() {
            let picture = picture.unwrap_or_else(|e| panic!("frame {n}: {e}"));
            let p = picture.planes.unwrap();
            assert_eq!(slot.seq, n as u64);
            assert_eq!((p.width, p.height), (960, 540), "frame {n}");
            assert_eq!(picture.image.dimensions(), (960, 540), "frame {n}");
            // 25 fps in the file (stts 512 ticks of 1/12800 s): exactly 40 ms apart from 0.
            assert_eq!(slot.t_capture_ns, n as u64 * 40_000_000, "frame {n}");
            assert!(
                slot.origin
                    .ends_with(&format!("solidWhiteRight.mp4#frame {n}")),
                "{}",
                slot.origin
            );
            if let Some((_, [y, u, v])) = reference.iter().find(|r| r.0 == n) {
                assert_eq!(&sha(&p.y), y, "frame {n}: Y plane differs from ffmpeg's");
                assert_eq!(&sha(&p.u), u, "frame {n}: U plane differs from ffmpeg's");
                assert_eq!(&sha(&p.v), v, "frame {n}: V plane differs from ffmpeg's");
                checked += 1;
            }
            n += 1;
        }
        assert_eq!((n, checked), (221, 4));
        assert!(src.next_frame().is_none());
    }

    #[test]
    fn rgb_is_bt601_limited_range_of_the_decoded_planes_with_nearest_chroma() {
        let mut src = open_with_planes(&sample(), from_file());
        let (slot, picture) = src.next_picture().unwrap();
        let picture = picture.unwrap();
        let (rgb, p) = (picture.image, picture.planes.unwrap());
        let (w, h) = (p.width, p.height);
        assert_eq!((slot.seq, rgb.width(), rgb.height()), (0, 960, 540));
        // The project's integer BT.601 limited-range formula (the camera path, yuv.rs) on the
        // same planes, chroma of the 2×2 block: openh264's float path must agree within 2.
        let mut worst = 0;
        for yy in 0..h {
            for x in 0..w {
                let c = (yy / 2) * (w / 2) + x / 2;
                let expected = super::super::yuv::yuv_to_rgb(p.y[yy * w + x], p.u[c], p.v[c]);
                let got = rgb.get_pixel(x as u32, yy as u32).0;
                for k in 0..3 {
                    worst = worst.max((i16::from(got[k]) - i16::from(expected[k])).abs());
                }
            }
        }
        assert!(worst <= 2, "largest difference {worst}");
    }

    #[test]
    fn fps_or_a_timestamps_file_replace_the_files_times() {
        let src = VideoFile::open(&sample(), Timing::FixedRate(10.0)).unwrap();
        assert_eq!(&src.times_ns[..3], [0, 100_000_000, 200_000_000]);
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("t.txt");
        let lines: String = (0..221)
            .map(|i| format!("{}\n", 5.0 + f64::from(i) * 0.05))
            .collect();
        std::fs::write(&ts, lines).unwrap();
        let src = VideoFile::open(&sample(), Timing::File(ts.clone())).unwrap();
        assert_eq!(src.times_ns[1], 5_050_000_000);
        std::fs::write(&ts, "0.0\n0.1\n").unwrap();
        let err = open_err(&sample(), Timing::File(ts));
        assert!(err.contains("2 times for 221 frames"), "{err}");
    }

    /// The sample's video as a raw Annex-B stream (parameter sets, then every sample).
    fn write_annexb(path: &Path) {
        let bytes = std::fs::read(sample()).unwrap();
        let len = bytes.len() as u64;
        let mut cursor = std::io::Cursor::new(bytes.clone());
        let demuxed = mp4_track(&mut cursor, len).unwrap();
        let mut out = demuxed.parameter_sets.clone();
        let mut annexb = Vec::new();
        for u in &demuxed.units {
            let sample = &bytes[u.offset as usize..(u.offset + u.len) as usize];
            avcc_to_annexb(sample, demuxed.nal_length_size.unwrap(), &mut annexb).unwrap();
            out.extend_from_slice(&annexb);
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn raw_h264_splits_into_the_same_frames_at_the_configured_rate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drive.h264");
        write_annexb(&path);
        let mut src = open_with_planes(&path, from_file());
        assert_eq!(src.len_hint(), Some(221));
        let reference = ffmpeg_reference();
        let mut n = 0;
        while let Some((slot, picture)) = src.next_picture() {
            let p = picture.unwrap().planes.unwrap();
            // No times in a raw stream: the fallback rate.
            assert_eq!(slot.t_capture_ns, n * 100_000_000);
            if let Some((_, [y, u, v])) = reference.iter().find(|r| r.0 as u64 == n) {
                assert_eq!([&sha(&p.y), &sha(&p.u), &sha(&p.v)], [y, u, v], "frame {n}");
            }
            n += 1;
        }
        assert_eq!(n, 221);
    }

    #[test]
    fn missing_empty_random_and_foreign_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_err(&dir.path().join("nope.mp4"), from_file());
        assert!(
            err.contains("nope.mp4") && err.contains("no such file"),
            "{err}"
        );

        let empty = dir.path().join("empty.mp4");
        std::fs::write(&empty, b"").unwrap();
        let err = open_err(&empty, from_file());
        assert!(
            err.contains("empty.mp4") && err.contains("empty file"),
            "{err}"
        );

        // Deterministic pseudo-random bytes.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let random = dir.path().join("random.mp4");
        std::fs::write(&random, &noise).unwrap();
        let err = open_err(&random, from_file());
        assert!(
            err.contains("random.mp4") && err.contains("not an MP4"),
            "{err}"
        );
        let random = dir.path().join("random.h264");
        std::fs::write(&random, &noise).unwrap();
        let err = open_err(&random, from_file());
        assert!(err.contains("not a raw H.264"), "{err}");

        let jpeg = dir.path().join("photo.mp4");
        std::fs::copy(
            Path::new(env!("ADAS_REPO_ROOT")).join("samples/images/dog.jpg"),
            &jpeg,
        )
        .unwrap();
        let err = open_err(&jpeg, from_file());
        assert!(err.contains("not an MP4") && err.contains("ff d8"), "{err}");
    }

    #[test]
    fn unsupported_streams_say_what_they_are_and_what_to_do() {
        let err = open_err(&fixture("hevc_64x64.mp4"), from_file());
        assert!(
            err.contains("no H.264 video track") && err.contains("video `hvc1` (H.265/HEVC)"),
            "{err}"
        );
        assert!(err.contains("libx264"), "{err}");
        let err = open_err(&fixture("audio_only.mp4"), from_file());
        assert!(err.contains("audio `mp4a` (AAC)"), "{err}");
        // B-frames are refused whatever the timing.
        for timing in [from_file(), Timing::FixedRate(25.0)] {
            let err = open_err(&fixture("bframes_64x48.mp4"), timing);
            assert!(err.contains("B-frames") && err.contains("-bf 0"), "{err}");
        }
        let err = open_err(&fixture("high10_64x48.mp4"), from_file());
        assert!(
            err.contains("High 10") && err.contains("profile_idc 110"),
            "{err}"
        );

        // Odd size: the sample's `avc1` entry patched to 959×540.
        let mut bytes = std::fs::read(sample()).unwrap();
        let at = bytes.windows(4).position(|w| w == b"avc1").unwrap();
        // Sample entry: type, 6 reserved, data reference index, 16 pre-defined, width, height.
        bytes[at + 4 + 24..at + 4 + 26].copy_from_slice(&959u16.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("odd.mp4");
        std::fs::write(&odd, bytes).unwrap();
        let err = open_err(&odd, from_file());
        assert!(err.contains("959×540") && err.contains("even"), "{err}");
    }

    #[test]
    fn huge_table_counts_are_refused_before_anything_is_reserved() {
        // Found by fuzzing: an `stsz` claiming 2³² − 16 sizes made mp4parse reserve 16 GiB.
        let mut bytes = std::fs::read(sample()).unwrap();
        let at = bytes.windows(4).position(|w| w == b"stsz").unwrap();
        // Content: version/flags, sample_size (0: a table follows), sample_count.
        bytes[at + 12..at + 16].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.mp4");
        std::fs::write(&path, bytes).unwrap();
        let err = open_err(&path, from_file());
        assert!(
            err.contains("`stsz` table claims 4294967280 entries"),
            "{err}"
        );
    }

    #[test]
    fn the_sample_count_bound_follows_mp4parse_s_walk_of_the_chunks() {
        let stsc = |runs: &[(u32, u32)]| -> Vec<mp4parse::SampleToChunk> {
            runs.iter()
                .map(
                    |&(first_chunk, samples_per_chunk)| mp4parse::SampleToChunk {
                        first_chunk,
                        samples_per_chunk,
                        sample_description_index: 1,
                    },
                )
                .collect()
        };
        // What mp4parse's create_sample_table makes of the same tables.
        let mp4parse_count = |runs: &[(u32, u32)], chunks: usize| -> usize {
            let mut track = mp4parse::Track::default();
            let mut samples = mp4parse::TryVec::new();
            for e in stsc(runs) {
                samples.push(e).unwrap();
            }
            track.stsc = Some(mp4parse::SampleToChunkBox { samples });
            let mut offsets = mp4parse::TryVec::new();
            for c in 0..chunks as u64 {
                offsets.push(c * 1000).unwrap();
            }
            track.stco = Some(mp4parse::ChunkOffsetBox { offsets });
            track.stsz = Some(mp4parse::SampleSizeBox {
                sample_size: 1,
                sample_sizes: mp4parse::TryVec::new(),
            });
            let mut stts = mp4parse::TryVec::new();
            stts.push(mp4parse::Sample {
                sample_count: u32::MAX,
                sample_delta: 1,
            })
            .unwrap();
            track.stts = Some(mp4parse::TimeToSampleBox { samples: stts });
            mp4parse::unstable::create_sample_table(&track, mp4parse::unstable::CheckedInteger(0))
                .map_or(0, |t| t.len())
        };
        // (runs, chunks, samples reserved, samples in the table): chunks 1–4 × 5, 5–8 × 10,
        // 9–10 × 2; repeated first chunks (the first is skipped); runs that go backwards, start at
        // 0 or pass the chunk count (the walk stops there); a run that starts at chunk 2 ends one
        // chunk past the last (room reserved, then no table).
        for (runs, chunks, reserved, made) in [
            (&[(1, 5), (5, 10), (9, 2)][..], 10, 64, 64),
            (&[(1, 5), (1, 7), (3, 2)][..], 4, 2 * 7 + 2 * 2, 18),
            (&[(1, 3), (3, 5), (2, 9)][..], 10, 2 * 3, 6),
            (&[(0, 5)][..], 10, 0, 0),
            (&[(1, 4), (20, 1)][..], 5, 0, 0),
            (&[(2, 6)][..], 3, 3 * 6, 0),
        ] {
            assert_eq!(stsc_sample_total(&stsc(runs), chunks), reserved, "{runs:?}");
            assert_eq!(mp4parse_count(runs, chunks), made, "{runs:?}");
        }
        assert_eq!(
            stsc_sample_total(&stsc(&[(1, u32::MAX)]), 1 << 20),
            (1 << 20) * u64::from(u32::MAX)
        );
        // The sample file: what create_sample_table makes.
        let bytes = std::fs::read(sample()).unwrap();
        let moov = &bytes[28..28 + 4547];
        let context = mp4parse::read_mp4(&mut std::io::Cursor::new(moov)).unwrap();
        let video = context
            .tracks
            .iter()
            .find(|t| t.track_type == mp4parse::TrackType::Video)
            .unwrap();
        let total = stsc_sample_total(
            video.stsc.as_ref().unwrap().samples.as_slice(),
            video.stco.as_ref().unwrap().offsets.len(),
        );
        let table =
            mp4parse::unstable::create_sample_table(video, mp4parse::unstable::CheckedInteger(0))
                .unwrap();
        assert_eq!((total, table.len()), (221, 221));
    }

    #[test]
    fn truncated_copies_fail_at_open_or_per_frame_without_panicking() {
        let bytes = std::fs::read(sample()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The sample has its `moov` (4547 bytes at 28) before the `mdat`.
        for n in [7, 8, 27, 100, 4000, 4574] {
            let path = dir.path().join(format!("cut{n}.mp4"));
            std::fs::write(&path, &bytes[..n]).unwrap();
            let err = open_err(&path, from_file());
            assert!(err.contains(&format!("cut{n}.mp4")), "{err}");
            assert!(
                err.contains("truncated") || err.contains("not an MP4"),
                "{n}: {err}"
            );
        }
        // Cut in the middle of the frames: the first ones decode, the rest are frame errors.
        let path = dir.path().join("half.mp4");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let mut src = VideoFile::open(&path, from_file()).unwrap();
        let (mut ok, mut failed) = (0, 0);
        while let Some(frame) = src.next_frame() {
            match frame {
                Ok(f) => {
                    assert_eq!(failed, 0, "a frame decoded after the cut: {}", f.origin);
                    ok += 1;
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("half.mp4#frame") && e.contains("truncated"),
                        "{e}"
                    );
                    failed += 1;
                }
            }
        }
        assert_eq!(ok + failed, 221);
        assert!(ok > 50 && failed > 50, "{ok} decoded, {failed} failed");
    }

    #[test]
    fn a_damaged_sample_is_a_frame_error_and_the_source_goes_on() {
        let mut bytes = std::fs::read(sample()).unwrap();
        let len = bytes.len() as u64;
        let units = mp4_track(&mut std::io::Cursor::new(bytes.clone()), len)
            .unwrap()
            .units;
        // Frame 40: its first NAL length runs past the sample. Frame 70: slice data overwritten.
        let u40 = units[40];
        bytes[u40.offset as usize..u40.offset as usize + 4].copy_from_slice(&[0x7f, 0, 0, 0]);
        let u70 = units[70];
        let mid = (u70.offset + u70.len / 4) as usize;
        for (i, b) in bytes[mid..mid + (u70.len / 2) as usize]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(151) ^ 0x5a;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.mp4");
        std::fs::write(&path, bytes).unwrap();
        let mut src = open_with_planes(&path, from_file());
        let results: Vec<_> = std::iter::from_fn(|| src.next_picture()).collect();
        assert_eq!(results.len(), 221);
        assert!(results[..40].iter().all(|r| r.1.is_ok()));
        let (slot, e40) = &results[40];
        let e40 = e40.as_ref().err().unwrap();
        assert_eq!((slot.seq, slot.t_capture_ns), (40, 1_600_000_000));
        assert!(
            slot.origin.ends_with("damaged.mp4#frame 40"),
            "{}",
            slot.origin
        );
        assert!(e40.contains("damaged sample"), "{e40}");
        assert!(results[70].1.is_err(), "frame 70 decoded");
        // Decoding recovers at the next keyframe (every 30 frames, 90 here) and every frame is
        // still the right one: bit-exact with ffmpeg's at 100 and 220.
        assert!(results[90..].iter().all(|r| r.1.is_ok()));
        for (n, [y, u, v]) in ffmpeg_reference().into_iter().filter(|r| r.0 >= 100) {
            let p = results[n].1.as_ref().ok().unwrap().planes.as_ref().unwrap();
            assert_eq!(
                [&sha(&p.y), &sha(&p.u), &sha(&p.v)],
                [&y, &u, &v],
                "frame {n}"
            );
        }
        // The same through the FrameSource interface.
        let mut src = VideoFile::open(&path, from_file()).unwrap();
        let frames: Vec<_> = std::iter::from_fn(|| src.next_frame()).collect();
        let e = frames[40].as_ref().unwrap_err();
        assert_eq!((e.seq, e.t_capture_ns), (40, 1_600_000_000));
        assert!(e.to_string().contains("damaged.mp4#frame 40"), "{e}");
        assert_eq!(
            frames.iter().filter(|f| f.is_ok()).count(),
            221 - results.iter().filter(|r| r.1.is_err()).count()
        );
    }

    #[test]
    fn file_uris_open_videos_by_extension_and_images_as_before() {
        let video = format!("file://{}", sample().display());
        assert_eq!(
            super::super::open(&video, from_file()).unwrap().len_hint(),
            Some(221)
        );
        let video = format!("video://{}", sample().display());
        assert_eq!(
            super::super::open(&video, from_file()).unwrap().len_hint(),
            Some(221)
        );
        let image = format!(
            "file://{}",
            Path::new(env!("ADAS_REPO_ROOT"))
                .join("samples/images/dog.jpg")
                .display()
        );
        let mut src = super::super::open(&image, from_file()).unwrap();
        assert_eq!(src.len_hint(), Some(1));
        assert_eq!(src.next_frame().unwrap().unwrap().image.width(), 768);
        let Err(err) = super::super::open("file:///nowhere/drive.MOV", from_file()) else {
            panic!("opened");
        };
        let err = err.to_string();
        assert!(
            err.contains("drive.MOV") && err.contains("no such file"),
            "{err}"
        );
    }

    #[test]
    fn avcc_samples_become_annexb() {
        let mut out = Vec::new();
        avcc_to_annexb(&[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x06], 4, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
        let err = avcc_to_annexb(&[0, 0, 0, 9, 0x65], 4, &mut out).unwrap_err();
        assert!(err.contains("9 bytes"), "{err}");
        assert!(avcc_to_annexb(&[0, 0], 4, &mut out).is_err());
        assert!(avcc_to_annexb(&[0, 0, 0, 0], 4, &mut out).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Damaged headers and sample tables: any bytes of the `ftyp` + `moov` region replaced.
        /// Opening and decoding the first frames returns values or errors, never panics.
        #[test]
        fn damaged_indexes_never_panic(
            edits in proptest::collection::vec((0usize..4575, proptest::prelude::any::<u8>()), 1..16),
            cut in 4575usize..200_000,
        ) {
            let mut bytes = std::fs::read(sample()).unwrap();
            bytes.truncate(cut);
            for (at, b) in edits {
                bytes[at] = b;
            }
            let len = bytes.len() as u64;
            for kind in [VideoKind::Mp4, VideoKind::AnnexB] {
                let opened = VideoFile::from_reader(
                    "fuzz.mp4",
                    std::io::Cursor::new(bytes.clone()),
                    len,
                    kind,
                    from_file(),
                );
                if let Ok(mut src) = opened {
                    for _ in 0..3 {
                        let _ = src.next_frame();
                    }
                }
            }
        }
    }
}
