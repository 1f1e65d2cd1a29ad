//! The GPU: context, the frame's stream, kernels compiled by NVRTC (cached as PTX), device
//! buffers and launches (on the frame's stream, or on a lane of the network). Everything the
//! rest of the backend does on the GPU goes through here.

use crate::GpuError;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::{CompileOptions, Ptx};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub fn gpu_error(what: &str, e: impl std::fmt::Display) -> GpuError {
    GpuError::Backend(format!("cuda: {what}: {e}"))
}

/// Checks that the driver, NVRTC and cuDNN libraries can be loaded, before cudarc would abort on
/// a missing one.
pub fn check_libraries() -> Result<(), GpuError> {
    // SAFETY: only tries to dlopen the libraries.
    let present = unsafe {
        [
            (
                "the NVIDIA driver (libcuda.so)",
                cudarc::driver::sys::is_culib_present(),
            ),
            (
                "NVRTC (libnvrtc.so)",
                cudarc::nvrtc::sys::is_culib_present(),
            ),
            (
                "cuDNN 9 (libcudnn.so)",
                cudarc::cudnn::sys::is_culib_present(),
            ),
        ]
    };
    let missing: Vec<&str> = present
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(GpuError::Backend(format!(
            "cuda backend: cannot load {}; install the NVIDIA driver, CUDA runtime libraries and \
             cuDNN 9 (on Jetson: JetPack), or add their directory to LD_LIBRARY_PATH; or use \
             --backend tract|ort",
            missing.join(", ")
        )))
    }
}

/// Identity of the GPU and libraries: part of every cache key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceIdentity {
    pub gpu: String,
    pub compute_capability: (i32, i32),
    pub driver: i32,
    pub cudnn: usize,
    pub nvrtc: (i32, i32),
}

pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub identity: DeviceIdentity,
    functions: HashMap<&'static str, CudaFunction>,
    _modules: Vec<Arc<CudaModule>>,
}

/// A raw device pointer argument (0 = null).
pub type DevPtr = u64;

