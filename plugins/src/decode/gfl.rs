//! NanoDet-style GFL heads: per level, class scores and per-side box distributions.

use super::{clip01, shape_error, shapes_of, DecodeError, RowActivation, RowFilter};
use crate::detection::{BBox, Detection};
use crate::manifest::{Activation, GflHead};
use crate::tensor::TensorView;

#[derive(Debug, Clone, Copy)]
struct Level {
    stride: f32,
    grid_w: usize,
    grid_h: usize,
}

/// Decodes, per level (stride `s`, grid `ceil(W/s) × ceil(H/s)`, `N` cells row-major), scores
/// `[1, N, C]` and box distributions `[1, N, 4·(reg_max+1)]` for the sides (left, top, right,
/// bottom): softmax over the bins, expectation × stride = distance from the cell point
/// `((x + cell_offset)·s, (y + cell_offset)·s)`. One candidate per class ≥ threshold.
#[derive(Debug, Clone)]
pub struct GflDecoder {
    names: Vec<String>,
    levels: Vec<Level>,
    bins: usize,
    cell_offset: f32,
    activation: Activation,
    classes: usize,
    input_width: f32,
    input_height: f32,
}

impl GflDecoder {
    pub(super) fn new(
        head: &GflHead,
        names: Vec<String>,
        input_width: usize,
        input_height: usize,
        labels: usize,
    ) -> Result<Self, String> {
        if head.levels.iter().any(|l| l.stride == 0) {
            return Err("GFL level stride must be > 0".into());
        }
        if names.len() != 2 * head.levels.len() {
            return Err("GFL output names do not match the levels".into());
        }
        let levels = head
            .levels
            .iter()
            .map(|l| Level {
                stride: l.stride as f32,
                grid_w: input_width.div_ceil(l.stride),
                grid_h: input_height.div_ceil(l.stride),
            })
            .collect();
        Ok(Self {
            names,
            levels,
            bins: head.reg_max + 1,
            cell_offset: head.cell_offset,
            activation: head.score_activation,
            classes: labels,
            input_width: input_width as f32,
            input_height: input_height as f32,
        })
    }

    pub fn output_names(&self) -> &[String] {
        &self.names
    }

    /// Per level: scores `[1, N, C]` and box-side distributions `[1, N, 4·bins]` for the
    /// level's `N` grid cells.
    pub(super) fn check_shapes(&self, shapes: &[&[usize]]) -> Result<(), DecodeError> {
        let (c, d) = (self.classes, 4 * self.bins);
        for (i, (level, pair)) in self.levels.iter().zip(shapes.chunks_exact(2)).enumerate() {
            let n = level.grid_w * level.grid_h;
            if pair[0] != [1, n, c] {
                let expected = format!(
                    "[1, {n}, {c}] (stride {}, {}×{} grid)",
                    level.stride, level.grid_w, level.grid_h
                );
                return Err(shape_error(&self.names, 2 * i, expected, pair[0]));
            }
            if pair[1] != [1, n, d] {
                let expected = format!(
                    "[1, {n}, {d}] (stride {}, 4 sides × {} bins)",
                    level.stride, self.bins
                );
                return Err(shape_error(&self.names, 2 * i + 1, expected, pair[1]));
            }
        }
        Ok(())
    }

