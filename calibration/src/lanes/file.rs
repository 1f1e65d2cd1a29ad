//! Reading and checking the lane-marking file (format: the [module docs](super)).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use super::{Dash, LaneLine};
use crate::homography::Pixel;

/// A parsed lane-marking file.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneFile {
    /// The file.
    pub path: PathBuf,
    /// Image size declared in the file, if any.
    pub image_size: Option<(u32, u32)>,
    /// The lines, in file order.
    pub lines: Vec<LaneLine>,
}

/// Errors reading a lane-marking file; each names the file, the line and the key.
#[derive(Debug, Error)]
pub enum LaneFileError {
    /// I/O.
    #[error("{file}: cannot read lane-marking file: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Syntax or content.
    #[error("{file}{}: {key}: {reason}", line_suffix(*line))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line (0: whole file).
        line: usize,
        /// The key, e.g. `lines[1].dashes[2].near`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// `:line`, or nothing for a whole-file error (line 0).
fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    image_width: Option<u32>,
    #[serde(default)]
    image_height: Option<u32>,
    #[serde(default)]
    lines: Vec<Spanned<RawLine>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    #[serde(default)]
    name: Option<String>,
    lateral: Spanned<f64>,
    #[serde(default)]
    dashes: Vec<Spanned<RawDash>>,
    #[serde(default)]
    points: Vec<Spanned<[f64; 2]>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDash {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    near: Option<[f64; 2]>,
    #[serde(default)]
    far: Option<[f64; 2]>,
}

/// Lateral positions beyond this many lane widths are refused as typing errors.
pub const MAX_LATERAL: f64 = 10.0;

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or("").matches('\n').count() + 1
}

