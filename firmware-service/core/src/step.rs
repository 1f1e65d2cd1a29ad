//! One frame through the core: detections → ground plane → tracks → decision. This is the
//! daemon's per-frame decision path; the scenario simulator drives the same [`Core`].

use crate::aeb::{AebDecider, AebParams, Decision};
use crate::perception::{
    project_detections_in_image, BevProjection, Track, Tracker, TrackerParams,
};
use adas_calibration::Homography;
use adas_types::{EgoState, ImageDetection};

/// The core's state across frames: the calibration it projects with, the tracker and the
/// decider.
pub struct Core {
    homography: Homography,
    image_size: (u32, u32),
    tracker: Tracker,
    decider: AebDecider,
}

/// What the core made of one frame.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub bev: BevProjection,
    /// Every live track after this frame (tentative and confirmed).
    pub tracks: Vec<Track>,
    pub decision: Decision,
}

impl Core {
    /// `image_size`: the frames' size, the one the homography was calibrated for (boxes cut by
    /// its edges have no ground contact point).
    pub fn new(
        homography: Homography,
        image_size: (u32, u32),
        tracker: TrackerParams,
        aeb: AebParams,
    ) -> Core {
        Core {
            homography,
            image_size,
            tracker: Tracker::new(tracker),
            decider: AebDecider::new(aeb),
        }
    }

    pub fn homography(&self) -> &Homography {
        &self.homography
    }

    pub fn image_size(&self) -> (u32, u32) {
        self.image_size
    }

    /// One frame captured at `t_ns` (monotonic ns). `ego`: the latest ego sample, `None` before
    /// the first one — the tracker then predicts without ego motion and the decider inhibits.
    pub fn step(
        &mut self,
        t_ns: u64,
        detections: &[ImageDetection],
        ego: Option<&EgoState>,
    ) -> Outcome {
        let bev = project_detections_in_image(&self.homography, detections, self.image_size);
        let no_sample = EgoState {
            valid: false,
            ..EgoState::with_speed(t_ns, 0.0)
        };
        self.tracker
            .step(t_ns, &bev.objects, ego.unwrap_or(&no_sample));
        let decision = self.decider.step(t_ns, self.tracker.tracks(), ego);
        Outcome {
            bev,
            tracks: self.tracker.tracks().to_vec(),
            decision,
        }
    }
}
