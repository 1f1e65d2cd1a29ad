//! Our GPU engine (`adas-gpu`) as a detector backend: the network on the GPU for
//! [`Backend::infer`], and the whole frame (preprocess → network → decode → NMS) on the GPU as a
//! [`FrameDetector`].

use crate::{Backend, DetectError, FrameDetector, FrameResult, GpuStageTimes};
pub use adas_gpu::cuda::*;
use adas_plugins::{InputTransform, Tensor, TensorView};

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn infer(
        &mut self,
        input: &Tensor,
        consume: &mut dyn FnMut(&[TensorView<'_>]),
    ) -> Result<(), DetectError> {
        let outputs = self.infer_host(input)?;
        let views: Vec<TensorView<'_>> = outputs.iter().map(Tensor::view).collect();
        consume(&views);
        Ok(())
    }

    fn frame_detector(&mut self) -> Option<&mut dyn FrameDetector> {
        Some(self)
    }

    fn device(&self) -> String {
        self.identity()
    }

    fn cost_per_image(&self) -> Option<(f64, f64)> {
        Some(CudaBackend::cost_per_image(self))
    }
}

impl FrameDetector for CudaBackend {
    fn detect_frames(
        &mut self,
        frames: &[&[u8]],
        width: usize,
        height: usize,
    ) -> Result<(Vec<FrameResult>, InputTransform), DetectError> {
        Ok(CudaBackend::detect_frames(self, frames, width, height)?)
    }

    fn profile_stages(
        &mut self,
        frames: &[&[u8]],
        width: usize,
        height: usize,
    ) -> Result<GpuStageTimes, DetectError> {
        Ok(CudaBackend::profile_stages(self, frames, width, height)?)
    }

    fn network_latency_ms(&mut self, iterations: usize) -> Result<Vec<f64>, DetectError> {
        Ok(CudaBackend::network_latency_ms(self, iterations)?)
    }
}
