//! ONNX Runtime configuration: which shared library, which execution providers in which order,
//! and the provider options they get. Pure (no ONNX Runtime needed): the options a config builds
//! are unit-tested here, because TensorRT cannot be installed on our CI machines.
//!
//! Always compiled (also without the `ort` feature) so that configs validate the same everywhere.

use adas_plugins::range::{self, Bound, Numbers, Range, Refused};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[detector.ort]` in the daemon config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OrtConfig {
    /// Execution providers in order of preference. Each one that is not available (not in this
    /// ONNX Runtime build, no GPU, session creation fails) is skipped with a warning and the next
    /// is tried; nodes a provider cannot run go to the next registered one. Default: `["cpu"]`.
    pub providers: Vec<ProviderKind>,
    /// CPU intra-op threads (0 = ONNX Runtime's default: one per physical core).
    pub threads: usize,
    pub cuda: CudaConfig,
    pub tensorrt: TensorRtConfig,
}

impl Default for OrtConfig {
    fn default() -> Self {
        OrtConfig {
            providers: vec![ProviderKind::Cpu],
            threads: 1,
            cuda: CudaConfig::default(),
            tensorrt: TensorRtConfig::default(),
        }
    }
}

/// A GPU ordinal: hosts carry at most 16 GPUs (Jetsons one).
const DEVICE_ID: Range = Range::new(0.0, 15.0, "");
const DEVICE_ID_WHY: &str = "a GPU ordinal; hosts carry at most 16 GPUs, Jetsons one";
/// A memory size in MiB: from a workable minimum to the largest GPUs' memory (H200: 141 GB).
const MEMORY_MIB: Range = Range::new(64.0, 262_144.0, "MiB");
const MEMORY_MIB_WHY: &str = "below 64 MiB no detector runs; 256 GiB is beyond any GPU";

impl OrtConfig {
    pub const RANGES: &'static [Bound<OrtConfig>] = &[Bound::new(
        "threads",
        Range::new(0.0, 256.0, "threads"),
        |c| c.threads.numbers(),
        "0 is one per physical core; more threads than cores only contend",
    )];

    /// Checks every value against its range; the refusal names the key relative to
    /// `[detector.ort]`.
    pub fn validate(&self) -> Result<(), Refused> {
        range::check(self, Self::RANGES)?;
        range::check(&self.cuda, CudaConfig::RANGES).map_err(|r| r.within("cuda"))?;
        range::check(&self.tensorrt, TensorRtConfig::RANGES).map_err(|r| r.within("tensorrt"))
    }

    /// The ranges of `[detector.ort]` and its sub-tables, for the documentation.
    pub fn range_rows() -> Vec<range::Row> {
        [
            range::rows("`[detector.ort]`", Self::RANGES),
            range::rows("`[detector.ort.cuda]`", CudaConfig::RANGES),
            range::rows("`[detector.ort.tensorrt]`", TensorRtConfig::RANGES),
        ]
        .concat()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Cpu,
    Cuda,
    Tensorrt,
}

impl ProviderKind {
    /// The provider's name in ONNX Runtime (`GetAvailableProviders`).
    pub fn ort_name(self) -> &'static str {
        match self {
            ProviderKind::Cpu => "CPUExecutionProvider",
            ProviderKind::Cuda => "CUDAExecutionProvider",
            ProviderKind::Tensorrt => "TensorrtExecutionProvider",
        }
    }
    /// Backend name for logs and reports.
    pub fn backend_name(self) -> &'static str {
        match self {
            ProviderKind::Cpu => "ort-cpu",
            ProviderKind::Cuda => "ort-cuda",
            ProviderKind::Tensorrt => "ort-tensorrt",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CudaConfig {
    pub device_id: u32,
    /// Arena limit in MiB (default: no limit).
    pub memory_limit_mib: Option<u64>,
}

impl CudaConfig {
    pub const RANGES: &'static [Bound<CudaConfig>] = &[
        Bound::new(
            "device_id",
            DEVICE_ID,
            |c| c.device_id.numbers(),
            DEVICE_ID_WHY,
        ),
        Bound::new(
            "memory_limit_mib",
            MEMORY_MIB,
            |c| c.memory_limit_mib.numbers(),
            MEMORY_MIB_WHY,
        ),
    ];
}

/// `[detector.ort.tensorrt]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TensorRtConfig {
    pub device_id: u32,
    pub fp16: bool,
    /// INT8 needs `int8_calibration_table` (written by `adasd calibrate-int8`).
    pub int8: bool,
    /// ONNX Runtime's FlatBuffers calibration table (`calibration.flatbuffers`).
    pub int8_calibration_table: Option<PathBuf>,
    /// Base folder of the engine cache; engines go into
    /// `<dir>/<model sha256>/<TensorRT version>/<GPU>/<precision>` (see [`engine_cache_dir`]).
    /// `None`: no engine cache (every start builds the engines: minutes on a Jetson).
    pub engine_cache_dir: Option<PathBuf>,
    /// Keep TensorRT's timing cache (`<engine_cache_dir>/timing/<TensorRT>/<GPU>`): speeds up
    /// engine builds for every model.
    pub timing_cache: bool,
    /// Builder workspace limit in MiB (default: TensorRT's).
    pub workspace_mib: Option<u64>,
    /// Run on this DLA core (Jetson AGX/NX Orin); layers DLA cannot run fall back to the GPU.
    pub dla_core: Option<u32>,
    /// Optimisation profile: batch sizes 1..=max_batch (only for models with a dynamic batch
    /// dimension; the shipped models have batch 1).
    pub max_batch: Option<u32>,
    /// TensorRT version for the cache key, e.g. `10.3.0` (default: from the libnvinfer.so.X.Y.Z
    /// found in the library folders). Without a known version the engine cache is disabled.
    pub version: Option<String>,
    /// GPU name for the cache key (default: from /proc/driver/nvidia/gpus or the device tree).
    pub gpu_name: Option<String>,
}

