//! Independent branches: which steps of a plan may run side by side on the GPU.
//!
//! At batch 1 most kernels fill a fraction of the GPU, and each costs a few microseconds of
//! launch and ramp whatever its size, so the independent branches of a network (SSDLite's box
//! predictors beside the backbone, NanoDet's three heads) are worth running concurrently. The
//! plan stays a flat list; this module orders its steps for enqueueing, assigns each a lane (a
//! CUDA stream) and the cross-lane waits that keep every data dependency, so that a CUDA graph
//! captured from the lanes has the plan's dependency structure.
//!
//! Two steps depend on each other when they touch the same buffer and at least one writes it,
//! except two writers of provably disjoint parts of one buffer (convolutions, copies and
//! requantizations writing their slices of a concat in place). Every other buffer has one writer and is never reused.

use super::plan::Step;

/// Enqueue order, lane and waits of every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Lanes in use (lane 0 is the stream the frame runs on).
    pub lanes: usize,
    /// Step indices in the order they are enqueued (a topological order of the dependencies).
    pub order: Vec<usize>,
    /// Per step: its lane.
    pub lane: Vec<usize>,
    /// Per step: the steps on other lanes it must wait for, beyond its own lane's order.
    pub waits: Vec<Vec<usize>>,
    /// Per step: whether a later step waits for it (its completion is recorded).
    pub signals: Vec<bool>,
}

impl Schedule {
    /// Every step on lane 0, in plan order.
    pub fn serial(steps: usize) -> Schedule {
        Schedule {
            lanes: 1,
            order: (0..steps).collect(),
            lane: vec![0; steps],
            waits: vec![Vec::new(); steps],
            signals: vec![false; steps],
        }
    }
}

/// The values a step writes: `rows` runs of `width` at `offset + row · pitch` of its output
/// buffer (convolutions into a concat slice, copies); None = the whole buffer.
fn written(s: &Step) -> Option<(usize, usize, usize, usize)> {
    match s {
        Step::Conv(c) => {
            let c = c.output();
            Some((c.y_at.offset, c.y_at.pitch, c.k, c.n * c.oh * c.ow))
        }
        s => s
            .slice_written()
            .map(|slice| (slice.offset, slice.stride, slice.len, slice.outer)),
    }
}

/// Whether two written parts of one buffer provably do not overlap: their spans are apart, or
/// they are different columns of rows with the same pitch.
fn disjoint(
    a: Option<(usize, usize, usize, usize)>,
    b: Option<(usize, usize, usize, usize)>,
) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    let span = |(offset, pitch, width, rows): (usize, usize, usize, usize)| {
        (offset, offset + rows.saturating_sub(1) * pitch + width)
    };
    let ((a0, a1), (b0, b1)) = (span(a), span(b));
    if a1 <= b0 || b1 <= a0 {
        return true;
    }
    let column = |(offset, pitch, width, _): (usize, usize, usize, usize)| {
        (offset % pitch.max(1), offset % pitch.max(1) + width)
    };
    let ((ac0, ac1), (bc0, bc1)) = (column(a), column(b));
    a.1 == b.1
        && a.0 / a.1.max(1) == b.0 / b.1.max(1)
        && ac1 <= a.1
        && bc1 <= b.1
        && (ac1 <= bc0 || bc1 <= ac0)
}

/// For every step, the earlier steps it depends on, latest first.
pub fn dependencies(steps: &[Step]) -> Vec<Vec<usize>> {
    (0..steps.len())
        .map(|i| {
            let (reads, writes) = (steps[i].reads(), steps[i].writes());
            (0..i)
                .rev()
                .filter(|&j| {
                    let (their_reads, their_writes) = (steps[j].reads(), steps[j].writes());
                    reads.contains(&their_writes)
                        || their_reads.contains(&writes)
                        || (writes == their_writes
                            && !disjoint(written(&steps[i]), written(&steps[j])))
                })
                .collect()
        })
        .collect()
}

