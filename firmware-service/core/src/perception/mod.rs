//! Perception in the ground plane: detections projected to the vehicle frame, then tracked.

mod bev;
pub mod track;

pub use bev::{project_detections, project_detections_in_image, BevObject, BevProjection};
pub use track::{Track, Tracker, TrackerParams};
