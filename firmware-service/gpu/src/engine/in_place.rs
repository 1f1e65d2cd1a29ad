//! Concat inputs written in place. A convolution whose output is copied into a slice of a Concat
//! writes straight into that slice instead, and its other readers (convolutions, copies) read it
//! from there: one copy kernel and its memory traffic less per Concat input. NanoDet's backbone
//! concatenates [branch, shortcut] 11 times; SSD's heads concatenate six box and six class maps.

use super::plan::{BufId, ConvStep, Plan, Step, Strided};

/// Rewrites every Copy of `plan` that can be written in place by its producer.
pub fn write_concats_in_place(plan: &mut Plan) {
    let mut i = 0;
    while i < plan.steps.len() {
        match redirect(plan, i) {
            Some(r) => {
                apply(plan, &r);
                plan.steps.remove(i);
            }
            None => i += 1,
        }
    }
}

/// Copy step `copy` as a redirect: the convolution `producer` writes buffer `from` at `to` of
/// buffer `into` instead; its readers follow.
struct Redirect {
    copy: usize,
    producer: usize,
    from: BufId,
    into: BufId,
    to: Strided,
    /// The producer's channel count (its dense pixel pitch).
    k: usize,
}

fn redirect(plan: &Plan, copy: usize) -> Option<Redirect> {
    let Step::Copy {
        x,
        y,
        outer,
        len,
        x_stride,
        y_stride,
        x_offset: 0,
        y_offset,
    } = plan.steps[copy]
    else {
        return None;
    };
    if x_stride != len || x == plan.input || plan.outputs.iter().any(|(b, _)| *b == x) {
        return None;
    }
    let writers: Vec<usize> = (0..plan.steps.len())
        .filter(|&j| plan.steps[j].writes() == x)
        .collect();
    let &[producer] = writers.as_slice() else {
        return None;
    };
    let Step::Conv(c) = &plan.steps[producer] else {
        return None;
    };
    if producer > copy || c.y_at != Strided::dense(c.k) {
        return None;
    }
    let pixels = c.n * c.oh * c.ow;
    let to = if outer == pixels && len == c.k {
        // A channel slice of an NHWC concat.
        Strided {
            offset: y_offset,
            pitch: y_stride,
        }
    } else if outer == 1 && len == pixels * c.k {
        // A contiguous block (batch 1 of a flattened concat).
        Strided {
            offset: y_offset,
            pitch: c.k,
        }
    } else {
        return None;
    };
    // Only copies (and producers already redirected) write a concat; anything else writing
    // `y` means it is not one.
    let concat_only = plan
        .steps
        .iter()
        .all(|s| s.writes() != y || matches!(s, Step::Copy { .. } | Step::Conv(_)));
    let readers_follow = plan.steps.iter().enumerate().all(|(j, s)| {
        j == copy || j == producer || !s.reads().contains(&x) || follows(s, x, c, to)
    });
    (concat_only && readers_follow).then_some(Redirect {
        copy,
        producer,
        from: x,
        into: y,
        to,
        k: c.k,
    })
}

/// Whether step `s`, which reads buffer `x` (written by `c`), can read it at `to` instead.
fn follows(s: &Step, x: BufId, c: &ConvStep, to: Strided) -> bool {
    match s {
        Step::Conv(r) => r.residual != Some(x) && r.x_at == Strided::dense(r.c),
        Step::Copy {
            outer,
            len,
            x_stride,
            x_offset,
            ..
        } => {
            to.pitch == c.k
                || (*x_stride == c.k && *outer == c.n * c.oh * c.ow && x_offset + len <= c.k)
        }
        _ => false,
    }
}