impl Gpu {
    pub fn new(ordinal: usize) -> Result<Gpu, GpuError> {
        check_libraries()?;
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| gpu_error(&format!("no usable GPU {ordinal}"), e))?;
        // Raw pointers, CUDA graphs: cudarc's per-buffer event tracking would only add event
        // nodes to the captured graphs.
        // SAFETY: all work of this context goes to the stream below in order, except the
        // network's lanes, which fork from it and join it again with explicit events
        // (network.rs, `Network::enqueue`).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| gpu_error("creating a stream", e))?;
        let gpu = ctx.name().map_err(|e| gpu_error("device name", e))?;
        let compute_capability = ctx
            .compute_capability()
            .map_err(|e| gpu_error("compute capability", e))?;
        let mut driver = 0;
        // SAFETY: plain query into a local.
        unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut driver) };
        let cudnn = cudarc::cudnn::result::get_version();
        let (mut major, mut minor) = (0, 0);
        // SAFETY: plain query into locals.
        unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
        Ok(Gpu {
            ctx,
            stream,
            identity: DeviceIdentity {
                gpu,
                compute_capability,
                driver,
                cudnn,
                nvrtc: (major, minor),
            },
            functions: HashMap::new(),
            _modules: Vec::new(),
        })
    }

    /// Compiles (or loads from `cache_dir`) `source` for this GPU with the activation type
    /// chosen by `half`, and registers `names` from it.
    pub fn load_kernels(
        &mut self,
        source: &str,
        half: bool,
        names: &[&'static str],
        cache_dir: Option<&Path>,
    ) -> Result<(), GpuError> {
        let (major, minor) = self.identity.compute_capability;
        let full = format!(
            "#define ADAS_HALF {}\n{}\n{}",
            u8::from(half),
            adas_plugins::gpu::COMMON,
            source
        );
        let key: String =
            Sha256::digest(format!("{full}\n{major}{minor}\n{:?}", self.identity.nvrtc).as_bytes())
                .iter()
                .take(12)
                .map(|b| format!("{b:02x}"))
                .collect();
        let cached = cache_dir.map(|d| d.join(format!("kernels-{key}.ptx")));
        let ptx = match cached
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            Some(text) => Ptx::from_src(text),
            None => {
                let arch: &'static str =
                    Box::leak(format!("compute_{major}{minor}").into_boxed_str());
                let ptx = cudarc::nvrtc::compile_ptx_with_opts(
                    &full,
                    CompileOptions {
                        arch: Some(arch),
                        // No FMA contraction: the kernels must round like their CPU twins.
                        fmad: Some(false),
                        ..Default::default()
                    },
                )
                .map_err(|e| gpu_error("compiling kernels with NVRTC", e))?;
                if let Some(p) = &cached {
                    if let Some(dir) = p.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    // A cache that cannot be written only costs the next start a compile.
                    let _ = std::fs::write(p, ptx.to_src());
                }
                ptx
            }
        };
        let module = self
            .ctx
            .load_module(ptx)
            .map_err(|e| gpu_error("loading kernels", e))?;
        for name in names {
            let f = module
                .load_function(name)
                .map_err(|e| gpu_error(&format!("kernel {name}"), e))?;
            self.functions.insert(name, f);
        }
        self._modules.push(module);
        Ok(())
    }

    pub fn alloc(&self, bytes: usize) -> Result<(CudaSlice<u8>, DevPtr), GpuError> {
        let slice = self
            .stream
            .alloc_zeros::<u8>(bytes.max(1))
            .map_err(|e| gpu_error(&format!("allocating {bytes} bytes (out of GPU memory?)"), e))?;
        let ptr = {
            use cudarc::driver::DevicePtr;
            let (p, _sync) = slice.device_ptr(&self.stream);
            p
        };
        Ok((slice, ptr))
    }

    pub fn upload<T: DeviceRepr>(&self, dst: DevPtr, data: &[T]) -> Result<(), GpuError> {
        // SAFETY: dst was allocated by `alloc` with at least this many bytes (callers size it).
        unsafe { cudarc::driver::result::memcpy_htod_async(dst, data, self.stream.cu_stream()) }
            .map_err(|e| gpu_error("upload", e))
    }

    pub fn download<T: DeviceRepr>(&self, dst: &mut [T], src: DevPtr) -> Result<(), GpuError> {
        // SAFETY: src holds at least dst.len() values; the caller synchronises before reading.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(dst, src, self.stream.cu_stream()) }
            .map_err(|e| gpu_error("download", e))
    }

    pub fn sync(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(|e| gpu_error("synchronize (a kernel failed?)", e))
    }

    /// How many `threads`-thread blocks of kernel `name` (no dynamic shared memory) the whole
    /// GPU holds at once: its SMs × the blocks an SM fits by registers and shared memory.
    pub fn resident_blocks(&self, name: &str, threads: u32) -> Result<usize, GpuError> {
        use cudarc::driver::sys::CUdevice_attribute_enum::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;
        let f = self
            .functions
            .get(name)
            .ok_or_else(|| GpuError::Backend(format!("cuda: kernel {name} not loaded")))?;
        let sms = self
            .ctx
            .attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| gpu_error("multiprocessor count", e))?;
        let per_sm = f
            .occupancy_max_active_blocks_per_multiprocessor(threads, 0, None)
            .map_err(|e| gpu_error(&format!("occupancy of {name}"), e))?;
        Ok(usize::try_from(sms).unwrap_or(0) * per_sm as usize)
    }

    /// Whether `name` is loaded and can be launched with `threads` per block and `bytes` of
    /// dynamic shared memory, its blocks in clusters of `cluster` (1: none; the cluster size is
    /// compiled into the kernel). Above the default 48 KiB a kernel must opt in, up to what the
    /// GPU allows per block (H100 227 KiB, Orin 163 KiB); a cluster must fit on one GPC. Where
    /// it cannot, the kernel is not a candidate.
    pub fn fits(&self, name: &str, threads: u32, bytes: u32, cluster: u32) -> bool {
        use cudarc::driver::sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
        const DEFAULT_LIMIT: u32 = 48 << 10;
        let Some(f) = self.functions.get(name) else {
            return false;
        };
        if bytes > DEFAULT_LIMIT {
            let Ok(bytes) = i32::try_from(bytes) else {
                return false;
            };
            if f.set_attribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes)
                .is_err()
            {
                return false;
            }
        }
        if cluster <= 1 {
            return true;
        }
        let cfg = LaunchConfig {
            grid_dim: (1, 1, cluster),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: bytes,
        };
        f.occupancy_max_active_clusters(cfg, &self.stream)
            .is_ok_and(|n| n > 0)
    }

    /// Launches `name` over `n` elements (grid-stride kernels), grid.y = `images`.
    pub fn launch(
        &self,
        name: &str,
        n: usize,
        images: u32,
        shared: u32,
        args: &[&dyn Arg],
    ) -> Result<(), GpuError> {
        self.launch_on(&self.stream, name, n, images, shared, args)
    }

    /// [`Gpu::launch`] on another stream of this context (a lane of the network).
    pub fn launch_on(
        &self,
        stream: &CudaStream,
        name: &str,
        n: usize,
        images: u32,
        shared: u32,
        args: &[&dyn Arg],
    ) -> Result<(), GpuError> {
        let blocks = n.div_ceil(256).clamp(1, 65_535 * 4) as u32;
        self.launch_grid_on(stream, name, (blocks, images, 1), 256, shared, args)
    }

    /// Launches `name` on a grid of `threads`-thread blocks with `shared` bytes of dynamic
    /// shared memory (tiled kernels, NMS).
    pub fn launch_grid(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        threads: u32,
        shared: u32,
        args: &[&dyn Arg],
    ) -> Result<(), GpuError> {
        self.launch_grid_on(&self.stream, name, grid, threads, shared, args)
    }

    /// [`Gpu::launch_grid`] on another stream of this context.
    pub fn launch_grid_on(
        &self,
        stream: &CudaStream,
        name: &str,
        grid: (u32, u32, u32),
        threads: u32,
        shared: u32,
        args: &[&dyn Arg],
    ) -> Result<(), GpuError> {
        let f = self
            .functions
            .get(name)
            .ok_or_else(|| GpuError::Backend(format!("cuda: kernel {name} not loaded")))?;
        let cfg = LaunchConfig {
            grid_dim: (grid.0.max(1), grid.1.max(1), grid.2.max(1)),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: shared,
        };
        let mut b = stream.launch_builder(f);
        for a in args {
            a.push(&mut b);
        }
        // SAFETY: every kernel's parameter list matches the argument list its caller builds
        // (checked by the GPU parity tests); pointers come from `alloc` with sizes from the plan.
        unsafe { b.launch(cfg) }.map_err(|e| gpu_error("kernel launch", e))?;
        Ok(())
    }
}

/// A kernel argument (scalars and raw device pointers).
pub trait Arg {
    fn push<'a>(&'a self, b: &mut cudarc::driver::LaunchArgs<'a>);
}

impl<T: DeviceRepr> Arg for T {
    fn push<'a>(&'a self, b: &mut cudarc::driver::LaunchArgs<'a>) {
        b.arg(self);
    }
}
