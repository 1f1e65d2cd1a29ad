//! What a detector reports, in the frame's own pixels.

use adas_plugins::manifest::RoadUser;
use adas_plugins::BBox;

/// A detection in original-image pixels, with its names resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageDetection {
    pub bbox: BBox,
    pub score: f32,
    pub label: String,
    pub class: RoadUser,
}
