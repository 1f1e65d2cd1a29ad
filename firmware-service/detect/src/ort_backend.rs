//! ONNX Runtime backend (cargo feature `ort`): the fast CPU path, and CUDA / TensorRT through
//! ONNX Runtime's execution providers. The shared library is opened at run time
//! (`load-dynamic`); see [`super::ort_config::find_library`] for where it is looked for.

use super::ort_config::{
    find_gpu_name, find_library, find_tensorrt_version, plan_providers, standard_library_dirs,
    OrtConfig, PlanContext, ProviderKind, ProviderPlan,
};
use super::{check_input_shape, Backend, DetectError};
use adas_plugins::manifest::Manifest;
use adas_plugins::{Tensor, TensorView};
use ort::ep::{ArbitrarilyConfigurableExecutionProvider, ExecutionProvider};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Library options for the ONNX Runtime backend (from `[detector]` in the config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrtOptions {
    /// `detector.ort_library`.
    pub library: Option<PathBuf>,
    pub config: OrtConfig,
}

pub struct OrtBackend {
    session: Session,
    input_name: String,
    input_shape: Vec<usize>,
    output_names: Vec<String>,
    provider: ProviderKind,
}

/// The library loaded into this process (ONNX Runtime can be loaded only once per process).
static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Opens the ONNX Runtime shared library once per process; later calls return the first result.
pub fn load_library(configured: Option<&Path>) -> Result<PathBuf, DetectError> {
    let result = LOADED.get_or_init(|| {
        let env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
        let (path, source) = find_library(configured, env.as_deref(), &standard_library_dirs())?;
        let path = path.canonicalize().unwrap_or(path);
        match ort::init_from(&path) {
            Ok(builder) => {
                let _ = builder.with_name("adasd").commit();
                tracing::info!("ONNX Runtime loaded from {} ({source:?})", path.display());
                Ok(path)
            }
            Err(e) => Err(format!(
                "cannot use ONNX Runtime library {}: {e} (adasd needs ONNX Runtime >= 1.{})",
                path.display(),
                ort::MINOR_VERSION
            )),
        }
    });
    result.clone().map_err(DetectError::Backend)
}

fn ort_err(e: impl std::fmt::Display) -> DetectError {
    DetectError::Inference(e.to_string())
}

fn sha256_file(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|bytes| adas_plugins::sha256_hex(&bytes))
}

impl OrtBackend {
    pub fn load(manifest: &Manifest, options: &OrtOptions) -> Result<Self, DetectError> {
        let path = manifest.onnx.as_path();
        if !path.is_file() {
            return Err(DetectError::Model {
                path: path.to_path_buf(),
                message: "file not found".into(),
            });
        }
        load_library(options.library.as_deref())?;
        let cfg = &options.config;
        let wants_trt = cfg.providers.contains(&ProviderKind::Tensorrt);
        let ctx = PlanContext {
            model_sha256: sha256_file(path).unwrap_or_else(|| "unknown".into()),
            input_name: manifest.input.name.clone(),
            input_shape: manifest.input.shape,
            tensorrt_version: cfg.tensorrt.version.clone().or_else(|| {
                if wants_trt {
                    let mut dirs = standard_library_dirs();
                    dirs.push("/usr/local/cuda/lib64".into());
                    dirs.push("/usr/lib/aarch64-linux-gnu/tensorrt".into());
                    find_tensorrt_version(&dirs)
                } else {
                    None
                }
            }),
            gpu_name: cfg.tensorrt.gpu_name.clone().or_else(|| {
                if wants_trt {
                    find_gpu_name(cfg.tensorrt.device_id)
                } else {
                    None
                }
            }),
            calibration_sha256: cfg
                .tensorrt
                .int8_calibration_table
                .as_deref()
                .and_then(sha256_file),
        };
        let plans = plan_providers(cfg, &ctx);
        // Try the providers from the first; on failure drop the first and try again.
        let mut last_error = String::new();
        for start in 0..plans.len() {
            let chain = &plans[start..];
            match build_session(path, cfg.threads, chain) {
                Ok((session, provider)) => {
                    let output_names = manifest
                        .output_names()
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    tracing::info!(
                        "ONNX Runtime runs {} on {} ({})",
                        manifest.name,
                        provider.ort_name(),
                        chain
                            .iter()
                            .map(|p| p.kind.ort_name())
                            .collect::<Vec<_>>()
                            .join(" → ")
                    );
                    return Ok(OrtBackend {
                        session,
                        input_name: manifest.input.name.clone(),
                        input_shape: manifest.input.shape.to_vec(),
                        output_names,
                        provider,
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        "ONNX Runtime session with {} failed: {e}; trying the next provider",
                        chain[0].kind.ort_name()
                    );
                    last_error = e;
                }
            }
        }
        Err(DetectError::Model {
            path: path.to_path_buf(),
            message: format!("no ONNX Runtime execution provider could run it: {last_error}"),
        })
    }

    /// The execution provider that runs the first node choice (the first one registered).
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }
}