    pub(super) fn decode_into(
        &self,
        outputs: &[TensorView<'_>],
        threshold: f32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DecodeError> {
        self.check_shapes(&shapes_of(&self.names, outputs)?)?;
        let (c, d) = (self.classes, 4 * self.bins);
        let filter = RowFilter::new(self.activation, threshold);
        for (level, pair) in self.levels.iter().zip(outputs.chunks_exact(2)) {
            let (scores, dists) = (&pair[0], &pair[1]);
            for (cell, (row, dist)) in scores
                .data
                .chunks_exact(c)
                .zip(dists.data.chunks_exact(d))
                .enumerate()
            {
                if !filter.may_pass(row) {
                    continue;
                }
                let act = RowActivation::new(self.activation, row);
                let mut bbox = None;
                for (label, &x) in row.iter().enumerate() {
                    let score = act.apply(x);
                    if score >= threshold {
                        let b = *bbox.get_or_insert_with(|| self.decode_box(level, cell, dist));
                        out.push(Detection {
                            bbox: b,
                            score,
                            label,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn decode_box(&self, level: &Level, cell: usize, dist: &[f32]) -> BBox {
        let x = (cell % level.grid_w) as f32;
        let y = (cell / level.grid_w) as f32;
        let px = (x + self.cell_offset) * level.stride;
        let py = (y + self.cell_offset) * level.stride;
        let mut side = [0f32; 4];
        for (s, bins) in side.iter_mut().zip(dist.chunks_exact(self.bins)) {
            *s = expectation(bins) * level.stride;
        }
        clip01(BBox::new(
            (px - side[0]) / self.input_width,
            (py - side[1]) / self.input_height,
            (px + side[2]) / self.input_width,
            (py + side[3]) / self.input_height,
        ))
    }
}

/// Σ i·softmax(bins)_i, in bin units.
#[inline]
fn expectation(bins: &[f32]) -> f32 {
    let max = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0f32, 0f32);
    for (i, &v) in bins.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn views(ts: &[Tensor]) -> Vec<TensorView<'_>> {
        ts.iter().map(Tensor::view).collect()
    }
    use crate::manifest::GflLevel;

    fn decoder(cell_offset: f32, w: usize, h: usize) -> GflDecoder {
        let head = GflHead {
            reg_max: 2,
            cell_offset,
            score_activation: Activation::None,
            levels: vec![
                GflLevel {
                    stride: 8,
                    scores: "s8".into(),
                    boxes: "b8".into(),
                },
                GflLevel {
                    stride: 16,
                    scores: "s16".into(),
                    boxes: "b16".into(),
                },
            ],
        };
        let names = ["s8", "b8", "s16", "b16"].map(String::from).to_vec();
        GflDecoder::new(&head, names, w, h, 2).unwrap()
    }

    #[test]
    fn expectation_of_bins() {
        assert!((expectation(&[0.0, 0.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!((expectation(&[-100.0, -100.0, 0.0]) - 2.0).abs() < 1e-6);
        // softmax(0, 0, ln 2) = (0.25, 0.25, 0.5) → 0·0.25 + 1·0.25 + 2·0.5 = 1.25
        assert!((expectation(&[0.0, 0.0, 2f32.ln()]) - 1.25).abs() < 1e-6);
    }

    #[test]
    fn decodes_hand_computed_boxes() {
        // Input 40×24: stride 8 → 5×3 grid (N 15); stride 16 → ceil(2.5)=3 × ceil(1.5)=2 (N 6).
        let d = decoder(0.0, 40, 24);
        let mut s8 = Tensor::zeros(vec![1, 15, 2]);
        let mut b8 = Tensor::zeros(vec![1, 15, 12]);
        let mut s16 = Tensor::zeros(vec![1, 6, 2]);
        let mut b16 = Tensor::zeros(vec![1, 6, 12]);
        // Stride 8, cell 7 = (x 2, y 1): point (16, 8). Bins per side (3 bins, reg_max 2):
        //   left  (0,0,0)        → 1   → 8 px
        //   top   (−100,−100,0)  → 2   → 16 px
        //   right (0,0,ln 2)     → 1.25 → 10 px
        //   bottom(0,−100,−100)  → 0   → 0 px
        // Box (16−8, 8−16, 16+10, 8+0) = (8, −8, 26, 8) → /(40, 24) → (0.2, 0 (clipped), 0.65, 1/3).
        s8.data[7 * 2 + 1] = 0.7;
        b8.data[7 * 12..8 * 12].copy_from_slice(&[
            0.0,
            0.0,
            0.0,
            -100.0,
            -100.0,
            0.0,
            0.0,
            0.0,
            2f32.ln(),
            0.0,
            -100.0,
            -100.0,
        ]);
        // Stride 16, cell 4 = (x 1, y 1): point (16, 16); all sides uniform → 1 bin = 16 px.
        // Box (0, 0, 32, 32) → (0, 0, 0.8, 1 (clipped from 1.333)). Both classes ≥ threshold.
        s16.data[4 * 2] = 0.9;
        s16.data[4 * 2 + 1] = 0.6;
        b16.data[4 * 12..5 * 12].fill(0.0);
        let mut out = Vec::new();
        d.decode_into(&views(&[s8, b8, s16, b16]), 0.5, &mut out)
            .unwrap();
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!((out[0].label, out[0].score), (1, 0.7));
        let b = out[0].bbox;
        for (g, e) in [(b.x1, 0.2), (b.y1, 0.0), (b.x2, 0.65), (b.y2, 1.0 / 3.0)] {
            assert!((g - e).abs() < 1e-6, "{b:?}");
        }
        assert_eq!((out[1].label, out[1].score), (0, 0.9));
        assert_eq!((out[2].label, out[2].score), (1, 0.6));
        let b = out[1].bbox;
        for (g, e) in [(b.x1, 0.0), (b.y1, 0.0), (b.x2, 0.8), (b.y2, 1.0)] {
            assert!((g - e).abs() < 1e-6, "{b:?}");
        }
        assert_eq!(out[1].bbox, out[2].bbox);
    }

    #[test]
    fn cell_offset_moves_the_point() {
        // Offset 0.5: stride 8 cell 0 point (4, 4); uniform bins → 8 px each side →
        // (−4, −4, 12, 12)/(40, 24) → (0, 0, 0.3, 0.5).
        let d = decoder(0.5, 40, 24);
        let mut s8 = Tensor::zeros(vec![1, 15, 2]);
        s8.data[0] = 1.0;
        let out = {
            let mut v = Vec::new();
            let outs = [
                s8,
                Tensor::zeros(vec![1, 15, 12]),
                Tensor::zeros(vec![1, 6, 2]),
                Tensor::zeros(vec![1, 6, 12]),
            ];
            d.decode_into(&views(&outs), 0.5, &mut v).unwrap();
            v
        };
        assert_eq!(out.len(), 1);
        let b = out[0].bbox;
        for (g, e) in [(b.x1, 0.0), (b.y1, 0.0), (b.x2, 0.3), (b.y2, 0.5)] {
            assert!((g - e).abs() < 1e-6, "{b:?}");
        }
    }

    #[test]
    fn wrong_shapes_name_the_output() {
        let d = decoder(0.0, 40, 24);
        let outs = [
            Tensor::zeros(vec![1, 15, 2]),
            Tensor::zeros(vec![1, 15, 12]),
            Tensor::zeros(vec![1, 6, 2]),
            Tensor::zeros(vec![1, 6, 11]),
        ];
        let err = d
            .decode_into(&views(&outs), 0.5, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("#3 `b16`") && err.contains("[1, 6, 12]"),
            "{err}"
        );
        let outs = [
            Tensor::zeros(vec![1, 16, 2]),
            Tensor::zeros(vec![1, 15, 12]),
            Tensor::zeros(vec![1, 6, 2]),
            Tensor::zeros(vec![1, 6, 12]),
        ];
        let err = d
            .decode_into(&views(&outs), 0.5, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("#0 `s8`") && err.contains("[1, 15, 2]"),
            "{err}"
        );
    }
}
