//! tract: pure-Rust ONNX inference, no native dependencies — the embedded default.

use super::{check_input_shape, Backend, DetectError};
use adas_plugins::manifest::Manifest;
use adas_plugins::{Tensor, TensorView};
use std::path::Path;
use tract_onnx::prelude::*;

pub struct TractBackend {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
}

impl TractBackend {
    /// Loads and optimises the manifest's ONNX file with the manifest's input shape and outputs.
    pub fn load(manifest: &Manifest) -> Result<Self, DetectError> {
        let model_error = model_error(manifest);
        let plan = typed_model(manifest)?
            .into_optimized()
            .map_err(|e| model_error("optimising", e))?
            .into_runnable()
            .map_err(|e| model_error("preparing", e))?;
        Ok(TractBackend {
            plan,
            input_shape: manifest.input.shape.to_vec(),
        })
    }
}

fn model_error(manifest: &Manifest) -> impl Fn(&str, TractError) -> DetectError + '_ {
    |stage, e| DetectError::Model {
        path: manifest.onnx.clone(),
        message: format!("{stage}: {e:#}"),
    }
}

/// The manifest's ONNX file with the manifest's input (name, shape) and outputs (names), its
/// shapes inferred: what every backend runs, before any optimisation.
fn typed_model(manifest: &Manifest) -> Result<TypedModel, DetectError> {
    let path = manifest.onnx.as_path();
    let model_error = model_error(manifest);
    if !Path::new(path).is_file() {
        return Err(DetectError::Model {
            path: path.to_path_buf(),
            message: "file not found".into(),
        });
    }
    tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| model_error("not a readable ONNX model", e))?
        .with_input_names([manifest.input.name.as_str()])
        .map_err(|e| model_error("input name from the manifest", e))?
        .with_input_fact(0, f32::fact(manifest.input.shape).into())
        .map_err(|e| model_error("input shape from the manifest", e))?
        .with_outputs_by_name(manifest.output_names())
        .map_err(|e| model_error("output names from the manifest", e))?
        .into_typed()
        .map_err(|e| model_error("inferring shapes", e))
}

/// The shapes the model file gives the manifest's outputs (in [`Manifest::output_names`]
/// order) for the manifest's input, by shape inference alone: nothing runs.
pub fn output_shapes(manifest: &Manifest) -> Result<Vec<Vec<usize>>, DetectError> {
    let model = typed_model(manifest)?;
    let names = manifest.output_names();
    (0..model.outputs.len())
        .map(|i| {
            let name = names.get(i).copied().unwrap_or("?");
            let fact = model
                .output_fact(i)
                .map_err(|e| model_error(manifest)("reading the outputs", e))?;
            fact.shape
                .as_concrete()
                .map(<[usize]>::to_vec)
                .ok_or_else(|| DetectError::Model {
                    path: manifest.onnx.clone(),
                    message: format!(
                        "output `{name}` has shape {:?}, which depends on the data",
                        fact.shape
                    ),
                })
        })
        .collect()
}

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn infer(
        &mut self,
        input: &Tensor,
        consume: &mut dyn FnMut(&[TensorView<'_>]),
    ) -> Result<(), DetectError> {
        check_input_shape(input, &self.input_shape)?;
        let tensor = tract_onnx::prelude::Tensor::from_shape(&input.shape, &input.data)
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        // tract tensors are dense row-major: read them in place.
        let views = outputs
            .iter()
            .map(|value| {
                let data = value
                    .try_as_plain_ram()
                    .and_then(|plain| plain.as_slice::<f32>())
                    .map_err(|e| DetectError::Inference(format!("output is not f32: {e:#}")))?;
                Ok(TensorView {
                    shape: value.shape(),
                    data,
                })
            })
            .collect::<Result<Vec<_>, DetectError>>()?;
        consume(&views);
        Ok(())
    }
}
