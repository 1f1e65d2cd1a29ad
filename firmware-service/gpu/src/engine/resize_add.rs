//! Adds fused into resizes. A feature pyramid adds a resized map to a lateral one. Fused into the
//! lateral convolution's epilogue (the plan's general residual rule, applied while lowering) the
//! add makes that convolution wait for the whole top-down path although it only reads the
//! backbone; fused into the resize instead, the lateral can run beside the backbone
//! (`engine::branches`) and the add still costs no kernel of its own. Two rewrites, each only
//! where the resize's output has no other reader:
//! - a Conv without activation whose residual is the resize's output: the convolution writes its
//!   plain output, and the resize, moved right after it, adds itself into that buffer in place;
//! - an Eltwise add without activation of the resize's output and another value: the resize
//!   writes the sum and the Eltwise goes.
//!
//! NanoDet's PAN: 2 laterals leave the top-down chain, 2 element-wise kernels disappear.

use super::plan::{BufId, Plan, Step};
use adas_plugins::gpu::Act;

/// Applies both rewrites wherever they fit.
pub fn fuse(plan: &mut Plan) {
    let mut i = 0;
    while i < plan.steps.len() {
        // Each rewrite removes a residual or a step, so re-examining `i` terminates.
        if !fuse_at(plan, i) {
            i += 1;
        }
    }
}

fn fuse_at(plan: &mut Plan, i: usize) -> bool {
    match &plan.steps[i] {
        Step::Conv(c) if c.act == Act::None => {
            let (Some(resized), y) = (c.residual, c.y) else {
                return false;
            };
            let Some(r) = lone_resize(plan, resized, i) else {
                return false;
            };
            if let Step::Conv(c) = &mut plan.steps[i] {
                c.residual = None;
            }
            let resize = add_into(plan.steps.remove(r), y, y);
            // The convolution moved to i - 1: the resize follows it.
            plan.steps.insert(i, resize);
            true
        }
        &Step::Eltwise {
            a,
            b: Some(b),
            y,
            act: Act::None,
            ..
        } => {
            for (resized, other) in [(a, b), (b, a)] {
                if let Some(r) = lone_resize(plan, resized, i).filter(|_| resized != other) {
                    let resize = add_into(plan.steps.remove(r), y, other);
                    // The Eltwise moved to i - 1: the resize takes its place.
                    plan.steps[i - 1] = resize;
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

/// The index of the step writing `buf` when that is a resize without a fused add, before step
/// `user`, and `user` is the only reader of `buf` (not the network's input or an output).
fn lone_resize(plan: &Plan, buf: BufId, user: usize) -> Option<usize> {
    if buf == plan.input || plan.outputs.iter().any(|(b, _)| *b == buf) {
        return None;
    }
    let writers: Vec<usize> = (0..plan.steps.len())
        .filter(|&j| plan.steps[j].writes() == buf)
        .collect();
    let readers = plan
        .steps
        .iter()
        .filter(|s| s.reads().contains(&buf))
        .count();
    match (writers.as_slice(), readers) {
        (&[r], 1) if r < user && matches!(plan.steps[r], Step::Resize { residual: None, .. }) => {
            Some(r)
        }
        _ => None,
    }
}

/// The resize `step` writing `y = resize(x) + residual`.
fn add_into(mut step: Step, y: BufId, residual: BufId) -> Step {
    if let Step::Resize {
        y: out,
        residual: add,
        ..
    } = &mut step
    {
        *out = y;
        *add = Some(residual);
    }
    step
}
