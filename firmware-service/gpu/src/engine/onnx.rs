//! ONNX model → the nodes the GPU engine has to run, with every constant subgraph (shape
//! arithmetic that exporters leave in, e.g. tf2onnx's Expand/ScatterND/Cast chains) evaluated on
//! the host.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use tract_onnx::pb::{self, NodeProto, TensorProto};
use tract_onnx::prelude::Framework;

/// A constant tensor (initializer, Constant node or folded subgraph).
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub shape: Vec<usize>,
    pub data: ConstData,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConstData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Const {
    pub fn f32s(&self) -> Vec<f32> {
        match &self.data {
            ConstData::F32(v) => v.clone(),
            ConstData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    pub fn i64s(&self) -> Vec<i64> {
        match &self.data {
            ConstData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            ConstData::I64(v) => v.clone(),
        }
    }
    fn f64s(&self) -> Vec<f64> {
        match &self.data {
            ConstData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
}

/// The model after constant folding.
#[derive(Debug, Clone)]
pub struct OnnxGraph {
    /// Nodes with at least one non-constant input, in topological order.
    pub nodes: Vec<NodeProto>,
    pub consts: HashMap<String, Const>,
    /// Constants stored as int8 (the others' integers are unsigned or wide): a QuantizeLinear's
    /// zero point says by its type whether it quantizes to uint8 or int8.
    pub signed: HashSet<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("not a readable ONNX model: {0}")]
    Read(String),
    #[error("initializer `{name}`: {message}")]
    Tensor { name: String, message: String },
    #[error("node `{node}` ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
}

fn node_error(node: &NodeProto, message: impl Into<String>) -> OnnxError {
    OnnxError::Node {
        node: node.name.clone(),
        op: node.op_type.clone(),
        message: message.into(),
    }
}

/// Loads `path` and folds its constant subgraphs.
pub fn load(path: &Path) -> Result<OnnxGraph, OnnxError> {
    from_model(read(path)?)
}

/// The ONNX model at `path`, as it is stored.
pub fn read(path: &Path) -> Result<pb::ModelProto, OnnxError> {
    tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| OnnxError::Read(format!("{e:#}")))
}

/// `model` with its constant subgraphs folded.
pub fn from_model(model: pb::ModelProto) -> Result<OnnxGraph, OnnxError> {
    let graph = model
        .graph
        .ok_or_else(|| OnnxError::Read("the model has no graph".into()))?;
    from_graph(graph)
}

fn from_graph(graph: pb::GraphProto) -> Result<OnnxGraph, OnnxError> {
    let mut consts = HashMap::new();
    let mut signed = HashSet::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), tensor(t)?);
        if t.data_type == INT8 {
            signed.insert(t.name.clone());
        }
    }
    let mut nodes = Vec::new();
    for node in graph.node {
        if node.op_type == "Constant" {
            let value = node
                .attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| node_error(&node, "Constant without a tensor `value`"))?;
            let c = tensor(value)?;
            for o in &node.output {
                consts.insert(o.clone(), c.clone());
                if value.data_type == INT8 {
                    signed.insert(o.clone());
                }
            }
            continue;
        }
        let all_const = node
            .input
            .iter()
            .all(|i| i.is_empty() || consts.contains_key(i));
        if all_const && !node.input.is_empty() {
            let c = fold(&node, &consts)?;
            if let Some(o) = node.output.first() {
                consts.insert(o.clone(), c);
            }
            continue;
        }
        nodes.push(node);
    }
    let inputs = graph
        .input
        .iter()
        .map(|v| v.name.clone())
        .filter(|n| !consts.contains_key(n))
        .collect();
    let outputs = graph.output.iter().map(|v| v.name.clone()).collect();
    Ok(OnnxGraph {
        nodes,
        consts,
        signed,
        inputs,
        outputs,
    })
}

/// ONNX's TensorProto data type of int8.
const INT8: i32 = 3;