/// Registers the available providers of `chain` (in order) and creates the session. Returns the
/// first provider that registered.
fn build_session(
    path: &Path,
    threads: usize,
    chain: &[ProviderPlan],
) -> Result<(Session, ProviderKind), String> {
    let mut builder = Session::builder().map_err(|e| e.to_string())?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| e.to_string())?
            .with_inter_threads(1)
            .map_err(|e| e.to_string())?;
    }
    let mut first: Option<ProviderKind> = None;
    for plan in chain {
        for w in &plan.warnings {
            tracing::warn!("{}: {w}", plan.kind.ort_name());
        }
        if plan.kind == ProviderKind::Cpu {
            first.get_or_insert(ProviderKind::Cpu);
            // CPU is always there; registering it explicitly keeps the order.
            builder = match builder
                .with_execution_providers([ort::ep::CPU::default().build().error_on_failure()])
            {
                Ok(b) => b,
                Err(e) => e.recover(),
            };
            continue;
        }
        let dispatch = match plan.kind {
            ProviderKind::Cuda => {
                let mut ep = ort::ep::CUDA::default();
                if !ep.is_available().unwrap_or(false) {
                    tracing::warn!(
                        "{} is not in this ONNX Runtime build; skipped",
                        plan.kind.ort_name()
                    );
                    continue;
                }
                for (k, v) in &plan.options {
                    ep = ep.with_arbitrary_config(k, v);
                }
                ep.build()
            }
            ProviderKind::Tensorrt => {
                let mut ep = ort::ep::TensorRT::default();
                if !ep.is_available().unwrap_or(false) {
                    tracing::warn!(
                        "{} is not in this ONNX Runtime build; skipped",
                        plan.kind.ort_name()
                    );
                    continue;
                }
                if let Err(e) = prepare_files(plan) {
                    tracing::warn!("{}: {e}; skipped", plan.kind.ort_name());
                    continue;
                }
                for (k, v) in &plan.options {
                    ep = ep.with_arbitrary_config(k, v);
                }
                ep.build()
            }
            ProviderKind::Cpu => continue,
        };
        builder = match builder.with_execution_providers([dispatch.error_on_failure()]) {
            Ok(b) => {
                first.get_or_insert(plan.kind);
                b
            }
            Err(e) => {
                tracing::warn!(
                    "{} could not be registered: {e}; skipped",
                    plan.kind.ort_name()
                );
                e.recover()
            }
        };
    }
    let Some(first) = first else {
        return Err("none of the configured execution providers is available".into());
    };
    let session = builder.commit_from_file(path).map_err(|e| e.to_string())?;
    Ok((session, first))
}

fn prepare_files(plan: &ProviderPlan) -> Result<(), String> {
    for d in &plan.create_dirs {
        std::fs::create_dir_all(d)
            .map_err(|e| format!("cannot create cache folder {}: {e}", d.display()))?;
    }
    if let Some((from, to)) = &plan.stage_file {
        std::fs::copy(from, to).map_err(|e| {
            format!(
                "cannot copy INT8 calibration table {} to {}: {e}",
                from.display(),
                to.display()
            )
        })?;
    }
    Ok(())
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        self.provider.backend_name()
    }

    fn infer(
        &mut self,
        input: &Tensor,
        consume: &mut dyn FnMut(&[TensorView<'_>]),
    ) -> Result<(), DetectError> {
        check_input_shape(input, &self.input_shape)?;
        // The input is borrowed too (no copy into ONNX Runtime).
        let value = TensorRef::from_array_view((input.shape.clone(), input.data.as_slice()))
            .map_err(ort_err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => value])
            .map_err(ort_err)?;
        // The outputs stay in ONNX Runtime's buffers; only their shapes (i64) are converted.
        let extracted = self
            .output_names
            .iter()
            .map(|name| {
                let value = outputs.get(name.as_str()).ok_or_else(|| {
                    DetectError::Inference(format!("the model has no output `{name}`"))
                })?;
                let (shape, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| DetectError::Inference(format!("output `{name}`: {e}")))?;
                let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
                if shape.iter().product::<usize>() != data.len() {
                    return Err(DetectError::Inference(format!(
                        "output `{name}`: element count mismatch"
                    )));
                }
                Ok((shape, data))
            })
            .collect::<Result<Vec<_>, DetectError>>()?;
        let views: Vec<TensorView<'_>> = extracted
            .iter()
            .map(|(shape, data)| TensorView { shape, data })
            .collect();
        consume(&views);
        Ok(())
    }
}
