//! A 1×1 expansion fused into the 3×3 depthwise convolution that reads it — MobileNetV2's
//! inverted residual is expand → depthwise → project, and the expanded map (six times the
//! block's input) is written once and read once, by the depthwise layer alone. On the GPU one
//! kernel computes both with the expanded tile in shared memory (`conv_expand_dw_s*` in
//! cuda/kernels.cu): at batch 1 the depthwise layer stops being a launch of its own that waits
//! for the expansion and reads its output back from memory.
//!
//! The 1×1 projection that reads such a step's output is then folded in too
//! ([`ConvStep::project`]): the whole inverted residual as one step, which one kernel can run
//! (`conv_inverted_residual_*`), the depthwise output never leaving the chip either.
//!
//! The expansion and the projection stay whole convolutions inside the depthwise step
//! ([`ConvStep::expand`], [`ConvStep::project`]), so an engine may still run them apart (the
//! cuda backend measures the ways per layer) and the CPU reference runs them in order.

use super::plan::{ConvStep, Plan, Step, Strided};

/// The fused kernel stages the expansion's whole reduction (its input channels) in shared
/// memory at once; longer ones stay apart.
pub const MAX_EXPAND_INPUT: usize = 256;

/// The whole-block kernel keeps a tile's projection sums for all output channels in registers
/// and shared memory; wider projections stay apart.
pub const MAX_PROJECT_OUTPUT: usize = 320;

/// Folds every 1×1 convolution of `plan` that feeds a fusable depthwise one into it, then every
/// 1×1 projection that reads such a fused step.
pub fn fuse(plan: &mut Plan) {
    fold(plan, expansion_of, |d, e| d.expand = Some(Box::new(e)));
    fold(plan, projection_of, |d, p| d.project = Some(Box::new(p)));
}

/// Moves every convolution that `partner(plan, j)` finds for a step `j` into that step.
fn fold(
    plan: &mut Plan,
    partner: fn(&Plan, usize) -> Option<usize>,
    attach: fn(&mut ConvStep, ConvStep),
) {
    let mut j = 0;
    while j < plan.steps.len() {
        let Some(i) = partner(plan, j) else {
            j += 1;
            continue;
        };
        let moved = plan.steps.remove(i);
        // Step `j` moved up by one if its partner was in front of it.
        let at = if i < j { j - 1 } else { j };
        match (&mut plan.steps[at], moved) {
            (Step::Conv(d), Step::Conv(c)) => {
                attach(d, c);
                j = at + 1;
            }
            // `partner` checked both; keep the plan whole whatever happens.
            (_, other) => {
                plan.steps.insert(i, other);
                j += 1;
            }
        }
    }
}

/// The step that can be fused into step `j` as its expansion: `j` is a 3×3 depthwise
/// convolution (stride 1 or 2, no residual, dense input), its input is written by one 1×1
/// convolution (stride 1, no padding, dense output, at most MAX_EXPAND_INPUT input channels)
/// and read by nothing else, and no step between the two writes what the expansion reads (it
/// now reads it later).
fn expansion_of(plan: &Plan, j: usize) -> Option<usize> {
    let Step::Conv(d) = &plan.steps[j] else {
        return None;
    };
    let depthwise = d.is_depthwise()
        && (d.r, d.s) == (3, 3)
        && d.dilation == [1, 1]
        && d.stride[0] == d.stride[1]
        && (1..=2).contains(&d.stride[0])
        && d.residual.is_none()
        && d.expand.is_none()
        && d.x_at == Strided::dense(d.c);
    if !depthwise || d.x == plan.input || plan.outputs.iter().any(|(b, _)| *b == d.x) {
        return None;
    }
    let writers: Vec<usize> = (0..plan.steps.len())
        .filter(|&k| plan.steps[k].writes() == d.x)
        .collect();
    let readers = plan
        .steps
        .iter()
        .filter(|s| s.reads().contains(&d.x))
        .count();
    let (&[i], 1) = (writers.as_slice(), readers) else {
        return None;
    };
    let Step::Conv(e) = &plan.steps[i] else {
        return None;
    };
    let pointwise = is_expansion(e, d);
    let untouched = i < j && plan.steps[i + 1..j].iter().all(|s| s.writes() != e.x);
    (pointwise && untouched).then_some(i)
}

/// The step that can be fused into step `j` as its projection: `j` has a fused expansion, its
/// output (dense, not a plan output) is read by one later 1×1 convolution (groups 1, stride 1, no
/// padding, dense input, at most MAX_PROJECT_OUTPUT channels, input channels a multiple of 8:
/// the kernel copies its weights 16 bytes at a time) and written by nothing else; the
/// projection's residual, if any, is the block's input (which step `j` has read already); and
/// no step in between touches the projection's output (it is now written earlier).
fn projection_of(plan: &Plan, j: usize) -> Option<usize> {
    let Step::Conv(d) = &plan.steps[j] else {
        return None;
    };
    let e = d.expand.as_ref()?;
    if d.project.is_some()
        || d.y_at != Strided::dense(d.k)
        || d.k % 8 != 0
        || plan.outputs.iter().any(|(b, _)| *b == d.y)
    {
        return None;
    }
    let readers: Vec<usize> = (0..plan.steps.len())
        .filter(|&k| plan.steps[k].reads().contains(&d.y))
        .collect();
    let writers = plan.steps.iter().filter(|s| s.writes() == d.y).count();
    let (&[k], 1) = (readers.as_slice(), writers) else {
        return None;
    };
    let Step::Conv(p) = &plan.steps[k] else {
        return None;
    };
    let pointwise = is_plain_pointwise(p)
        && p.x == d.y
        && p.x_at == Strided::dense(p.c)
        && p.k <= MAX_PROJECT_OUTPUT
        && (p.n, p.h, p.w, p.c) == (d.n, d.oh, d.ow, d.k)
        && p.residual.is_none_or(|r| r == e.x);
    let untouched = j < k
        && plan.steps[j + 1..k]
            .iter()
            .all(|s| s.writes() != p.y && !s.reads().contains(&p.y));
    (pointwise && untouched).then_some(k)
}