pub(crate) fn tensor(t: &TensorProto) -> Result<Const, OnnxError> {
    let err = |m: &str| OnnxError::Tensor {
        name: t.name.clone(),
        message: m.into(),
    };
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err("negative dimension")))
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let data = match t.data_type {
        1 => ConstData::F32(if t.raw_data.is_empty() {
            t.float_data.clone()
        } else {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }),
        // uint8 and int8: a quantized model's weights and zero points.
        2 => ConstData::I64(if t.raw_data.is_empty() {
            t.int32_data.iter().map(|&v| i64::from(v)).collect()
        } else {
            t.raw_data.iter().map(|&b| i64::from(b)).collect()
        }),
        INT8 => ConstData::I64(if t.raw_data.is_empty() {
            t.int32_data.iter().map(|&v| i64::from(v)).collect()
        } else {
            t.raw_data.iter().map(|&b| i64::from(b as i8)).collect()
        }),
        6 | 7 => ConstData::I64(if !t.raw_data.is_empty() {
            let w = if t.data_type == 7 { 8 } else { 4 };
            t.raw_data
                .chunks_exact(w)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a[..w].copy_from_slice(b);
                    if w == 4 {
                        i64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]]))
                    } else {
                        i64::from_le_bytes(a)
                    }
                })
                .collect()
        } else if t.data_type == 7 {
            t.int64_data.clone()
        } else {
            t.int32_data.iter().map(|&v| i64::from(v)).collect()
        }),
        other => {
            return Err(err(&format!(
                "data type {other} is not supported (float32, uint8, int8, int32, int64 are)"
            )))
        }
    };
    let len = match &data {
        ConstData::F32(v) => v.len(),
        ConstData::I64(v) => v.len(),
    };
    if len != n {
        return Err(err(&format!("{len} values for shape {shape:?}")));
    }
    Ok(Const { shape, data })
}

/// Evaluates a node whose inputs are all constants.
fn fold(node: &NodeProto, consts: &HashMap<String, Const>) -> Result<Const, OnnxError> {
    let input = |i: usize| {
        node.input
            .get(i)
            .and_then(|n| consts.get(n))
            .ok_or_else(|| node_error(node, format!("missing input {i}")))
    };
    match node.op_type.as_str() {
        "Cast" => {
            let to = attr_int(node, "to").unwrap_or(1);
            let x = input(0)?;
            let data = match to {
                1 => ConstData::F32(x.f32s()),
                6 | 7 => ConstData::I64(x.i64s()),
                other => {
                    return Err(node_error(
                        node,
                        format!("Cast to type {other} is not supported"),
                    ))
                }
            };
            Ok(Const {
                shape: x.shape.clone(),
                data,
            })
        }
        "Add" | "Sub" | "Mul" => {
            let (a, b) = (input(0)?, input(1)?);
            let op = node.op_type.as_str();
            broadcast(a, b, |x, y| match op {
                "Add" => x + y,
                "Sub" => x - y,
                _ => x * y,
            })
            .ok_or_else(|| {
                node_error(
                    node,
                    format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape),
                )
            })
        }
        "DequantizeLinear" => dequantize(
            node,
            input(0)?,
            input(1)?,
            node.input.get(2).and_then(|n| consts.get(n)),
        ),
        "Expand" => {
            let (x, shape) = (input(0)?, input(1)?);
            let dims: Vec<usize> = shape.i64s().iter().map(|&d| d.max(0) as usize).collect();
            let ones = Const {
                shape: dims.iter().map(|&d| d.max(1)).collect(),
                data: ConstData::I64(vec![0; dims.iter().map(|&d| d.max(1)).product()]),
            };
            broadcast(x, &ones, |a, _| a)
                .ok_or_else(|| node_error(node, "Expand shape does not broadcast"))
        }
        "ScatterND" => {
            let (data, idx, upd) = (input(0)?, input(1)?, input(2)?);
            let k = *idx.shape.last().unwrap_or(&0);
            if k > data.shape.len() {
                return Err(node_error(node, "index depth exceeds the data rank"));
            }
            let slice: usize = data.shape[k..].iter().product();
            let indices = idx.i64s();
            let updates = upd.f32s();
            let mut out = data.f32s();
            for (u, index) in indices.chunks_exact(k.max(1)).enumerate() {
                let mut offset = 0usize;
                for (d, &i) in index.iter().enumerate().take(k) {
                    let dim = data.shape[d] as i64;
                    let i = if i < 0 { i + dim } else { i };
                    if !(0..dim).contains(&i) {
                        return Err(node_error(node, "index out of range"));
                    }
                    offset = offset * data.shape[d] + i as usize;
                }
                let dst = out
                    .get_mut(offset * slice..(offset + 1) * slice)
                    .ok_or_else(|| node_error(node, "index out of range"))?;
                let src = updates
                    .get(u * slice..(u + 1) * slice)
                    .ok_or_else(|| node_error(node, "too few updates"))?;
                dst.copy_from_slice(src);
            }
            let data = match data.data {
                ConstData::F32(_) => ConstData::F32(out),
                ConstData::I64(_) => ConstData::I64(out.iter().map(|&v| v as i64).collect()),
            };
            Ok(Const {
                shape: input(0)?.shape.clone(),
                data,
            })
        }
        "Concat" => {
            let parts: Vec<&Const> = (0..node.input.len()).map(input).collect::<Result<_, _>>()?;
            if parts.iter().any(|p| p.shape.len() != 1) {
                return Err(node_error(node, "only 1-D constant Concat is folded"));
            }
            let values: Vec<i64> = parts.iter().flat_map(|p| p.i64s()).collect();
            Ok(Const {
                shape: vec![values.len()],
                data: ConstData::I64(values),
            })
        }
        op => Err(node_error(
            node,
            format!("all inputs are constant but folding `{op}` is not supported"),
        )),
    }
}

