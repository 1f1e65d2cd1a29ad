//! Point files for `adas-calibrate homography`: image pixel ↔ ground point pairs.
//!
//! TOML (`.toml`):
//!
//! ```toml
//! units = "m"            # ground units: "m" (default), "cm" or "mm"
//! image_width = 768      # optional; checked against the image size given to the tool
//! image_height = 576
//!
//! [[points]]
//! name = "lamp-post base"  # optional
//! pixel = [433.0, 392.0]   # u, v: continuous pixel coordinates, origin top-left corner
//! ground = [5.49, -0.78]   # x forward, y left, vehicle frame
//! ```
//!
//! CSV (any other extension): a header naming the columns `u, v, x, y` and optionally `name`;
//! the ground columns may carry their unit as a suffix (`x_m, y_m`, `x_cm, y_cm`, `x_mm, y_mm`),
//! which must be the same for both. Lines starting with `#` and blank lines are ignored.
//!
//! Checks (each error names the file, the line and the point): finite numbers, consistent units,
//! pixels inside the image, ground coordinates within [`MAX_GROUND_M`] (a value of 1250 "metres"
//! almost always means centimetres were typed into a metre file).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::homography::Pixel;
use crate::solve::PointPair;

/// Ground coordinates beyond this (metres, after unit conversion) are refused as implausible.
pub const MAX_GROUND_M: f64 = 500.0;

/// One named correspondence from a point file.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPoint {
    /// The pair (ground in metres).
    pub pair: PointPair,
    /// Name or description, `#k` if none.
    pub name: String,
    /// 1-based line in the file (0 if unknown).
    pub line: usize,
}

/// A parsed point file.
#[derive(Debug, Clone, PartialEq)]
pub struct PointFile {
    /// The file.
    pub path: PathBuf,
    /// Image size declared in the file, if any.
    pub image_size: Option<(u32, u32)>,
    /// The points, ground in metres.
    pub points: Vec<NamedPoint>,
}