/// Orders the steps by depth in the dependency graph (a branch is enqueued beside the steps it
/// runs with, not where the plan lists it), then assigns lanes (at most `max_lanes`) and waits.
/// A step takes, in this order of preference: the lane its latest dependency ends; a lane whose
/// last step it is already ordered after; a new lane; the lane whose last step is shallowest
/// (long finished, most likely). Waits are pruned with vector clocks: a dependency already
/// ordered before the step through its lane or an earlier wait is not waited for again.
pub fn schedule(steps: &[Step], max_lanes: usize) -> Schedule {
    let max_lanes = max_lanes.max(1);
    let deps = dependencies(steps);
    let n = steps.len();
    let mut depth = vec![0usize; n];
    for i in 0..n {
        depth[i] = deps[i].iter().map(|&j| depth[j] + 1).max().unwrap_or(0);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (depth[i], i));
    // clock[i][l]: 1 + the enqueue position of the latest step of lane l that step i is ordered
    // after (itself included); 0 = none.
    let mut clock: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut position = vec![0usize; n];
    let mut tails: Vec<usize> = Vec::new();
    let mut lane = vec![0usize; n];
    let mut waits = vec![Vec::new(); n];
    let mut signals = vec![false; n];
    for (at, &i) in order.iter().enumerate() {
        position[i] = at;
        let mut mine: Vec<usize> = deps[i].clone();
        mine.sort_by_key(|&j| std::cmp::Reverse(position[j]));
        let after = |t: usize, l: usize| mine.iter().any(|&j| clock[j][l] > position[t]);
        let chosen = mine
            .iter()
            .find_map(|&j| tails.iter().position(|&t| t == j))
            .or_else(|| (0..tails.len()).find(|&l| after(tails[l], l)))
            .or_else(|| (tails.len() < max_lanes).then_some(tails.len()))
            .unwrap_or_else(|| {
                (0..tails.len())
                    .min_by_key(|&l| (depth[tails[l]], position[tails[l]]))
                    .unwrap_or(0)
            });
        let mut now = match tails.get(chosen) {
            Some(&t) => clock[t].clone(),
            None => {
                tails.push(i);
                vec![0; max_lanes]
            }
        };
        for &j in &mine {
            if now[lane[j]] <= position[j] {
                waits[i].push(j);
                signals[j] = true;
                for (a, b) in now.iter_mut().zip(&clock[j]) {
                    *a = (*a).max(*b);
                }
            }
        }
        now[chosen] = at + 1;
        clock[i] = now;
        tails[chosen] = i;
        lane[i] = chosen;
    }
    Schedule {
        lanes: tails.len().max(1),
        order,
        lane,
        waits,
        signals,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use adas_plugins::gpu::Act;

    fn eltwise(a: usize, b: Option<usize>, y: usize) -> Step {
        Step::Eltwise {
            a,
            b,
            y,
            len: 4,
            act: Act::None,
        }
    }

    /// Whether step `j` is ordered before step `i` by the schedule: along a lane, or through a
    /// wait, transitively.
    fn ordered(s: &Schedule, j: usize, i: usize) -> bool {
        let mut stack = vec![i];
        let mut seen = vec![false; s.lane.len()];
        while let Some(k) = stack.pop() {
            if k == j {
                return true;
            }
            if std::mem::replace(&mut seen[k], true) {
                continue;
            }
            stack.extend(s.waits[k].iter().copied());
            let at = s.order.iter().position(|&o| o == k).unwrap();
            if let Some(&prev) = s.order[..at]
                .iter()
                .rev()
                .find(|&&p| s.lane[p] == s.lane[k])
            {
                stack.push(prev);
            }
        }
        false
    }

    /// The enqueue order is a topological order, every dependency is kept, every wait is
    /// signalled and on another lane.
    fn check(steps: &[Step], s: &Schedule) {
        let mut sorted = s.order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..steps.len()).collect::<Vec<_>>());
        let at = |i: usize| s.order.iter().position(|&o| o == i).unwrap();
        for (i, deps) in dependencies(steps).iter().enumerate() {
            for &j in deps {
                assert!(at(j) < at(i), "step {j} is enqueued after step {i}");
                assert!(ordered(s, j, i), "step {i} may run before step {j}");
            }
            for &j in &s.waits[i] {
                assert!(
                    s.signals[j],
                    "step {i} waits for {j}, which records nothing"
                );
                assert_ne!(s.lane[j], s.lane[i], "step {i} waits on its own lane");
            }
        }
    }

    #[test]
    fn a_chain_stays_on_one_lane() {
        let steps: Vec<Step> = (0..5).map(|b| eltwise(b, None, b + 1)).collect();
        let s = schedule(&steps, 4);
        assert_eq!(s.lanes, 1);
        assert!(s.waits.iter().all(Vec::is_empty));
        check(&steps, &s);
    }

    #[test]
    fn a_fork_runs_its_branches_side_by_side_and_joins_once() {
        // 0 → 1 → {2 → 3, 4 → 5} → 6 (reads 3 and 5)
        let steps = vec![
            eltwise(0, None, 1),
            eltwise(1, None, 2),
            eltwise(2, None, 3),
            eltwise(3, None, 4),
            eltwise(2, None, 5),
            eltwise(5, None, 6),
            eltwise(4, Some(6), 7),
        ];
        let s = schedule(&steps, 4);
        assert_eq!(s.lanes, 2);
        assert_ne!(s.lane[2], s.lane[4], "the branches share a lane");
        assert_eq!(s.waits.iter().map(Vec::len).sum::<usize>(), 2, "{s:?}");
        check(&steps, &s);
        let one = schedule(&steps, 1);
        assert!(
            one.lanes == 1 && one.waits.iter().all(Vec::is_empty),
            "{one:?}"
        );
        check(&steps, &one);
    }

    /// A copy of 2 rows × `len` into buffer 9 at `y_offset`, rows `y_stride` apart.
    fn copy(x: usize, len: usize, y_stride: usize, y_offset: usize) -> Step {
        Step::Copy {
            x,
            y: 9,
            outer: 2,
            len,
            x_stride: len,
            y_stride,
            x_offset: 0,
            y_offset,
        }
    }

    #[test]
    fn writers_of_disjoint_slices_are_independent_and_overlapping_ones_ordered() {
        // Channels 0..3 and 3..8 of rows of 8 (a concat written in place), then a reader.
        let columns = vec![copy(0, 3, 8, 0), copy(1, 5, 8, 3), eltwise(9, None, 10)];
        let deps = dependencies(&columns);
        assert!(deps[1].is_empty(), "{deps:?}");
        assert_eq!(deps[2], vec![1, 0]);
        // One block after the other (rows of 4 at 0 and at 8): apart.
        assert!(dependencies(&[copy(0, 4, 4, 0), copy(1, 4, 4, 8)])[1].is_empty());
        // Channels 0..4 and 3..8: overlap.
        assert_eq!(
            dependencies(&[copy(0, 4, 8, 0), copy(1, 5, 8, 3)])[1],
            vec![0]
        );
        // Same columns, different pitch: not provably apart.
        assert_eq!(
            dependencies(&[copy(0, 3, 8, 0), copy(1, 3, 6, 3)])[1],
            vec![0]
        );
        // Whole-buffer writers.
        assert_eq!(
            dependencies(&[eltwise(0, None, 9), eltwise(1, None, 9)])[1],
            vec![0]
        );
        let s = schedule(&columns, 4);
        check(&columns, &s);
        assert_eq!(s.lanes, 2, "{s:?}");
    }

    #[test]
    fn the_shipped_models_keep_every_dependency_and_gain_lanes() {
        use crate::engine::onnx;
        use adas_plugins::manifest::{Layout, Manifest};
        let models = std::path::Path::new(env!("ADAS_REPO_ROOT")).join("models");
        for name in [
            "nanodet_m_coco_416.toml",
            "ssdlite_mobilenet_v2_pedestrian_300.toml",
        ] {
            let m = Manifest::load(&models.join(name)).unwrap();
            let graph = onnx::load(&m.onnx).unwrap();
            let nchw = m.input.layout == Layout::Nchw;
            // As the FP16 tensor-core engine runs it.
            let target = crate::engine::Target { tensor_cores: true };
            let p = crate::engine::compile(&graph, &m.input.shape, nchw, &m.output_names(), target)
                .unwrap();
            let s = schedule(&p.steps, 4);
            check(&p.steps, &s);
            assert!(s.lanes > 1, "{name}: no independent branches found");
            let waits: usize = s.waits.iter().map(Vec::len).sum();
            println!(
                "{name}: {} steps on {} lanes, {waits} cross-lane waits",
                p.steps.len(),
                s.lanes
            );
        }
    }
}
