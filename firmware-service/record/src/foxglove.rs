//! The Foxglove message schemas the 3D panel reads, `foxglove.SceneUpdate` and
//! `foxglove.FrameTransform`, as protobuf: the official descriptor sets (taken from the
//! `foxglove-schemas-protobuf` package, `tests/mcap/foxglove_fds.py` regenerates and checks them)
//! and the messages' fields that adasd writes, with the same field numbers. A field adasd never
//! sets (cylinders, meshes, models, …) is left out: protobuf readers see it as absent.
//! `tests/mcap/validate.py` decodes every message of a recording with the official Python classes
//! and checks that they re-encode to the same bytes (no field misnumbered or unknown).

/// `foxglove.SceneUpdate` and its dependencies as a `FileDescriptorSet`.
pub const SCENE_UPDATE_FDS: &[u8] = include_bytes!("foxglove_SceneUpdate.fds");
/// `foxglove.FrameTransform` and its dependencies as a `FileDescriptorSet`.
pub const FRAME_TRANSFORM_FDS: &[u8] = include_bytes!("foxglove_FrameTransform.fds");

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn from_ns(t_ns: u64) -> Timestamp {
        Timestamp {
            seconds: i64::try_from(t_ns / 1_000_000_000).unwrap_or(i64::MAX),
            // Below 10⁹: always fits.
            nanos: (t_ns % 1_000_000_000) as i32,
        }
    }
}

/// `foxglove.Vector3`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Vector3 {
    #[prost(double, tag = "1")]
    pub x: f64,
    #[prost(double, tag = "2")]
    pub y: f64,
    #[prost(double, tag = "3")]
    pub z: f64,
}

/// `foxglove.Point3`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Point3 {
    #[prost(double, tag = "1")]
    pub x: f64,
    #[prost(double, tag = "2")]
    pub y: f64,
    #[prost(double, tag = "3")]
    pub z: f64,
}

/// `foxglove.Quaternion`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Quaternion {
    #[prost(double, tag = "1")]
    pub x: f64,
    #[prost(double, tag = "2")]
    pub y: f64,
    #[prost(double, tag = "3")]
    pub z: f64,
    #[prost(double, tag = "4")]
    pub w: f64,
}

impl Quaternion {
    /// A rotation by `yaw` (rad) about +z.
    pub fn yaw(yaw: f64) -> Quaternion {
        let (s, c) = (0.5 * yaw).sin_cos();
        Quaternion {
            x: 0.0,
            y: 0.0,
            z: s,
            w: c,
        }
    }
}

/// `foxglove.Pose`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Pose {
    #[prost(message, optional, tag = "1")]
    pub position: Option<Vector3>,
    #[prost(message, optional, tag = "2")]
    pub orientation: Option<Quaternion>,
}

impl Pose {
    /// At `(x, y, z)`, rotated by `yaw` about +z.
    pub fn at(x: f64, y: f64, z: f64, yaw: f64) -> Pose {
        Pose {
            position: Some(Vector3 { x, y, z }),
            orientation: Some(Quaternion::yaw(yaw)),
        }
    }
}

/// `foxglove.Color` (components 0–1).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Color {
    #[prost(double, tag = "1")]
    pub r: f64,
    #[prost(double, tag = "2")]
    pub g: f64,
    #[prost(double, tag = "3")]
    pub b: f64,
    #[prost(double, tag = "4")]
    pub a: f64,
}

/// `foxglove.KeyValuePair`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValuePair {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `foxglove.ArrowPrimitive` (identity orientation points along +x from the tail).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ArrowPrimitive {
    #[prost(message, optional, tag = "1")]
    pub pose: Option<Pose>,
    #[prost(double, tag = "2")]
    pub shaft_length: f64,
    #[prost(double, tag = "3")]
    pub shaft_diameter: f64,
    #[prost(double, tag = "4")]
    pub head_length: f64,
    #[prost(double, tag = "5")]
    pub head_diameter: f64,
    #[prost(message, optional, tag = "6")]
    pub color: Option<Color>,
}

/// `foxglove.CubePrimitive` (pose at its centre).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct CubePrimitive {
    #[prost(message, optional, tag = "1")]
    pub pose: Option<Pose>,
    #[prost(message, optional, tag = "2")]
    pub size: Option<Vector3>,
    #[prost(message, optional, tag = "3")]
    pub color: Option<Color>,
}

/// `foxglove.SpherePrimitive` (pose at its centre, size = diameters).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct SpherePrimitive {
    #[prost(message, optional, tag = "1")]
    pub pose: Option<Pose>,
    #[prost(message, optional, tag = "2")]
    pub size: Option<Vector3>,
    #[prost(message, optional, tag = "3")]
    pub color: Option<Color>,
}

/// `foxglove.LinePrimitive.Type`.
pub mod line_type {
    pub const LINE_STRIP: i32 = 0;
    pub const LINE_LOOP: i32 = 1;
}

/// `foxglove.LinePrimitive`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinePrimitive {
    /// [`line_type`].
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub pose: Option<Pose>,
    #[prost(double, tag = "3")]
    pub thickness: f64,
    #[prost(bool, tag = "4")]
    pub scale_invariant: bool,
    #[prost(message, repeated, tag = "5")]
    pub points: Vec<Point3>,
    #[prost(message, optional, tag = "6")]
    pub color: Option<Color>,
}

/// `foxglove.TextPrimitive`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TextPrimitive {
    #[prost(message, optional, tag = "1")]
    pub pose: Option<Pose>,
    #[prost(bool, tag = "2")]
    pub billboard: bool,
    #[prost(double, tag = "3")]
    pub font_size: f64,
    #[prost(bool, tag = "4")]
    pub scale_invariant: bool,
    #[prost(message, optional, tag = "5")]
    pub color: Option<Color>,
    #[prost(string, tag = "6")]
    pub text: String,
}

/// `foxglove.SceneEntity`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SceneEntity {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub frame_id: String,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(message, repeated, tag = "6")]
    pub metadata: Vec<KeyValuePair>,
    #[prost(message, repeated, tag = "7")]
    pub arrows: Vec<ArrowPrimitive>,
    #[prost(message, repeated, tag = "8")]
    pub cubes: Vec<CubePrimitive>,
    #[prost(message, repeated, tag = "9")]
    pub spheres: Vec<SpherePrimitive>,
    #[prost(message, repeated, tag = "11")]
    pub lines: Vec<LinePrimitive>,
    #[prost(message, repeated, tag = "13")]
    pub texts: Vec<TextPrimitive>,
}

/// `foxglove.SceneEntityDeletion.Type`.
pub mod deletion_type {
    /// Every entity of the topic.
    pub const ALL: i32 = 1;
}

/// `foxglove.SceneEntityDeletion`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SceneEntityDeletion {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// [`deletion_type`].
    #[prost(int32, tag = "2")]
    pub r#type: i32,
    #[prost(string, tag = "3")]
    pub id: String,
}

/// `foxglove.SceneUpdate`: deletions are applied before the entities.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SceneUpdate {
    #[prost(message, repeated, tag = "1")]
    pub deletions: Vec<SceneEntityDeletion>,
    #[prost(message, repeated, tag = "2")]
    pub entities: Vec<SceneEntity>,
}

/// `foxglove.FrameTransform`: where `child_frame_id`'s origin and axes are in `parent_frame_id`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FrameTransform {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub parent_frame_id: String,
    #[prost(string, tag = "3")]
    pub child_frame_id: String,
    #[prost(message, optional, tag = "4")]
    pub translation: Option<Vector3>,
    #[prost(message, optional, tag = "5")]
    pub rotation: Option<Quaternion>,
}