impl LaneFile {
    /// Reads a lane-marking file (TOML).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LaneFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LaneFileError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and checks TOML text; `path` is used in messages.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Self, LaneFileError> {
        let path = path.as_ref().to_path_buf();
        let invalid = |line: usize, key: String, reason: String| LaneFileError::Invalid {
            file: path.clone(),
            line,
            key,
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            // Type errors do not name the key: take it from the offending line.
            let key = text
                .lines()
                .nth(line.saturating_sub(1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| format!("key `{}`", k.trim()))
                .unwrap_or_else(|| "syntax".into());
            invalid(line, key, e.message().trim().to_string())
        })?;
        let image_size = match (raw.image_width, raw.image_height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    0,
                    "image_width, image_height".into(),
                    "give both (> 0), or neither".into(),
                ))
            }
        };
        let mut lines = Vec::with_capacity(raw.lines.len());
        for (i, l) in raw.lines.iter().enumerate() {
            let at = line_of(text, l.span().start);
            lines.push(
                parse_line(i, l.get_ref(), at, text)
                    .map_err(|(line, key, reason)| invalid(line, key, reason))?,
            );
        }
        let file = Self {
            path,
            image_size,
            lines,
        };
        file.check_lateral_positions()?;
        Ok(file)
    }

    fn check_lateral_positions(&self) -> Result<(), LaneFileError> {
        for (i, a) in self.lines.iter().enumerate() {
            if let Some(b) = self.lines[..i]
                .iter()
                .find(|b| (b.lateral - a.lateral).abs() < 1e-9)
            {
                return Err(LaneFileError::Invalid {
                    file: self.path.clone(),
                    line: a.line,
                    key: format!("lines[{i}].lateral"),
                    reason: format!(
                        "line `{}` has the same lateral position ({}) as `{}`: give each \
                         marking line once",
                        a.name, a.lateral, b.name
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks the declared image size (if any) and that every pixel lies inside the image.
    pub fn check_image_size(&self, width: u32, height: u32) -> Result<(), LaneFileError> {
        let invalid = |line: usize, key: String, reason: String| LaneFileError::Invalid {
            file: self.path.clone(),
            line,
            key,
            reason,
        };
        if let Some((w, h)) = self.image_size {
            if (w, h) != (width, height) {
                return Err(invalid(
                    0,
                    "image_width, image_height".into(),
                    format!("the marks are for {w}x{h} images, the image size given is {width}x{height}"),
                ));
            }
        }
        let (w, h) = (f64::from(width), f64::from(height));
        for (i, l) in self.lines.iter().enumerate() {
            if let Some(p) = l
                .pixels()
                .into_iter()
                .find(|p| !(0.0..=w).contains(&p.u) || !(0.0..=h).contains(&p.v))
            {
                return Err(invalid(
                    l.line,
                    format!("lines[{i}]"),
                    format!(
                        "line `{}`: pixel ({}, {}) is outside the {width}x{height} image",
                        l.name, p.u, p.v
                    ),
                ));
            }
        }
        Ok(())
    }
}

type ParseError = (usize, String, String);

fn pixel(p: [f64; 2], line: usize, key: &str) -> Result<Pixel, ParseError> {
    if p.iter().all(|c| c.is_finite()) {
        Ok(Pixel::new(p[0], p[1]))
    } else {
        Err((line, key.into(), "pixel coordinates must be finite".into()))
    }
}

fn parse_line(i: usize, raw: &RawLine, at: usize, text: &str) -> Result<LaneLine, ParseError> {
    let key = format!("lines[{i}]");
    let name = raw.name.clone().unwrap_or_else(|| format!("line {i}"));
    let lateral = *raw.lateral.get_ref();
    if !(lateral.is_finite() && lateral.abs() <= MAX_LATERAL) {
        return Err((
            line_of(text, raw.lateral.span().start),
            format!("{key}.lateral"),
            format!(
                "{lateral} is not a lateral position in lane widths (|lateral| <= \
                 {MAX_LATERAL}; +0.5 = left edge of the ego lane, -0.5 = right edge)"
            ),
        ));
    }
    let mut dashes = Vec::with_capacity(raw.dashes.len());
    let mut next = 0u32;
    for (k, d) in raw.dashes.iter().enumerate() {
        let dline = line_of(text, d.span().start);
        let dkey = format!("{key}.dashes[{k}]");
        let dash = parse_dash(d.get_ref(), next, dline, &dkey)?;
        if k == 0 && dash.index != 0 {
            return Err((
                dline,
                format!("{dkey}.index"),
                "the first listed dash is dash 0 by definition (indices count from it)".into(),
            ));
        }
        next = dash.index.saturating_add(1);
        dashes.push(dash);
    }
    let points = raw
        .points
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let line = line_of(text, p.span().start);
            pixel(*p.get_ref(), line, &format!("{key}.points[{k}]"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let line = LaneLine {
        name,
        lateral,
        dashes,
        points,
        line: at,
    };
    if line.pixels().len() < 2 {
        return Err((
            at,
            key,
            format!(
                "line `{}` has {} pixel(s): give at least two (both ends of a dash, or two \
                 points) so that its direction in the image is known",
                line.name,
                line.pixels().len()
            ),
        ));
    }
    Ok(line)
}

fn parse_dash(d: &RawDash, next: u32, line: usize, key: &str) -> Result<Dash, ParseError> {
    let index = d.index.unwrap_or(next);
    if index < next {
        return Err((
            line,
            format!("{key}.index"),
            format!(
                "dash {index} after dash {}: list dashes near to far",
                next - 1
            ),
        ));
    }
    let near = d
        .near
        .map(|p| pixel(p, line, &format!("{key}.near")))
        .transpose()?;
    let far = d
        .far
        .map(|p| pixel(p, line, &format!("{key}.far")))
        .transpose()?;
    match (near, far) {
        (None, None) => Err((
            line,
            key.into(),
            "a dash needs `near` or `far` (or both)".into(),
        )),
        (Some(n), Some(f)) if n.v <= f.v => Err((
            line,
            key.into(),
            format!(
                "the near end (v = {}) is not below the far end (v = {}) in the image: swapped?",
                n.v, f.v
            ),
        )),
        _ => Ok(Dash { index, near, far }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const FILE: &str = r#"
image_width = 1280
image_height = 720

[[lines]]
name = "left"
lateral = 0.5
points = [[300.0, 650.0], [500.0, 500.0]]

[[lines]]
name = "right"
lateral = -0.5
dashes = [
    { far = [997.8, 650.8] },
    { near = [775.2, 508.7], far = [746.4, 489.3] },
    { index = 3, near = [712.2, 467.3] },
]
"#;

    #[test]
    fn parses_the_documented_format() {
        let f = LaneFile::from_toml_str(FILE, "m.toml").unwrap();
        assert_eq!(f.image_size, Some((1280, 720)));
        assert_eq!(f.lines.len(), 2);
        let r = &f.lines[1];
        assert_eq!(
            r.dashes.iter().map(|d| d.index).collect::<Vec<_>>(),
            [0, 1, 3]
        );
        assert_eq!(r.dash_ends(), 4);
        assert!(r.dashes[0].near.is_none());
        // The line of its `[[lines]]` header.
        assert_eq!(r.line, 10);
        f.check_image_size(1280, 720).unwrap();
        let e = f.check_image_size(960, 540).unwrap_err().to_string();
        assert!(e.contains("m.toml") && e.contains("1280x720"), "{e}");
    }

    fn err(text: &str) -> String {
        LaneFile::from_toml_str(text, "m.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_files_name_file_line_and_key() {
        let e = err(&FILE.replace("lateral = -0.5", "lateral = -50"));
        assert!(
            e.contains("m.toml:12:") && e.contains("lines[1].lateral"),
            "{e}"
        );
        let e = err(&FILE.replace("lateral = -0.5", "lateral = 0.5"));
        assert!(e.contains("same lateral position"), "{e}");
        let e = err(&FILE.replace("index = 3", "index = 0"));
        assert!(
            e.contains("m.toml:16:") && e.contains("lines[1].dashes[2].index"),
            "{e}"
        );
        let e = err(&FILE.replace("near = [775.2, 508.7]", "near = [775.2, 480.0]"));
        assert!(e.contains("swapped") && e.contains("dashes[1]"), "{e}");
        let e = err(&FILE.replace("{ far = [997.8, 650.8] }", "{ index = 0 }"));
        assert!(e.contains("needs `near` or `far`"), "{e}");
        let e = err(&FILE.replace(
            "points = [[300.0, 650.0], [500.0, 500.0]]",
            "points = [[300.0, 650.0]]",
        ));
        assert!(e.contains("m.toml:5:") && e.contains("at least two"), "{e}");
        let e = err(&FILE.replace("lateral = 0.5", "lateral = 0.5\ncolour = 1"));
        assert!(e.contains("m.toml:") && e.contains("colour"), "{e}");
        let e = err("image_width = 10\n");
        assert!(e.contains("image_height"), "{e}");
        let f =
            LaneFile::from_toml_str(&FILE.replace("[500.0, 500.0]", "[500.0, 900.0]"), "m.toml")
                .unwrap();
        let e = f.check_image_size(1280, 720).unwrap_err().to_string();
        assert!(
            e.contains("outside the 1280x720 image") && e.contains("`left`"),
            "{e}"
        );
    }
}