impl Default for TensorRtConfig {
    fn default() -> Self {
        TensorRtConfig {
            device_id: 0,
            fp16: true,
            int8: false,
            int8_calibration_table: None,
            engine_cache_dir: None,
            timing_cache: true,
            workspace_mib: None,
            dla_core: None,
            max_batch: None,
            version: None,
            gpu_name: None,
        }
    }
}

impl TensorRtConfig {
    pub const RANGES: &'static [Bound<TensorRtConfig>] = &[
        Bound::new(
            "device_id",
            DEVICE_ID,
            |c| c.device_id.numbers(),
            DEVICE_ID_WHY,
        ),
        Bound::new(
            "workspace_mib",
            MEMORY_MIB,
            |c| c.workspace_mib.numbers(),
            MEMORY_MIB_WHY,
        ),
        Bound::new(
            "dla_core",
            Range::new(0.0, 1.0, ""),
            |c| c.dla_core.numbers(),
            "Jetson AGX/NX Orin have DLA cores 0 and 1",
        ),
        Bound::new(
            "max_batch",
            Range::new(1.0, 256.0, "images"),
            |c| c.max_batch.numbers(),
            "the daemon runs batch 1; benchmarks sweep to 64",
        ),
    ];
}

/// What the session builder needs to know about the model and machine, besides the config.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanContext {
    /// sha256 of the ONNX file (hex).
    pub model_sha256: String,
    pub input_name: String,
    /// NCHW/NHWC input shape from the manifest (batch first).
    pub input_shape: [usize; 4],
    /// TensorRT version found on this machine (or configured).
    pub tensorrt_version: Option<String>,
    /// GPU name found on this machine (or configured).
    pub gpu_name: Option<String>,
    /// sha256 of the INT8 calibration table when INT8 is on.
    pub calibration_sha256: Option<String>,
}

