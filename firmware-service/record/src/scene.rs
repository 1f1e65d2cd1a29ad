//! What Foxglove's 3D panel shows of a frame (pure): the BEV objects, the tracks and the AEB
//! corridor as `foxglove.SceneUpdate`s in the `vehicle` frame (x forward, y left, z up, origin at
//! the front-bumper centre on the ground: the calibration's ground frame). These are views for
//! people; replays read the exact JSON topics (`/adas/bev`, `/adas/tracks`, `/adas/decision`).
//!
//! Each update first deletes every entity of its topic, so a seek or a frame without objects
//! never leaves old boxes standing.

use crate::foxglove::{
    deletion_type, line_type, ArrowPrimitive, Color, CubePrimitive, KeyValuePair, LinePrimitive,
    Point3, Pose, SceneEntity, SceneEntityDeletion, SceneUpdate, SpherePrimitive, TextPrimitive,
    Timestamp, Vector3,
};
use crate::schema::Outcome;
use adas_core::aeb::decider::{Decision, Stage};
use adas_core::perception::{BevProjection, Track};
use adas_plugins::manifest::RoadUser;

/// `frame_id` of every entity.
pub const VEHICLE_FRAME: &str = "vehicle";

/// Length, width and height drawn for a class, m: typical road users, for orientation only
/// (the pipeline measures a ground point per object, not its extent).
fn extent(class: RoadUser) -> (f64, f64, f64) {
    match class {
        RoadUser::Pedestrian => (0.5, 0.6, 1.75),
        RoadUser::Cyclist => (1.8, 0.6, 1.7),
        RoadUser::Car => (4.5, 1.8, 1.5),
        RoadUser::TruckBus => (10.0, 2.5, 3.2),
        RoadUser::Motorcycle => (2.2, 0.8, 1.5),
        RoadUser::Other | RoadUser::Ignored => (1.0, 1.0, 1.0),
    }
}

fn rgba(r: f64, g: f64, b: f64, a: f64) -> Option<Color> {
    Some(Color { r, g, b, a })
}

/// One colour per class (the threat is drawn red instead).
fn class_colour(class: RoadUser, a: f64) -> Option<Color> {
    match class {
        RoadUser::Pedestrian => rgba(1.0, 0.6, 0.0, a),
        RoadUser::Cyclist => rgba(1.0, 0.9, 0.1, a),
        RoadUser::Car => rgba(0.2, 0.6, 1.0, a),
        RoadUser::TruckBus => rgba(0.6, 0.4, 1.0, a),
        RoadUser::Motorcycle => rgba(0.0, 0.85, 0.85, a),
        RoadUser::Other | RoadUser::Ignored => rgba(0.7, 0.7, 0.7, a),
    }
}

const THREAT: (f64, f64, f64) = (1.0, 0.1, 0.1);

/// The corridor's colour: green when clear, amber for the warning, red while braking, grey
/// while the decider is inhibited.
fn stage_colour(d: &Decision) -> Option<Color> {
    if d.inhibit.is_some() {
        return rgba(0.6, 0.6, 0.6, 0.9);
    }
    match d.stage {
        Stage::None => rgba(0.2, 0.8, 0.3, 0.9),
        Stage::Fcw => rgba(1.0, 0.75, 0.0, 1.0),
        Stage::PartialBrake => rgba(1.0, 0.4, 0.0, 1.0),
        Stage::FullBrake => rgba(1.0, 0.1, 0.1, 1.0),
    }
}

fn entity(t_ns: u64, id: String) -> SceneEntity {
    SceneEntity {
        timestamp: Some(Timestamp::from_ns(t_ns)),
        frame_id: VEHICLE_FRAME.into(),
        id,
        ..Default::default()
    }
}

fn pair(key: &str, value: impl ToString) -> KeyValuePair {
    KeyValuePair {
        key: key.into(),
        value: value.to_string(),
    }
}

fn update(t_ns: u64, entities: Vec<SceneEntity>) -> SceneUpdate {
    SceneUpdate {
        deletions: vec![SceneEntityDeletion {
            timestamp: Some(Timestamp::from_ns(t_ns)),
            r#type: deletion_type::ALL,
            id: String::new(),
        }],
        entities,
    }
}

