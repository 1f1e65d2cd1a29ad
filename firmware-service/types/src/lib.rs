//! The data every part of the daemon exchanges, independent of any one frame's processing:
//! detections in image pixels, the ego vehicle's state, CAN frames. Times are monotonic
//! nanoseconds (`u64`) on the camera's clock throughout.

mod can;
mod detection;
mod ego;
pub mod inf_as_null;

pub use adas_plugins::manifest::RoadUser;
pub use adas_plugins::BBox;
pub use can::CanFrame;
pub use detection::ImageDetection;
pub use ego::{EgoState, InhibitReason};