fn apply(plan: &mut Plan, r: &Redirect) {
    let (from, into, to) = (r.from, r.into, r.to);
    for (j, s) in plan.steps.iter_mut().enumerate() {
        if j == r.copy {
            continue;
        }
        match s {
            Step::Conv(c) if j == r.producer => {
                c.y = into;
                c.y_at = to;
            }
            Step::Conv(c) if c.x == from => {
                c.x = into;
                c.x_at = to;
            }
            Step::Copy {
                x,
                x_stride,
                x_offset,
                ..
            } if *x == from => {
                *x = into;
                *x_offset += to.offset;
                if *x_stride == r.k {
                    *x_stride = to.pitch;
                }
            }
            _ => {}
        }
    }
    plan.buffers[from] = 0;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::engine::reference;
    use adas_plugins::gpu::Act;

    /// A 3×3 convolution (padding 1) from `x` (c channels) to a new buffer of k channels.
    fn conv(plan: &mut Plan, x: BufId, c: usize, k: usize, residual: Option<BufId>) -> BufId {
        let (n, h, w) = (1, 5, 4);
        let seed = plan.weights.len() as f32;
        let weights = (0..k * 9 * c)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 0.5)
            .collect();
        plan.weights.push(weights);
        plan.buffers.push(n * h * w * k);
        let y = plan.buffers.len() - 1;
        plan.steps.push(Step::Conv(ConvStep {
            node: format!("conv{y}"),
            x,
            y,
            weight: plan.weights.len() - 1,
            bias: None,
            residual,
            act: Act::Relu,
            n,
            h,
            w,
            c,
            k,
            r: 3,
            s: 3,
            pad: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            groups: 1,
            oh: h,
            ow: w,
            x_at: Strided::dense(c),
            y_at: Strided::dense(k),
            expand: None,
            project: None,
        }));
        y
    }

    /// NanoDet's backbone pattern: a = conv(x); b = conv(a); concat(b, a) along channels; then
    /// a consumer of the concat, plus whatever `extra` adds.
    fn shuffle_block(extra: impl Fn(&mut Plan, BufId)) -> Plan {
        let mut plan = Plan {
            qweights: Vec::new(),
            buffers: vec![20 * 3],
            steps: Vec::new(),
            weights: Vec::new(),
            input: 0,
            input_shape: vec![1, 5, 4, 3],
            outputs: Vec::new(),
        };
        let a = conv(&mut plan, 0, 3, 8, None);
        let b = conv(&mut plan, a, 8, 8, None);
        plan.buffers.push(20 * 16);
        let cat = plan.buffers.len() - 1;
        for (src, offset) in [(b, 0), (a, 8)] {
            plan.steps.push(Step::Copy {
                x: src,
                y: cat,
                outer: 20,
                len: 8,
                x_stride: 8,
                y_stride: 16,
                x_offset: 0,
                y_offset: offset,
            });
        }
        let out = conv(&mut plan, cat, 16, 4, None);
        extra(&mut plan, a);
        plan.outputs.push((out, vec![1, 4, 5, 4]));
        plan
    }

    fn copies(plan: &Plan) -> usize {
        plan.steps
            .iter()
            .filter(|s| matches!(s, Step::Copy { .. }))
            .count()
    }

    fn same_outputs(before: &Plan, after: &Plan) {
        let input: Vec<f32> = (0..60).map(|i| (i as f32 * 0.11).cos()).collect();
        assert_eq!(
            reference::run(before, &input),
            reference::run(after, &input)
        );
    }

    #[test]
    fn concat_inputs_are_written_in_place_and_read_there() {
        let before = shuffle_block(|_, _| {});
        let mut after = before.clone();
        write_concats_in_place(&mut after);
        assert_eq!((copies(&before), copies(&after)), (2, 0));
        // `a` now lives in channels 8..16 of the concat, and `b` reads it there.
        let Step::Conv(b) = &after.steps[1] else {
            panic!("{:?}", after.steps[1])
        };
        assert_eq!(
            b.x_at,
            Strided {
                offset: 8,
                pitch: 16
            }
        );
        assert!(!after.steps.iter().all(|s| match s {
            Step::Conv(c) => c.is_dense(),
            _ => true,
        }));
        same_outputs(&before, &after);
    }

    #[test]
    fn a_reader_that_cannot_follow_keeps_its_copy() {
        // An element-wise reader of `a` (and a residual one) cannot read a strided slice.
        let before = shuffle_block(|plan, a| {
            plan.buffers.push(20 * 8);
            let y = plan.buffers.len() - 1;
            plan.steps.push(Step::Eltwise {
                a,
                b: None,
                y,
                len: 160,
                act: Act::None,
            });
            let r = conv(plan, a, 8, 8, Some(a));
            plan.outputs.push((y, vec![1, 8, 5, 4]));
            plan.outputs.push((r, vec![1, 8, 5, 4]));
        });
        let mut after = before.clone();
        write_concats_in_place(&mut after);
        assert_eq!((copies(&before), copies(&after)), (2, 1));
        same_outputs(&before, &after);
    }
}