/// Text that stays readable at any zoom, facing the viewer.
fn label(x: f64, y: f64, z: f64, text: String) -> TextPrimitive {
    TextPrimitive {
        pose: Some(Pose::at(x, y, z, 0.0)),
        billboard: true,
        font_size: 14.0,
        scale_invariant: true,
        color: rgba(1.0, 1.0, 1.0, 1.0),
        text,
    }
}

/// `/viz/bev`: a ball on the ground point of every road-user detection, in its class colour.
pub fn bev(t_ns: u64, bev: &BevProjection) -> SceneUpdate {
    let entities = bev
        .objects
        .iter()
        .filter(|o| o.x_m.is_finite() && o.y_m.is_finite())
        .map(|o| {
            let mut e = entity(t_ns, format!("bev/{}", o.detection));
            e.spheres.push(SpherePrimitive {
                pose: Some(Pose::at(o.x_m, o.y_m, 0.2, 0.0)),
                size: Some(Vector3 {
                    x: 0.4,
                    y: 0.4,
                    z: 0.4,
                }),
                color: class_colour(o.class, 0.9),
            });
            e.metadata = vec![
                pair("class", o.class.as_str()),
                pair("detection", o.detection),
            ];
            e
        })
        .collect();
    update(t_ns, entities)
}

/// `/viz/tracks`: every track as a box of its class's typical size whose near face is on the
/// tracked ground point (translucent until confirmed, red for the threat), an arrow of the
/// relative velocity (the motion in one second) and a label with id, class, distance and
/// closing speed. (Everything else of a track is on `/adas/tracks`.)
pub fn tracks(t_ns: u64, tracks: &[Track], decision: &Decision) -> SceneUpdate {
    let threat = decision.threat.map(|t| t.track_id);
    let entities = tracks
        .iter()
        .filter(|t| t.is_finite())
        .map(|t| {
            let (length, width, height) = extent(t.class);
            let alpha = if t.confirmed { 0.6 } else { 0.25 };
            let colour = if threat == Some(t.id) {
                rgba(THREAT.0, THREAT.1, THREAT.2, alpha)
            } else {
                class_colour(t.class, alpha)
            };
            let mut e = entity(t_ns, format!("track/{}", t.id));
            e.cubes.push(CubePrimitive {
                pose: Some(Pose::at(t.x_m + 0.5 * length, t.y_m, 0.5 * height, 0.0)),
                size: Some(Vector3 {
                    x: length,
                    y: width,
                    z: height,
                }),
                color: colour,
            });
            let speed = t.vx_mps.hypot(t.vy_mps);
            if speed >= 0.1 {
                e.arrows.push(ArrowPrimitive {
                    pose: Some(Pose::at(t.x_m, t.y_m, 0.3, t.vy_mps.atan2(t.vx_mps))),
                    shaft_length: (speed - 0.4).max(0.05),
                    shaft_diameter: 0.15,
                    head_length: 0.4,
                    head_diameter: 0.4,
                    color: colour.map(|c| Color { a: 1.0, ..c }),
                });
            }
            e.texts.push(label(
                t.x_m,
                t.y_m,
                height + 0.6,
                format!(
                    "#{} {} {:.1} m {:+.1} m/s",
                    t.id,
                    t.class.as_str(),
                    t.x_m,
                    t.vx_mps
                ),
            ));
            e
        })
        .collect();
    update(t_ns, entities)
}

/// Corridor edge points every this many metres along a bent corridor (a straight one needs its
/// ends only).
const CORRIDOR_STEP_M: f64 = 5.0;