/// Numpy-style broadcasting of a binary op; the result keeps `a`'s element type.
/// A quantized constant (a QDQ model's weights and biases) as float: `(q − zero) · scale`, per
/// tensor or per slice of axis `axis` (ONNX DequantizeLinear).
fn dequantize(
    node: &NodeProto,
    x: &Const,
    scale: &Const,
    zero: Option<&Const>,
) -> Result<Const, OnnxError> {
    let scales = scale.f32s();
    let zeros = zero.map_or_else(|| vec![0; scales.len()], Const::i64s);
    if scales.is_empty() || zeros.len() != scales.len() {
        return Err(node_error(
            node,
            format!("{} scales and {} zero points", scales.len(), zeros.len()),
        ));
    }
    let rank = x.shape.len() as i64;
    let axis = attr_int(node, "axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    // Values per slice of `axis`, and how many slices.
    let (inner, slices) = if scales.len() == 1 {
        (x.shape.iter().product::<usize>().max(1), 1)
    } else {
        let a = usize::try_from(axis)
            .ok()
            .filter(|&a| a < x.shape.len() && x.shape[a] == scales.len())
            .ok_or_else(|| {
                node_error(
                    node,
                    format!(
                        "{} scales for axis {axis} of shape {:?}",
                        scales.len(),
                        x.shape
                    ),
                )
            })?;
        (x.shape[a + 1..].iter().product(), scales.len())
    };
    let values = x.i64s();
    let data = values
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let k = (i / inner) % slices;
            (q - zeros[k]) as f32 * scales[k]
        })
        .collect();
    Ok(Const {
        shape: x.shape.clone(),
        data: ConstData::F32(data),
    })
}

fn broadcast(a: &Const, b: &Const, f: impl Fn(f64, f64) -> f64) -> Option<Const> {
    let rank = a.shape.len().max(b.shape.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (sa, sb) = (pad(&a.shape), pad(&b.shape));
    let mut shape = Vec::with_capacity(rank);
    for (&x, &y) in sa.iter().zip(&sb) {
        shape.push(match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        });
    }
    let strides = |s: &[usize]| {
        let mut st = vec![0usize; rank];
        let mut acc = 1;
        for d in (0..rank).rev() {
            st[d] = if s[d] == 1 { 0 } else { acc };
            acc *= s[d];
        }
        st
    };
    let (ta, tb) = (strides(&sa), strides(&sb));
    let (va, vb) = (a.f64s(), b.f64s());
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (mut rem, mut ia, mut ib) = (i, 0, 0);
        for d in (0..rank).rev() {
            let c = rem % shape[d];
            rem /= shape[d];
            ia += c * ta[d];
            ib += c * tb[d];
        }
        out.push(f(*va.get(ia)?, *vb.get(ib)?));
    }
    let data = match a.data {
        ConstData::F32(_) => ConstData::F32(out.iter().map(|&v| v as f32).collect()),
        ConstData::I64(_) => ConstData::I64(out.iter().map(|&v| v as i64).collect()),
    };
    Some(Const { shape, data })
}

/// An integer attribute.
pub fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// A float attribute.
pub fn attr_float(node: &NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

/// An integer-list attribute.
pub fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

/// A string attribute.
pub fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}