/// One execution provider as it will be registered.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPlan {
    pub kind: ProviderKind,
    /// Provider options (ONNX Runtime's string keys), in a fixed order.
    pub options: Vec<(String, String)>,
    /// Folders to create before registering (engine and timing caches).
    pub create_dirs: Vec<PathBuf>,
    /// A file to copy into place first: (from, to). ONNX Runtime reads the INT8 table relative to
    /// the engine cache folder when the cache is on.
    pub stage_file: Option<(PathBuf, PathBuf)>,
    /// Things the user should know (logged as warnings).
    pub warnings: Vec<String>,
}

/// File-name-safe version of a GPU name or version string.
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

/// The engine cache folder: `<base>/<model sha256>/<TensorRT version>/<GPU>/<precision>`.
/// `precision` is `fp32`, `fp16`, `int8-<table sha256[..16]>` or `fp16-int8-<…>`, plus `-dla<N>`:
/// an engine built for another model, TensorRT, GPU, precision or calibration lives elsewhere and
/// is never picked up. `None` when the TensorRT version or GPU is unknown (then no cache).
pub fn engine_cache_dir(base: &Path, trt: &TensorRtConfig, ctx: &PlanContext) -> Option<PathBuf> {
    let version = ctx.tensorrt_version.as_deref()?;
    let gpu = ctx.gpu_name.as_deref()?;
    let mut precision = match (trt.fp16, trt.int8) {
        (false, false) => "fp32".to_string(),
        (true, false) => "fp16".to_string(),
        (false, true) => "int8".to_string(),
        (true, true) => "fp16-int8".to_string(),
    };
    if trt.int8 {
        let sha = ctx.calibration_sha256.as_deref().unwrap_or("nocalib");
        precision.push('-');
        precision.push_str(sha.get(..16).unwrap_or(sha));
    }
    if let Some(core) = trt.dla_core {
        precision.push_str(&format!("-dla{core}"));
    }
    Some(
        base.join(sanitize(&ctx.model_sha256))
            .join(sanitize(version))
            .join(sanitize(gpu))
            .join(precision),
    )
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

fn shape_string(name: &str, shape: &[usize; 4], batch: usize) -> String {
    format!("{name}:{batch}x{}x{}x{}", shape[1], shape[2], shape[3])
}

/// Config → the execution providers to register, in order, with their options.
pub fn plan_providers(cfg: &OrtConfig, ctx: &PlanContext) -> Vec<ProviderPlan> {
    let mut providers = cfg.providers.clone();
    if providers.is_empty() {
        providers.push(ProviderKind::Cpu);
    }
    providers
        .iter()
        .map(|&kind| match kind {
            ProviderKind::Cpu => ProviderPlan {
                kind,
                options: vec![],
                create_dirs: vec![],
                stage_file: None,
                warnings: vec![],
            },
            ProviderKind::Cuda => {
                let mut options = vec![("device_id".to_string(), cfg.cuda.device_id.to_string())];
                if let Some(mib) = cfg.cuda.memory_limit_mib {
                    options.push(("gpu_mem_limit".into(), (mib * 1024 * 1024).to_string()));
                }
                ProviderPlan {
                    kind,
                    options,
                    create_dirs: vec![],
                    stage_file: None,
                    warnings: vec![],
                }
            }
            ProviderKind::Tensorrt => plan_tensorrt(&cfg.tensorrt, ctx),
        })
        .collect()
}

fn plan_tensorrt(trt: &TensorRtConfig, ctx: &PlanContext) -> ProviderPlan {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut warnings = Vec::new();
    let mut create_dirs = Vec::new();
    let mut stage_file = None;
    let mut set = |k: &str, v: String| o.push((k.to_string(), v));
    set("device_id", trt.device_id.to_string());
    set("trt_fp16_enable", flag(trt.fp16));
    let int8 = trt.int8 && trt.int8_calibration_table.is_some();
    if trt.int8 && !int8 {
        warnings.push(
            "tensorrt.int8 needs tensorrt.int8_calibration_table (adasd calibrate-int8); INT8 is off"
                .into(),
        );
    }
    set("trt_int8_enable", flag(int8));
    let cache = trt.engine_cache_dir.as_ref().and_then(|base| {
        let effective = TensorRtConfig {
            int8,
            ..trt.clone()
        };
        let dir = engine_cache_dir(base, &effective, ctx);
        if dir.is_none() {
            warnings.push(format!(
                "TensorRT engine cache disabled: {} unknown (set detector.ort.tensorrt.{}); \
                 engines are rebuilt at every start",
                if ctx.tensorrt_version.is_none() {
                    "TensorRT version"
                } else {
                    "GPU name"
                },
                if ctx.tensorrt_version.is_none() {
                    "version"
                } else {
                    "gpu_name"
                }
            ));
        }
        dir.map(|d| (base.clone(), d))
    });
    if let Some((base, dir)) = &cache {
        set("trt_engine_cache_enable", "1".into());
        set("trt_engine_cache_path", dir.display().to_string());
        create_dirs.push(dir.clone());
        if trt.timing_cache {
            if let (Some(v), Some(g)) = (&ctx.tensorrt_version, &ctx.gpu_name) {
                let timing = base.join("timing").join(sanitize(v)).join(sanitize(g));
                set("trt_timing_cache_enable", "1".into());
                set("trt_timing_cache_path", timing.display().to_string());
                create_dirs.push(timing);
            }
        }
    } else {
        set("trt_engine_cache_enable", "0".into());
    }
    if int8 {
        if let Some(table) = &trt.int8_calibration_table {
            // ONNX Runtime opens `<trt_engine_cache_path>/<name>` when the cache is on, else
            // `<name>` as given.
            match &cache {
                Some((_, dir)) => {
                    let name = "calibration.flatbuffers";
                    stage_file = Some((table.clone(), dir.join(name)));
                    set("trt_int8_calibration_table_name", name.into());
                }
                None => set(
                    "trt_int8_calibration_table_name",
                    table.display().to_string(),
                ),
            }
            set("trt_int8_use_native_calibration_table", "0".into());
        }
    }
    if let Some(mib) = trt.workspace_mib {
        set("trt_max_workspace_size", (mib * 1024 * 1024).to_string());
    }
    if let Some(core) = trt.dla_core {
        set("trt_dla_enable", "1".into());
        set("trt_dla_core", core.to_string());
    }
    if let Some(max) = trt.max_batch {
        let max = max.max(1) as usize;
        let s = &ctx.input_shape;
        set(
            "trt_profile_min_shapes",
            shape_string(&ctx.input_name, s, 1),
        );
        set(
            "trt_profile_opt_shapes",
            shape_string(&ctx.input_name, s, 1),
        );
        set(
            "trt_profile_max_shapes",
            shape_string(&ctx.input_name, s, max),
        );
    }
    ProviderPlan {
        kind: ProviderKind::Tensorrt,
        options: o,
        create_dirs,
        stage_file,
        warnings,
    }
}

/// TensorRT version from a `libnvinfer.so.X.Y.Z` file name in the given folders (highest wins).
pub fn find_tensorrt_version(dirs: &[PathBuf]) -> Option<String> {
    let mut best: Option<Vec<u32>> = None;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(v) = name.strip_prefix("libnvinfer.so.") {
                let parts: Option<Vec<u32>> = v.split('.').map(|p| p.parse().ok()).collect();
                if let Some(parts) = parts {
                    if parts.len() >= 2 && best.as_ref().is_none_or(|b| parts > *b) {
                        best = Some(parts);
                    }
                }
            }
        }
    }
    best.map(|v| {
        v.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// GPU name: the first desktop GPU (`/proc/driver/nvidia/gpus/*/information`, line `Model:`),
/// else the Jetson board (`/proc/device-tree/model`).
pub fn find_gpu_name(device_id: u32) -> Option<String> {
    if let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") {
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        if let Some(dir) = dirs.get(device_id as usize) {
            if let Ok(info) = std::fs::read_to_string(dir.join("information")) {
                for line in info.lines() {
                    if let Some(model) = line.strip_prefix("Model:") {
                        return Some(model.trim().to_string());
                    }
                }
            }
        }
    }
    std::fs::read_to_string("/proc/device-tree/model")
        .ok()
        .map(|s| s.trim_matches(char::from(0)).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Where `libonnxruntime.so` is searched when neither the config nor `ORT_DYLIB_PATH` names it.
pub fn standard_library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = [
        "/usr/lib",
        "/usr/local/lib",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/opt/onnxruntime/lib",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    // The `onnxruntime` / `onnxruntime-gpu` Python wheels ship the library in onnxruntime/capi.
    let mut python_roots: Vec<PathBuf> = vec![
        "/usr/lib/python3/dist-packages".into(),
        "/usr/local/lib".into(),
        "/usr/lib".into(),
    ];
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        python_roots.push(PathBuf::from(venv).join("lib"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        python_roots.push(home.join(".local/lib"));
        if let Ok(entries) = std::fs::read_dir(home.join(".pyenv/versions")) {
            let mut v: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("lib")).collect();
            v.sort();
            python_roots.extend(v);
        }
    }
    for root in python_roots {
        if root.ends_with("dist-packages") {
            dirs.push(root.join("onnxruntime/capi"));
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut pys: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pys.sort();
        for py in pys {
            for sub in ["site-packages", "dist-packages"] {
                dirs.push(py.join(sub).join("onnxruntime/capi"));
            }
        }
    }
    dirs
}

/// Where the library came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    Config,
    Env,
    Standard,
}

/// Finds `libonnxruntime.so`: the configured path, else `ORT_DYLIB_PATH`, else the first
/// `libonnxruntime.so` / `libonnxruntime.so.1*` in `dirs`. An explicitly named file that does not
/// exist is an error (no silent fallback to another library). The error lists every place tried.
pub fn find_library(
    configured: Option<&Path>,
    env: Option<&Path>,
    dirs: &[PathBuf],
) -> Result<(PathBuf, LibrarySource), String> {
    if let Some(p) = configured {
        return if p.is_file() {
            Ok((p.to_path_buf(), LibrarySource::Config))
        } else {
            Err(format!(
                "ONNX Runtime library {} (detector.ort_library) does not exist",
                p.display()
            ))
        };
    }
    if let Some(p) = env {
        return if p.is_file() {
            Ok((p.to_path_buf(), LibrarySource::Env))
        } else {
            Err(format!(
                "ONNX Runtime library {} (ORT_DYLIB_PATH) does not exist",
                p.display()
            ))
        };
    }
    let mut looked = Vec::new();
    for dir in dirs {
        let plain = dir.join("libonnxruntime.so");
        if plain.is_file() {
            return Ok((plain, LibrarySource::Standard));
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("libonnxruntime.so.1")
                })
                .map(|e| e.path())
                .collect();
            versioned.sort();
            if let Some(p) = versioned.pop() {
                return Ok((p, LibrarySource::Standard));
            }
        }
        looked.push(dir.display().to_string());
    }
    Err(format!(
        "ONNX Runtime library (libonnxruntime.so) not found: set detector.ort_library in the \
         config or ORT_DYLIB_PATH, or install it (pip install onnxruntime, or see docs/ORT.md); \
         looked in: {}",
        looked.join(", ")
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> PlanContext {
        PlanContext {
            model_sha256: "ab".repeat(32),
            input_name: "data".into(),
            input_shape: [1, 3, 416, 416],
            tensorrt_version: Some("10.3.0".into()),
            gpu_name: Some("NVIDIA Jetson AGX Orin Developer Kit".into()),
            calibration_sha256: Some("cd".repeat(32)),
        }
    }

    fn get<'a>(p: &'a ProviderPlan, key: &str) -> Option<&'a str> {
        p.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn parses_config_and_defaults_to_cpu() {
        let c: OrtConfig = toml::from_str("").unwrap();
        assert_eq!(c.providers, vec![ProviderKind::Cpu]);
        assert_eq!(c.threads, 1);
        let c: OrtConfig = toml::from_str(
            r#"
            providers = ["tensorrt", "cuda", "cpu"]
            threads = 4
            [tensorrt]
            fp16 = true
            int8 = true
            int8_calibration_table = "/etc/adas/calibration.flatbuffers"
            engine_cache_dir = "/var/cache/adasd/trt"
            workspace_mib = 1024
            dla_core = 1
            max_batch = 4
            "#,
        )
        .unwrap();
        assert_eq!(
            c.providers,
            vec![
                ProviderKind::Tensorrt,
                ProviderKind::Cuda,
                ProviderKind::Cpu
            ]
        );
        assert!(toml::from_str::<OrtConfig>("providers = [\"tpu\"]").is_err());
        assert!(toml::from_str::<OrtConfig>("[tensorrt]\nfp61 = true").is_err());
    }

    #[test]
    fn tensorrt_options_full() {
        let c: OrtConfig = toml::from_str(
            r#"
            providers = ["tensorrt", "cuda", "cpu"]
            [cuda]
            memory_limit_mib = 2048
            [tensorrt]
            fp16 = true
            int8 = true
            int8_calibration_table = "/etc/adas/cal.flatbuffers"
            engine_cache_dir = "/var/cache/adasd/trt"
            workspace_mib = 1024
            dla_core = 1
            max_batch = 4
            "#,
        )
        .unwrap();
        let plan = plan_providers(&c, &ctx());
        assert_eq!(plan.iter().map(|p| p.kind).collect::<Vec<_>>(), c.providers);
        let trt = &plan[0];
        let dir = format!(
            "/var/cache/adasd/trt/{}/10.3.0/NVIDIA_Jetson_AGX_Orin_Developer_Kit/fp16-int8-{}-dla1",
            "ab".repeat(32),
            "cd".repeat(8)
        );
        let expected: Vec<(String, String)> = [
            ("device_id", "0"),
            ("trt_fp16_enable", "1"),
            ("trt_int8_enable", "1"),
            ("trt_engine_cache_enable", "1"),
            ("trt_engine_cache_path", dir.as_str()),
            ("trt_timing_cache_enable", "1"),
            (
                "trt_timing_cache_path",
                "/var/cache/adasd/trt/timing/10.3.0/NVIDIA_Jetson_AGX_Orin_Developer_Kit",
            ),
            ("trt_int8_calibration_table_name", "calibration.flatbuffers"),
            ("trt_int8_use_native_calibration_table", "0"),
            ("trt_max_workspace_size", "1073741824"),
            ("trt_dla_enable", "1"),
            ("trt_dla_core", "1"),
            ("trt_profile_min_shapes", "data:1x3x416x416"),
            ("trt_profile_opt_shapes", "data:1x3x416x416"),
            ("trt_profile_max_shapes", "data:4x3x416x416"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(trt.options, expected);
        assert_eq!(
            trt.stage_file,
            Some((
                PathBuf::from("/etc/adas/cal.flatbuffers"),
                PathBuf::from(&dir).join("calibration.flatbuffers")
            ))
        );
        assert!(trt.warnings.is_empty());
        assert_eq!(get(&plan[1], "gpu_mem_limit"), Some("2147483648"));
        assert!(plan[2].options.is_empty());
    }

    #[test]
    fn cache_key_changes_with_model_trt_gpu_precision_and_table() {
        let t = TensorRtConfig::default();
        let base = Path::new("/c");
        let a = engine_cache_dir(base, &t, &ctx()).unwrap();
        let mut other = ctx();
        other.model_sha256 = "ef".repeat(32);
        assert_ne!(engine_cache_dir(base, &t, &other).unwrap(), a);
        let mut other = ctx();
        other.tensorrt_version = Some("10.3.1".into());
        assert_ne!(engine_cache_dir(base, &t, &other).unwrap(), a);
        let mut other = ctx();
        other.gpu_name = Some("NVIDIA Jetson Orin Nano".into());
        assert_ne!(engine_cache_dir(base, &t, &other).unwrap(), a);
        let fp32 = TensorRtConfig {
            fp16: false,
            ..TensorRtConfig::default()
        };
        assert_ne!(engine_cache_dir(base, &fp32, &ctx()).unwrap(), a);
        let int8 = TensorRtConfig {
            int8: true,
            ..TensorRtConfig::default()
        };
        let mut other = ctx();
        other.calibration_sha256 = Some("00".repeat(32));
        assert_ne!(
            engine_cache_dir(base, &int8, &other),
            engine_cache_dir(base, &int8, &ctx())
        );
    }

    #[test]
    fn unknown_trt_version_disables_cache_with_a_warning() {
        let c = OrtConfig {
            providers: vec![ProviderKind::Tensorrt],
            tensorrt: TensorRtConfig {
                engine_cache_dir: Some("/c".into()),
                int8: true,
                ..TensorRtConfig::default()
            },
            ..OrtConfig::default()
        };
        let mut cx = ctx();
        cx.tensorrt_version = None;
        let plan = plan_providers(&c, &cx);
        assert_eq!(get(&plan[0], "trt_engine_cache_enable"), Some("0"));
        assert_eq!(get(&plan[0], "trt_engine_cache_path"), None);
        // INT8 without a table is refused with a warning, not a crash.
        assert_eq!(get(&plan[0], "trt_int8_enable"), Some("0"));
        assert_eq!(plan[0].warnings.len(), 2, "{:?}", plan[0].warnings);
    }

    #[test]
    fn int8_table_without_cache_is_passed_by_path() {
        let c = OrtConfig {
            providers: vec![ProviderKind::Tensorrt],
            tensorrt: TensorRtConfig {
                fp16: false,
                int8: true,
                int8_calibration_table: Some("/t/cal.flatbuffers".into()),
                ..TensorRtConfig::default()
            },
            ..OrtConfig::default()
        };
        let plan = plan_providers(&c, &ctx());
        assert_eq!(
            get(&plan[0], "trt_int8_calibration_table_name"),
            Some("/t/cal.flatbuffers")
        );
        assert_eq!(get(&plan[0], "trt_fp16_enable"), Some("0"));
        assert_eq!(plan[0].stage_file, None);
    }

    #[test]
    fn finds_tensorrt_version_from_file_names() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "libnvinfer.so",
            "libnvinfer.so.10",
            "libnvinfer.so.8.6.2",
            "libnvinfer.so.10.3.0",
        ] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        assert_eq!(
            find_tensorrt_version(&[d.path().to_path_buf()]),
            Some("10.3.0".into())
        );
        assert_eq!(find_tensorrt_version(&[]), None);
    }

    #[test]
    fn library_lookup_order_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let lib = d.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&lib, b"").unwrap();
        let dirs = vec![empty.path().to_path_buf(), d.path().to_path_buf()];
        assert_eq!(
            find_library(None, None, &dirs).unwrap(),
            (lib.clone(), LibrarySource::Standard)
        );
        assert_eq!(
            find_library(Some(&lib), Some(Path::new("/nope")), &dirs).unwrap(),
            (lib.clone(), LibrarySource::Config)
        );
        assert_eq!(
            find_library(None, Some(&lib), &[]).unwrap(),
            (lib.clone(), LibrarySource::Env)
        );
        let e = find_library(Some(Path::new("/nope/libonnxruntime.so")), None, &dirs).unwrap_err();
        assert!(e.contains("/nope/libonnxruntime.so") && e.contains("detector.ort_library"));
        let e = find_library(None, Some(Path::new("/nope.so")), &dirs).unwrap_err();
        assert!(e.contains("ORT_DYLIB_PATH"));
        let e = find_library(None, None, &[empty.path().to_path_buf()]).unwrap_err();
        assert!(e.contains(&empty.path().display().to_string()), "{e}");
    }
}