/// `/viz/corridor`: the AEB corridor as a closed outline on the ground (bent by the yaw rate,
/// coloured by the stage), a line to the threat, the ego vehicle behind the bumper and the
/// decision as text above it.
pub fn corridor(t_ns: u64, decision: &Decision, ego_speed_mps: Option<f64>) -> SceneUpdate {
    let d = decision;
    let c = &d.corridor;
    let colour = stage_colour(d);
    let mut e = entity(t_ns, "corridor".into());
    if c.length_m.is_finite() && c.half_width_m.is_finite() && c.curvature_per_m.is_finite() {
        let steps = if c.curvature_per_m == 0.0 {
            1
        } else {
            (c.length_m / CORRIDOR_STEP_M).ceil().clamp(1.0, 64.0) as usize
        };
        let xs = (0..=steps).map(|i| c.length_m * i as f64 / steps as f64);
        let edge = |x: f64, side: f64| Point3 {
            x,
            y: c.centre_y(x) + side * c.half_width_m,
            z: 0.02,
        };
        let mut points: Vec<Point3> = xs.clone().map(|x| edge(x, 1.0)).collect();
        points.extend(xs.rev().map(|x| edge(x, -1.0)));
        e.lines.push(LinePrimitive {
            r#type: line_type::LINE_LOOP,
            pose: None,
            thickness: 3.0,
            scale_invariant: true,
            points,
            color: colour,
        });
    }
    if let Some(t) = d
        .threat
        .filter(|t| t.distance_m.is_finite() && t.lateral_m.is_finite())
    {
        e.lines.push(LinePrimitive {
            r#type: line_type::LINE_STRIP,
            pose: None,
            thickness: 2.0,
            scale_invariant: true,
            points: vec![
                Point3 {
                    x: 0.0,
                    y: 0.0,
                    z: 0.05,
                },
                Point3 {
                    x: t.distance_m,
                    y: t.lateral_m,
                    z: 0.05,
                },
            ],
            color: rgba(THREAT.0, THREAT.1, THREAT.2, 1.0),
        });
    }
    let (length, width, height) = extent(RoadUser::Car);
    e.cubes.push(CubePrimitive {
        pose: Some(Pose::at(-0.5 * length, 0.0, 0.5 * height, 0.0)),
        size: Some(Vector3 {
            x: length,
            y: width,
            z: height,
        }),
        color: rgba(0.85, 0.85, 0.85, 0.5),
    });
    let mut text = format!("AEB {}", d.stage.as_str());
    if let Some(r) = d.inhibit {
        text.push_str(&format!(" (inhibited: {})", r.as_str()));
    }
    if let Some(v) = ego_speed_mps {
        text.push_str(&format!(" | ego {:.1} km/h", v * 3.6));
    }
    if let Some(t) = d.threat {
        text.push_str(&format!(" | #{} {:.1} m", t.track_id, t.distance_m));
        if t.ttc_s.is_finite() {
            text.push_str(&format!(" TTC {:.2} s", t.ttc_s));
        }
    }
    e.texts.push(label(-0.5 * length, 0.0, height + 1.0, text));
    e.metadata = vec![
        pair("stage", d.stage.as_str()),
        pair("brake_request_mps2", d.brake_request_mps2),
    ];
    update(t_ns, vec![e])
}

