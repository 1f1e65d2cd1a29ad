//! Axis-aligned boxes and detections.

/// Axis-aligned box, corners `(x1, y1)` top-left and `(x2, y2)` bottom-right. The unit depends on
/// the stage: normalised model-input coordinates inside decoders, original-image pixels after
/// [`crate::preprocess::InputTransform::to_image`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union; 0 for disjoint or degenerate boxes.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = BBox::new(
            self.x1.max(other.x1),
            self.y1.max(other.y1),
            self.x2.min(other.x2),
            self.y2.min(other.y2),
        )
        .area();
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// The ground contact point used for BEV projection: bottom centre.
    pub fn bottom_centre(&self) -> (f32, f32) {
        ((self.x1 + self.x2) * 0.5, self.y2)
    }

    pub fn is_finite(&self) -> bool {
        self.x1.is_finite() && self.y1.is_finite() && self.x2.is_finite() && self.y2.is_finite()
    }
}

/// One detected object: a box, a confidence in `[0, 1]` and the index of its label in the
/// model manifest's label list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub label: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_known_boxes() {
        let a = BBox::new(0.0, 0.0, 2.0, 2.0);
        let b = BBox::new(1.0, 1.0, 3.0, 3.0);
        // intersection 1, union 4 + 4 - 1 = 7
        assert!((a.iou(&b) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(5.0, 5.0, 6.0, 6.0)), 0.0);
        assert_eq!(a.iou(&a), 1.0);
    }

    #[test]
    fn bottom_centre_is_ground_contact() {
        assert_eq!(
            BBox::new(10.0, 20.0, 30.0, 60.0).bottom_centre(),
            (20.0, 60.0)
        );
    }
}