/// Errors reading a point file.
#[derive(Debug, Error)]
pub enum PointsError {
    /// I/O.
    #[error("{file}: cannot read point file: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Syntax, units, ranges.
    #[error("{file}:{line}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line (0: whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlPoints {
    #[serde(default)]
    units: Option<String>,
    #[serde(default)]
    image_width: Option<u32>,
    #[serde(default)]
    image_height: Option<u32>,
    #[serde(default)]
    points: Vec<TomlPoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlPoint {
    #[serde(default)]
    name: Option<String>,
    pixel: [f64; 2],
    ground: [f64; 2],
}

fn unit_factor(unit: &str) -> Option<f64> {
    match unit.trim() {
        "m" | "" => Some(1.0),
        "cm" => Some(0.01),
        "mm" => Some(0.001),
        _ => None,
    }
}

impl PointFile {
    /// Reads a TOML (`.toml`) or CSV point file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PointsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PointsError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if is_toml {
            Self::from_toml_str(&text, path)
        } else {
            Self::from_csv_str(&text, path)
        }
    }

    /// Parses the TOML form.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Self, PointsError> {
        let path = path.as_ref().to_path_buf();
        let invalid = |line: usize, reason: String| PointsError::Invalid {
            file: path.clone(),
            line,
            reason,
        };
        let parsed: TomlPoints = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text.get(..s.start).unwrap_or("").matches('\n').count() + 1
            });
            invalid(line, e.message().to_string())
        })?;
        let unit = parsed.units.unwrap_or_else(|| "m".into());
        let factor = unit_factor(&unit).ok_or_else(|| {
            invalid(
                0,
                format!("key `units`: unknown unit {unit:?} (use \"m\", \"cm\" or \"mm\")"),
            )
        })?;
        // Lines of the [[points]] headers, for messages.
        let lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[points]]")
            .map(|(i, _)| i + 1)
            .collect();
        let image_size = match (parsed.image_width, parsed.image_height) {
            (Some(w), Some(h)) => Some((w, h)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    0,
                    "give both image_width and image_height, or neither".into(),
                ))
            }
        };
        let points = parsed
            .points
            .into_iter()
            .enumerate()
            .map(|(i, p)| NamedPoint {
                pair: PointPair::new(
                    p.pixel[0],
                    p.pixel[1],
                    p.ground[0] * factor,
                    p.ground[1] * factor,
                ),
                name: p.name.unwrap_or_else(|| format!("#{i}")),
                line: lines.get(i).copied().unwrap_or(0),
            })
            .collect();
        let f = Self {
            path,
            image_size,
            points,
        };
        f.check()?;
        Ok(f)
    }

    /// Parses the CSV form.
    pub fn from_csv_str(text: &str, path: impl AsRef<Path>) -> Result<Self, PointsError> {
        let path = path.as_ref().to_path_buf();
        let invalid = |line: usize, reason: String| PointsError::Invalid {
            file: path.clone(),
            line,
            reason,
        };
        let mut rows = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (hline, header) = rows
            .next()
            .ok_or_else(|| invalid(0, "empty point file".into()))?;
        let cols: Vec<String> = header
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let find = |name: &str| -> Result<(usize, f64, String), PointsError> {
            for (i, c) in cols.iter().enumerate() {
                let (base, unit) = c.split_once('_').unwrap_or((c.as_str(), ""));
                if base == name {
                    let f = unit_factor(unit).ok_or_else(|| {
                        invalid(
                            hline,
                            format!("column `{c}`: unknown unit {unit:?} (use m, cm or mm)"),
                        )
                    })?;
                    return Ok((i, f, unit.to_string()));
                }
            }
            Err(invalid(
                hline,
                format!(
                    "header must name the columns u, v, x, y (optionally x_m/x_cm/x_mm, name); \
                     got `{header}`"
                ),
            ))
        };
        let (iu, _, _) = find("u")?;
        let (iv, _, _) = find("v")?;
        let (ix, fx, ux) = find("x")?;
        let (iy, fy, uy) = find("y")?;
        if fx != fy {
            return Err(invalid(
                hline,
                format!(
                    "inconsistent units: x is in {:?}, y in {:?}",
                    if ux.is_empty() { "m" } else { &ux },
                    if uy.is_empty() { "m" } else { &uy }
                ),
            ));
        }
        let iname = cols.iter().position(|c| c == "name");
        let mut points = Vec::new();
        for (line, row) in rows {
            let fields: Vec<&str> = row.split(',').map(str::trim).collect();
            let num = |i: usize, what: &str| -> Result<f64, PointsError> {
                let s = fields.get(i).copied().unwrap_or("");
                s.parse::<f64>()
                    .map_err(|_| invalid(line, format!("column `{what}`: `{s}` is not a number")))
            };
            let pair = PointPair::new(
                num(iu, "u")?,
                num(iv, "v")?,
                num(ix, "x")? * fx,
                num(iy, "y")? * fy,
            );
            let name = iname
                .and_then(|i| fields.get(i))
                .map_or_else(|| format!("#{}", points.len()), |s| (*s).to_string());
            points.push(NamedPoint { pair, name, line });
        }
        let f = Self {
            path,
            image_size: None,
            points,
        };
        f.check()?;
        Ok(f)
    }

    fn check(&self) -> Result<(), PointsError> {
        for p in &self.points {
            let invalid = |reason: String| PointsError::Invalid {
                file: self.path.clone(),
                line: p.line,
                reason: format!("point `{}`: {reason}", p.name),
            };
            let c = [
                p.pair.pixel.u,
                p.pair.pixel.v,
                p.pair.ground.x,
                p.pair.ground.y,
            ];
            if !c.iter().all(|v| v.is_finite()) {
                return Err(invalid(format!("coordinates must be finite, got {c:?}")));
            }
            let g = p.pair.ground.x.abs().max(p.pair.ground.y.abs());
            if g > MAX_GROUND_M {
                return Err(invalid(format!(
                    "ground coordinate {g} m is implausible (> {MAX_GROUND_M} m): are the values \
                     in cm or mm? say so with `units` (TOML) or an x_cm/y_cm header (CSV)"
                )));
            }
        }
        Ok(())
    }

    /// Checks that every pixel is inside a `width × height` image (and that the file's declared
    /// size, if any, matches).
    pub fn check_image_size(&self, width: u32, height: u32) -> Result<(), PointsError> {
        if let Some((w, h)) = self.image_size {
            if (w, h) != (width, height) {
                return Err(PointsError::Invalid {
                    file: self.path.clone(),
                    line: 0,
                    reason: format!(
                        "the points were picked in a {w}×{h} image, but the image size given is \
                         {width}×{height}"
                    ),
                });
            }
        }
        let (wf, hf) = (f64::from(width), f64::from(height));
        for p in &self.points {
            let (u, v) = (p.pair.pixel.u, p.pair.pixel.v);
            if !(0.0..=wf).contains(&u) || !(0.0..=hf).contains(&v) {
                return Err(PointsError::Invalid {
                    file: self.path.clone(),
                    line: p.line,
                    reason: format!(
                        "point `{}`: pixel ({u}, {v}) is outside the {width}×{height} image",
                        p.name
                    ),
                });
            }
        }
        Ok(())
    }

    /// Reads a list of pixels (detected chessboard corners): TOML `corners = [[u, v], …]` or CSV
    /// with a `u, v` header.
    pub fn load_pixels(path: impl AsRef<Path>) -> Result<Vec<Pixel>, PointsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PointsError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let invalid = |line: usize, reason: String| PointsError::Invalid {
            file: path.to_path_buf(),
            line,
            reason,
        };
        let out: Vec<Pixel> = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Corners {
                corners: Vec<[f64; 2]>,
            }
            let c: Corners = toml::from_str(&text).map_err(|e| invalid(0, e.message().into()))?;
            c.corners.iter().map(|p| Pixel::new(p[0], p[1])).collect()
        } else {
            let mut rows = text
                .lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.trim()))
                .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
            let (hl, header) = rows.next().ok_or_else(|| invalid(0, "empty file".into()))?;
            let cols: Vec<&str> = header.split(',').map(str::trim).collect();
            let (Some(iu), Some(iv)) = (
                cols.iter().position(|c| *c == "u"),
                cols.iter().position(|c| *c == "v"),
            ) else {
                return Err(invalid(
                    hl,
                    format!("header must name columns u, v; got `{header}`"),
                ));
            };
            let mut v = Vec::new();
            for (line, row) in rows {
                let f: Vec<&str> = row.split(',').map(str::trim).collect();
                let num = |i: usize| {
                    f.get(i)
                        .and_then(|s| s.parse::<f64>().ok())
                        .ok_or_else(|| invalid(line, format!("`{row}`: expected numbers u, v")))
                };
                v.push(Pixel::new(num(iu)?, num(iv)?));
            }
            v
        };
        if let Some(i) = out
            .iter()
            .position(|p| !(p.u.is_finite() && p.v.is_finite()))
        {
            return Err(invalid(0, format!("corner {i} is not finite")));
        }
        Ok(out)
    }

    /// The pairs, in file order.
    pub fn pairs(&self) -> Vec<PointPair> {
        self.points.iter().map(|p| p.pair).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_units_and_names() {
        let t = "units = \"cm\"\nimage_width = 768\nimage_height = 576\n\n[[points]]\nname = \"a\"\npixel = [1, 2]\nground = [150, -20]\n\n[[points]]\npixel = [3, 4]\nground = [500, 20]\n";
        let f = PointFile::from_toml_str(t, "p.toml").unwrap();
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.points[0].pair, PointPair::new(1.0, 2.0, 1.5, -0.2));
        assert_eq!(f.points[1].name, "#1");
        assert_eq!(f.points[1].line, 10);
        f.check_image_size(768, 576).unwrap();
        let e = f.check_image_size(640, 480).unwrap_err().to_string();
        assert!(e.contains("768×576") && e.contains("p.toml"), "{e}");
    }

    #[test]
    fn csv_with_units() {
        let t = "# picked 2026-11-21\nu, v, x_mm, y_mm, name\n10, 20, 5000, 100, cone\n\n30,40,6000,-100,post\n";
        let f = PointFile::from_csv_str(t, "p.csv").unwrap();
        assert_eq!(f.points[1].pair, PointPair::new(30.0, 40.0, 6.0, -0.1));
        assert_eq!(f.points[1].name, "post");
        assert_eq!(f.points[1].line, 5);
    }

    #[test]
    fn bad_files_are_refused_with_file_line_and_reason() {
        let e = PointFile::from_csv_str("u,v,x_m,y_cm\n1,2,3,4\n", "p.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.csv:1") && e.contains("inconsistent units"),
            "{e}"
        );
        let e = PointFile::from_csv_str("u,v,x,y\n1,2,3,4\n1,2,nan,4\n", "p.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.csv:3") && e.contains("finite"), "{e}");
        let e = PointFile::from_csv_str("u,v,x,y\n1,2,3\n", "p.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.csv:2") && e.contains("column `y`"), "{e}");
        let e = PointFile::from_csv_str("a,b\n", "p.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("header"), "{e}");
        let e = PointFile::from_csv_str("u,v,x,y\n1,2,1250,30\n", "p.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cm or mm"), "{e}");
        let e = PointFile::from_toml_str("units = \"ft\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown unit"), "{e}");
        let e = PointFile::from_toml_str("[[points]]\npixel = [1, 2]\ngrund = [1, 2]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml:3") && e.contains("grund"), "{e}");
        let e = PointFile::load("/nonexistent/points.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/points.toml"), "{e}");
    }
}