/// The three updates of a frame: `(bev, tracks, corridor)`.
pub fn frame(t_ns: u64, o: &Outcome) -> [SceneUpdate; 3] {
    let d = &o.decision.decision;
    [
        bev(t_ns, &o.bev),
        tracks(t_ns, &o.tracks, d),
        corridor(t_ns, d, o.decision.ego_speed_mps),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use adas_core::aeb::decider::Threat;
    use prost::Message as _;

    fn track(id: u32, class: RoadUser, x: f64, y: f64, vx: f64, vy: f64) -> Track {
        Track {
            id,
            class,
            x_m: x,
            y_m: y,
            vx_mps: vx,
            vy_mps: vy,
            ax_mps2: 0.0,
            cov: [[0.0; 5]; 5],
            age: 10,
            hits: 9,
            misses: 0,
            confirmed: true,
            detection: None,
        }
    }

    fn threat(track_id: u32, distance_m: f64, lateral_m: f64, ttc_s: f64) -> Threat {
        Threat {
            track_id,
            detection: None,
            class: RoadUser::Pedestrian,
            distance_m,
            lateral_m,
            closing_speed_mps: 5.0,
            ttc_s,
            required_decel_mps2: 3.0,
        }
    }

    #[test]
    fn tracks_are_boxes_on_their_ground_point_with_velocity_arrows() {
        let d = Decision::for_test(0, Stage::Fcw, Some(threat(7, 20.0, 0.5, 1.5)));
        let t = [
            track(7, RoadUser::Pedestrian, 20.0, 0.5, -5.0, 0.0),
            track(8, RoadUser::Car, 30.0, -3.5, 0.0, 2.0),
            track(9, RoadUser::Car, 40.0, 3.5, 0.0, 0.0),
        ];
        let u = SceneUpdate::decode(&*tracks(1_500_000_000, &t, &d).encode_to_vec()).unwrap();
        assert_eq!(u.deletions.len(), 1);
        assert_eq!(u.deletions[0].r#type, deletion_type::ALL);
        let ids: Vec<&str> = u.entities.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["track/7", "track/8", "track/9"]);
        assert!(u.entities.iter().all(|e| e.frame_id == VEHICLE_FRAME));
        let stamp = u.entities[0].timestamp.unwrap();
        assert_eq!((stamp.seconds, stamp.nanos), (1, 500_000_000));

        // The threat is red, the others in their class colour; the near face on the point.
        let cube = u.entities[0].cubes[0];
        assert_eq!(cube.color.map(|c| (c.r, c.g)), Some((THREAT.0, THREAT.1)));
        let centre = cube.pose.unwrap().position.unwrap();
        assert_eq!((centre.x - 0.25, centre.y), (20.0, 0.5));
        assert_eq!(u.entities[1].cubes[0].color.map(|c| c.b), Some(1.0));

        // Arrows along the relative velocity, as long as one second of it; none when still.
        let arrow = |e: &SceneEntity| {
            let a = e.arrows[0];
            let q = a.pose.unwrap().orientation.unwrap();
            (2.0 * q.z.atan2(q.w), a.shaft_length + a.head_length)
        };
        let (yaw, len) = arrow(&u.entities[0]);
        assert!(
            (yaw.abs() - std::f64::consts::PI).abs() < 1e-9,
            "closing: backwards"
        );
        assert!((len - 5.0).abs() < 1e-9);
        let (yaw, len) = arrow(&u.entities[1]);
        assert!(
            (yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-9,
            "moving left"
        );
        assert!((len - 2.0).abs() < 1e-9);
        assert!(u.entities[2].arrows.is_empty());
        assert_eq!(u.entities[0].texts[0].text, "#7 pedestrian 20.0 m -5.0 m/s");
    }

    #[test]
    fn the_corridor_is_a_closed_outline_bent_by_the_curvature() {
        let mut d = Decision::for_test(0, Stage::FullBrake, Some(threat(3, 12.0, -0.2, 0.9)));
        d.corridor.curvature_per_m = 0.004;
        let u = SceneUpdate::decode(&*corridor(0, &d, Some(10.0)).encode_to_vec()).unwrap();
        let e = &u.entities[0];
        let outline = &e.lines[0];
        assert_eq!(outline.r#type, line_type::LINE_LOOP);
        let n = outline.points.len();
        assert_eq!(n, 2 * (80 / 5 + 1));
        let (near_left, far_left) = (outline.points[0], outline.points[n / 2 - 1]);
        assert_eq!((near_left.x, near_left.y), (0.0, 1.2));
        assert_eq!(far_left.x, 80.0);
        assert!((far_left.y - (0.5 * 0.004 * 80.0 * 80.0 + 1.2)).abs() < 1e-9);
        assert_eq!(outline.points[n - 1].y, -1.2, "back along the right edge");
        assert_eq!(
            outline.color.map(|c| (c.r, c.g)),
            Some((1.0, 0.1)),
            "braking"
        );
        let to_threat = &e.lines[1];
        assert_eq!((to_threat.points[1].x, to_threat.points[1].y), (12.0, -0.2));
        assert_eq!(
            e.texts[0].text,
            "AEB full | ego 36.0 km/h | #3 12.0 m TTC 0.90 s"
        );

        // Straight, clear, no threat: the outline's four corners, green, no threat line.
        let d = Decision::for_test(0, Stage::None, None);
        let e = &corridor(0, &d, None).entities[0];
        assert_eq!(e.lines.len(), 1);
        assert_eq!(e.lines[0].points.len(), 4);
        assert_eq!(e.lines[0].color.map(|c| c.g), Some(0.8));
        assert_eq!(e.texts[0].text, "AEB none");
    }

    #[test]
    fn non_finite_states_are_left_out_not_drawn_at_infinity() {
        let d = Decision::for_test(0, Stage::None, None);
        let t = [track(1, RoadUser::Car, f64::NAN, 0.0, 0.0, 0.0)];
        assert!(tracks(0, &t, &d).entities.is_empty());
    }
}
