//! The GPU engine's model compiler: ONNX import with constant folding ([`onnx`]) and lowering to
//! NHWC GPU steps with fusion ([`plan`], [`resize_add`]), concats written in place ([`in_place`]),
//! expansions fused into depthwise convolutions ([`expand_dw`]) and the independent branches
//! ([`branches`]). Pure Rust, tested without a GPU; the `cuda` backend
//! ([`crate::cuda`]) runs the plan.

pub mod branches;
pub mod expand_dw;
pub mod in_place;
pub mod onnx;
pub mod plan;
#[cfg(test)]
pub mod reference;
pub mod resize_add;