/// `c` is a 1×1 convolution (groups 1, stride 1, no padding or dilation) with nothing fused
/// into it yet.
fn is_plain_pointwise(c: &ConvStep) -> bool {
    (c.r, c.s) == (1, 1)
        && c.groups == 1
        && c.stride == [1, 1]
        && c.pad == [0, 0]
        && c.dilation == [1, 1]
        && c.expand.is_none()
        && c.project.is_none()
}

/// `e` is a plain 1×1 convolution producing exactly `d`'s input.
fn is_expansion(e: &ConvStep, d: &ConvStep) -> bool {
    is_plain_pointwise(e)
        && e.residual.is_none()
        && e.y_at == Strided::dense(e.k)
        && e.c <= MAX_EXPAND_INPUT
        && (e.n, e.oh, e.ow, e.k) == (d.n, d.h, d.w, d.c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{in_place, onnx, reference};
    use super::*;
    use adas_plugins::Manifest;
    use std::path::Path;

    fn lowered(manifest: &str, batch: usize) -> Plan {
        let root = Path::new(env!("ADAS_REPO_ROOT"));
        let m = Manifest::load(&root.join("models").join(manifest)).unwrap();
        let mut shape = m.input.shape.to_vec();
        shape[0] = batch;
        let nchw = m.input.layout == adas_plugins::manifest::Layout::Nchw;
        let g = onnx::load(&m.onnx).unwrap();
        let target = super::super::Target {
            tensor_cores: false,
        };
        let mut p = super::super::compile(&g, &shape, nchw, &m.output_names(), target).unwrap();
        in_place::write_concats_in_place(&mut p);
        p
    }

    fn fused(p: &Plan) -> Vec<&ConvStep> {
        p.steps
            .iter()
            .filter_map(|s| match s {
                Step::Conv(c) if c.expand.is_some() => Some(c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ssdlite_inverted_residuals_fuse_whole() {
        let before = lowered("ssdlite_mobilenet_v2_pedestrian_300.toml", 1);
        let mut p = before.clone();
        fuse(&mut p);
        let f = fused(&p);
        // 15 of MobileNetV2's 16 expanding blocks (the first block has no expansion; block 13's
        // expanded map is also SSD's first feature map, read by a box predictor), plus the two
        // last SSD extra layers (1×1 256 → 128 and 256 → 64 in front of a stride-2 depthwise);
        // the first two extra layers expand from 1280 and 512 channels, beyond MAX_EXPAND_INPUT.
        // Every one of them has its projection folded in too (at most 320 channels: block 16's
        // 960 → 320), 10 with the block's residual.
        assert_eq!(f.len(), 17, "{}", p.summary());
        assert_eq!(p.steps.len(), before.steps.len() - 2 * 17);
        assert_eq!(f.iter().filter(|c| c.stride == [2, 2]).count(), 3 + 2);
        let mut residuals = 0;
        for c in &f {
            let e = c.expand.as_ref().unwrap();
            assert_eq!((e.r, e.s, e.k), (1, 1, c.c), "{}", c.node);
            assert_eq!(e.y, c.x);
            let pr = c.project.as_ref().unwrap();
            assert_eq!((pr.r, pr.s, pr.c, pr.x), (1, 1, c.k, c.y), "{}", c.node);
            if let Some(r) = pr.residual {
                assert_eq!(r, e.x, "{}", c.node);
                residuals += 1;
            }
            // Nothing else touches the expanded map or the depthwise output any more.
            for inner in [c.x, c.y] {
                assert!(p
                    .steps
                    .iter()
                    .all(|s| s.writes() != inner && !s.reads().contains(&inner)));
            }
        }
        assert_eq!(residuals, 10);
        // The CPU reference runs fused steps as their convolutions: same numbers.
        let input: Vec<f32> = (0..before.buffers[before.input])
            .map(|i| ((i % 255) as f32 / 127.5) - 1.0)
            .collect();
        assert_eq!(reference::run(&p, &input), reference::run(&before, &input));
    }

    #[test]
    fn nanodet_has_nothing_to_fuse() {
        // A CSP network of dense 3×3 convolutions: no depthwise layers.
        let before = lowered("nanodet_m_coco_416.toml", 1);
        let mut p = before.clone();
        fuse(&mut p);
        assert_eq!(p.steps, before.steps);
    }
}
