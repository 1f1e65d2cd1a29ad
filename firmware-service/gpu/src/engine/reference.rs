//! A plain CPU interpreter of a [`Plan`]: the executable specification of every GPU kernel
//! (conv + epilogue, pad, pooling, resize, copies, permutes). Tests run it against tract on the
//! shipped models, so lowering mistakes are caught without a GPU; the GPU test machine then
//! compares the CUDA kernels with the same outputs.

use super::plan::{ConvStep, Coord, Operand, Plan, Step};

/// Source coordinate of output index `o` for Resize (before clamping).
pub fn resize_coord(o: usize, scale: f32, in_len: usize, out_len: usize, coord: Coord) -> f32 {
    let o = o as f32;
    match coord {
        Coord::HalfPixel => (o + 0.5) / scale - 0.5,
        Coord::PytorchHalfPixel if out_len > 1 => (o + 0.5) / scale - 0.5,
        Coord::PytorchHalfPixel => 0.0,
        Coord::Asymmetric => o / scale,
        Coord::AlignCorners if out_len > 1 => o * (in_len as f32 - 1.0) / (out_len as f32 - 1.0),
        Coord::AlignCorners => 0.0,
    }
}

/// One convolution with its epilogue: `y_at` of `c.y` ← act(conv(x) + bias + residual).
fn conv(c: &ConvStep, bufs: &mut [Vec<f32>], w: &[Vec<f32>]) {
    let x = &bufs[c.x];
    let (cg, kg) = (c.c / c.groups, c.k / c.groups);
    // Output pixel-major in its own order; placed at `y_at` below.
    let mut y = vec![0.0f32; c.n * c.oh * c.ow * c.k];
    for n in 0..c.n {
        for oy in 0..c.oh {
            for ox in 0..c.ow {
                for k in 0..c.k {
                    let g = k / kg;
                    let mut acc = 0.0f32;
                    for r in 0..c.r {
                        let iy =
                            (oy * c.stride[0] + r * c.dilation[0]) as isize - c.pad[0] as isize;
                        if iy < 0 || iy >= c.h as isize {
                            continue;
                        }
                        for s in 0..c.s {
                            let ix =
                                (ox * c.stride[1] + s * c.dilation[1]) as isize - c.pad[1] as isize;
                            if ix < 0 || ix >= c.w as isize {
                                continue;
                            }
                            let xi = ((n * c.h + iy as usize) * c.w + ix as usize) * c.x_at.pitch
                                + c.x_at.offset
                                + g * cg;
                            let wi = ((k * c.r + r) * c.s + s) * cg;
                            for ci in 0..cg {
                                acc += x[xi + ci] * w[c.weight][wi + ci];
                            }
                        }
                    }
                    let i = ((n * c.oh + oy) * c.ow + ox) * c.k + k;
                    let mut v = acc;
                    if let Some(b) = c.bias {
                        v += w[b][k];
                    }
                    if let Some(r) = c.residual {
                        v += bufs[r][i];
                    }
                    y[i] = c.act.apply(v);
                }
            }
        }
    }
    for (p, pixel) in y.chunks(c.k).enumerate() {
        let at = p * c.y_at.pitch + c.y_at.offset;
        bufs[c.y][at..at + c.k].copy_from_slice(pixel);
    }
}

/// A batch-1 network input as the engine's input buffer holds it: NHWC (an NCHW tensor
/// transposed).
pub fn nhwc_input(input: &adas_plugins::Tensor, nchw: bool) -> Vec<f32> {
    if !nchw {
        return input.data.clone();
    }
    let (c, h, w) = (input.shape[1], input.shape[2], input.shape[3]);
    (0..h * w * c)
        .map(|i| input.data[(i % c) * h * w + i / c])
        .collect()
}

/// Runs `plan` on `input` (NHWC physical) and returns the outputs.
pub fn run(plan: &Plan, input: &[f32]) -> Vec<Vec<f32>> {
    let mut bufs: Vec<Vec<f32>> = plan.buffers.iter().map(|&n| vec![0.0; n]).collect();
    bufs[plan.input].copy_from_slice(input);
    let w = &plan.weights;
    for step in &plan.steps {
        match step {
            Step::Conv(c) => {
                // Fused 1×1 expansion and projection (`expand_dw`) run as the convolutions
                // they are, in order.
                for c in c.chain() {
                    conv(c, &mut bufs, w);
                }
            }
            Step::Pad {
                x,
                y,
                nhwc: [n, h, wd, c],
                top,
                left,
                oh,
                ow,
                value,
            } => {
                let mut out = vec![*value; n * oh * ow * c];
                for b in 0..*n {
                    for iy in 0..*h {
                        for ix in 0..*wd {
                            let src = ((b * h + iy) * wd + ix) * c;
                            let dst = ((b * oh + iy + top) * ow + ix + left) * c;
                            out[dst..dst + c].copy_from_slice(&bufs[*x][src..src + c]);
                        }
                    }
                }
                bufs[*y] = out;
            }
            Step::MaxPool {
                x,
                y,
                nhwc: [n, h, wd, c],
                kernel,
                stride,
                pad,
                oh,
                ow,
            } => {
                let mut out = vec![f32::NEG_INFINITY; n * oh * ow * c];
                for b in 0..*n {
                    for oy in 0..*oh {
                        for ox in 0..*ow {
                            for ch in 0..*c {
                                let mut m = f32::NEG_INFINITY;
                                for r in 0..kernel[0] {
                                    for s in 0..kernel[1] {
                                        let iy = (oy * stride[0] + r) as isize - pad[0] as isize;
                                        let ix = (ox * stride[1] + s) as isize - pad[1] as isize;
                                        if iy >= 0
                                            && ix >= 0
                                            && (iy as usize) < *h
                                            && (ix as usize) < *wd
                                        {
                                            m = m.max(
                                                bufs[*x][((b * h + iy as usize) * wd
                                                    + ix as usize)
                                                    * c
                                                    + ch],
                                            );
                                        }
                                    }
                                }
                                out[((b * oh + oy) * ow + ox) * c + ch] = m;
                            }
                        }
                    }
                }
                bufs[*y] = out;
            }
            Step::Resize {
                x,
                y,
                nhwc: [n, h, wd, c],
                oh,
                ow,
                scale,
                linear,
                coord,
                round,
                residual,
            } => {
                let mut out = vec![0.0; n * oh * ow * c];
                let taps = |o: usize, s: f32, len: usize, olen: usize| -> (usize, usize, f32) {
                    let f = resize_coord(o, s, len, olen, *coord);
                    if *linear {
                        let f = f.clamp(0.0, (len - 1) as f32);
                        let i0 = f.floor() as usize;
                        let i1 = (i0 + 1).min(len - 1);
                        (i0, i1, f - i0 as f32)
                    } else {
                        let i = if *round { (f - 0.5).ceil() } else { f.floor() };
                        let i = (i.max(0.0) as usize).min(len - 1);
                        (i, i, 0.0)
                    }
                };
                for b in 0..*n {
                    for oy in 0..*oh {
                        let (y0, y1, fy) = taps(oy, scale[0], *h, *oh);
                        for ox in 0..*ow {
                            let (x0, x1, fx) = taps(ox, scale[1], *wd, *ow);
                            for ch in 0..*c {
                                let p = |yy: usize, xx: usize| {
                                    bufs[*x][((b * h + yy) * wd + xx) * c + ch]
                                };
                                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
                                let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
                                out[((b * oh + oy) * ow + ox) * c + ch] = top + (bottom - top) * fy;
                            }
                        }
                    }
                }
                if let Some(r) = residual {
                    for (o, v) in out.iter_mut().zip(&bufs[*r]) {
                        *o += v;
                    }
                }
                bufs[*y] = out;
            }
            Step::Eltwise {
                a,
                b,
                y,
                len,
                act: kind,
            } => {
                let out = (0..*len)
                    .map(|i| kind.apply(bufs[*a][i] + b.map_or(0.0, |b| bufs[b][i])))
                    .collect();
                bufs[*y] = out;
            }
            Step::Affine {
                x,
                y,
                len,
                channels,
                scale,
                shift,
            } => {
                let out = (0..*len)
                    .map(|i| bufs[*x][i] * w[*scale][i % channels] + w[*shift][i % channels])
                    .collect();
                bufs[*y] = out;
            }
            Step::Copy {
                x,
                y,
                outer,
                len,
                x_stride,
                y_stride,
                x_offset,
                y_offset,
            } => {
                for o in 0..*outer {
                    for i in 0..*len {
                        let v = bufs[*x][o * x_stride + x_offset + i];
                        bufs[*y][o * y_stride + y_offset + i] = v;
                    }
                }
            }
            Step::Quantize {
                x,
                y,
                len,
                scale,
                zero,
                int8,
            } => {
                let z = f32::from(*zero);
                let values: Vec<f32> = bufs[*x][..*len]
                    .iter()
                    .map(|&v| {
                        // ONNX QuantizeLinear: round half to even.
                        let q = ((v / scale).round_ties_even() + z).clamp(-128.0, 127.0);
                        if *int8 {
                            q
                        } else {
                            (q - z) * scale
                        }
                    })
                    .collect();
                bufs[*y][..*len].copy_from_slice(&values);
            }
            Step::Requantize {
                x,
                b,
                act,
                y,
                len,
                grid,
                int8,
                into,
            } => {
                let integer = |o: &Operand, i: usize| {
                    let v = bufs[o.buf][i];
                    let q = if o.int8 {
                        v as i32
                    } else {
                        super::int8::integer_of(v, o.grid)
                    };
                    (q, o.grid)
                };
                let values: Vec<f32> = (0..*len)
                    .map(|i| {
                        let other = b.as_ref().map(|b| integer(b, i));
                        let q = super::int8::requantize(integer(x, i), other, *act, *grid);
                        if *int8 {
                            f32::from(q)
                        } else {
                            f32::from(i16::from(q) - i16::from(grid.zero)) * grid.scale
                        }
                    })
                    .collect();
                match into {
                    Some(slice) => {
                        for (i, v) in values.into_iter().enumerate() {
                            bufs[*y][slice.at(i)] = v;
                        }
                    }
                    None => bufs[*y][..*len].copy_from_slice(&values),
                }
            }
            Step::QConv(q) => {
                let x: Vec<i8> = bufs[q.x][..q.spec.x_len()]
                    .iter()
                    .map(|&v| v as i8)
                    .collect();
                match super::int8::conv(&q.spec, &plan.qweights[q.weights], &x) {
                    super::int8::QOutput::Int8(v) => {
                        for (o, v) in bufs[q.y].iter_mut().zip(v) {
                            *o = f32::from(v);
                        }
                    }
                    super::int8::QOutput::Fp16(v) => bufs[q.y][..v.len()].copy_from_slice(&v),
                }
            }
            Step::Permute { x, y, dims, axes } => {
                let rank = dims.len();
                let mut strides = vec![1usize; rank];
                for d in (0..rank.saturating_sub(1)).rev() {
                    strides[d] = strides[d + 1] * dims[d + 1];
                }
                let out_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
                let total: usize = out_dims.iter().product();
                let mut out = vec![0.0; total];
                for (i, o) in out.iter_mut().enumerate() {
                    let (mut rem, mut src) = (i, 0);
                    for d in (0..rank).rev() {
                        src += (rem % out_dims[d]) * strides[axes[d]];
                        rem /= out_dims[d];
                    }
                    *o = bufs[*x][src];
                }
                bufs[*y] = out;
            }
        }
    }
    plan.outputs.iter().map(|(b, _)| bufs[*b].clone()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::onnx;
    use super::*;
    use adas_plugins::Manifest;
    use std::path::Path;

    /// The plan on the CPU equals tract on the same model and input (a real frame).
    fn check(manifest: &str) {
        let root = Path::new(env!("ADAS_REPO_ROOT"));
        let m = Manifest::load(&root.join("models").join(manifest)).unwrap();
        let img = image::open(root.join("samples/images/person.jpg"))
            .unwrap()
            .to_rgb8();
        let (input, _) = adas_plugins::preprocess(
            img.as_raw(),
            img.width() as usize,
            img.height() as usize,
            &m.input,
        )
        .unwrap();
        let nchw = m.input.layout == adas_plugins::manifest::Layout::Nchw;
        let g = onnx::load(&m.onnx).unwrap();
        // As the FP16 tensor-core engine runs it (the plain plan is a subset of its steps).
        let target = super::super::Target { tensor_cores: true };
        let p = super::super::compile(&g, &input.shape, nchw, &m.output_names(), target).unwrap();
        let nhwc = nhwc_input(&input, nchw);
        let ours = run(&p, &nhwc);
        let mut tract = adas_detect::TractBackend::load(&m).unwrap();
        use adas_detect::Backend;
        let theirs = tract.infer_owned(&input).unwrap();
        for ((o, t), name) in ours.iter().zip(&theirs).zip(m.output_names()) {
            assert_eq!(o.len(), t.data.len(), "{name}");
            let max = o
                .iter()
                .zip(&t.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("{manifest} {name}: max |plan − tract| = {max:e}");
            assert!(max < 2e-3, "{name}: {max}");
        }
    }

    #[test]
    fn ssd_plan_matches_tract() {
        check("ssdlite_mobilenet_v2_pedestrian_300.toml");
    }

    #[test]
    fn nanodet_plan_matches_tract() {
        check("nanodet_m_coco_416.toml");
    }
}
