//! CAN frames decoded into their DBC signals, one JSON topic per message (`/can/tx/AEB_Warning`,
//! `/can/rx/VehicleSpeed`, …) next to the raw frames on `/can/rx` and `/can/tx`, so that a plot
//! shows the stage, TTC or distance over time. Decoded by the product's own tables generated
//! from the DBC ([`adas_core::can::dbc::MessageSpec`]); a "no value" code (distance 0xFFFF, TTC
//! 0xFF, speed not available) is `null`, never 655.35. Views for people: replays read the raw
//! frames.
//!
//! A message is `{"AEB_Stage":1,…,"AEB_TTC":null,…,"labels":{"AEB_Stage":"FCW",
//! "AEB_TTC":"NoneOrAtLeast12.75s",…}}`: every signal by its DBC name (integers for factor-1
//! signals, physical values in the DBC's unit otherwise), and under `labels` the value-table
//! label of each signal whose raw value has one.

use adas_core::can::dbc::{MessageSpec, SignalSpec, SignalValue, MESSAGES};
use adas_types::CanFrame;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

/// The DBC node that is this service: its messages are decoded on `/can/tx/…`, the others on
/// `/can/rx/…`.
pub const OWN_NODE: &str = "ADAS";

/// The topic of a DBC message's decoded frames.
pub fn topic(m: &MessageSpec) -> String {
    let direction = if m.transmitter == OWN_NODE {
        "tx"
    } else {
        "rx"
    };
    format!("/can/{direction}/{}", m.name)
}

/// The schema name of a DBC message's decoded frames.
pub fn schema_name(m: &MessageSpec) -> String {
    format!("adas.can.{}", m.name)
}

fn signal_schema(s: &SignalSpec) -> Value {
    let mut description = format!("{} Range {}..{}", s.comment, s.min, s.max);
    if !s.unit.is_empty() {
        description.push_str(&format!(" {}", s.unit));
    }
    description.push('.');
    if s.is_integer() {
        json!({"type": "integer", "description": description})
    } else {
        let codes: Vec<&str> = s.values.iter().map(|(_, label)| *label).collect();
        if !codes.is_empty() {
            description.push_str(&format!(" null: {}", codes.join(", ")));
        }
        json!({"type": ["number", "null"], "description": description})
    }
}

/// The JSON schema of a DBC message's decoded frames: every signal required, labels from its
/// value table.
pub fn json_schema(m: &MessageSpec) -> String {
    let mut properties = Map::new();
    let mut labels = Map::new();
    for s in m.signals {
        properties.insert(s.name.into(), signal_schema(s));
        if !s.values.is_empty() {
            let names: Vec<&str> = s.values.iter().map(|(_, label)| *label).collect();
            labels.insert(s.name.into(), json!({"type": "string", "enum": names}));
        }
    }
    properties.insert(
        "labels".into(),
        json!({
            "type": "object",
            "description": "the value-table label of each signal whose raw value has one",
            "properties": labels,
            "additionalProperties": false,
        }),
    );
    let required: Vec<&str> = m.signals.iter().map(|s| s.name).collect();
    json!({
        "title": schema_name(m),
        "description": format!(
            "{} (0x{:03X}, {} bytes, sent by {}; decoded with the DBC)",
            m.comment, m.id, m.dlc, m.transmitter
        ),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
    .to_string()
}

/// One decoded frame, serialised straight from the decoded signals.
struct Decoded<'a>(&'a [SignalValue]);

/// The `labels` object of a decoded frame.
struct Labels<'a>(&'a [SignalValue]);

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for v in self.0 {
            if let Some(label) = v.label {
                map.serialize_entry(v.spec.name, label)?;
            }
        }
        map.end()
    }
}

impl Serialize for Decoded<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len() + 1))?;
        for v in self.0 {
            if v.spec.is_integer() {
                map.serialize_entry(v.spec.name, &v.raw)?;
            } else {
                map.serialize_entry(v.spec.name, &v.value)?;
            }
        }
        map.serialize_entry("labels", &Labels(self.0))?;
        map.end()
    }
}

/// The DBC message a frame is (by its id; the width counts: extended 0x0A0 is not
/// `VehicleSpeed`), its index in [`MESSAGES`] and its decoded JSON; `None` for an id the DBC
/// does not define, a frame whose DLC does not match, or a frame sent the other way than the DBC
/// says (`tx`: sent by this service).
pub fn decode(frame: &CanFrame, tx: bool) -> Option<Result<(usize, Vec<u8>), serde_json::Error>> {
    let index = MESSAGES.iter().position(|m| m.id == frame.id)?;
    let m = MESSAGES.get(index)?;
    if (m.transmitter == OWN_NODE) != tx {
        return None;
    }
    let signals = m.decode(frame.payload()).ok()?;
    Some(serde_json::to_vec(&Decoded(&signals)).map(|json| (index, json)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use adas_core::can::dbc::{AebWarning, VehicleSpeed};

    fn decoded(frame: &CanFrame, tx: bool) -> (usize, Value) {
        let (index, json) = decode(frame, tx).unwrap().unwrap();
        (index, serde_json::from_slice(&json).unwrap())
    }

    #[test]
    fn a_warning_reads_by_signal_name_with_nulls_and_labels() {
        let f = AebWarning {
            aeb_stage: 2,
            aeb_target_class: 1,
            aeb_distance: 12.34,
            aeb_ttc: f64::INFINITY,
            aeb_brake_decel: 4.0,
            aeb_brake_request: 1,
            ..Default::default()
        }
        .encode();
        let (index, v) = decoded(&f, true);
        assert_eq!(MESSAGES[index].name, "AEB_Warning");
        assert_eq!(v["AEB_Stage"], json!(2));
        assert_eq!(v["AEB_Distance"], json!(12.34));
        assert_eq!(v["AEB_TTC"], Value::Null);
        assert_eq!(v["AEB_BrakeDecel"], json!(4.0));
        assert_eq!(
            v["labels"],
            json!({"AEB_Stage": "PartialBrake", "AEB_InhibitReason": "None",
                   "AEB_TargetClass": "Pedestrian", "AEB_TTC": "NoneOrAtLeast12.75s",
                   "AEB_BrakeRequest": "Request"})
        );
        // Every signal of the DBC is there, in its order, then the labels.
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = AebWarning::SIGNALS.iter().map(|s| s.name).collect();
        expected.push("labels");
        assert_eq!(keys, expected);
    }

    #[test]
    fn only_dbc_frames_in_their_direction_are_decoded() {
        let speed = VehicleSpeed {
            vs_speed: 50.0,
            vs_speed_valid: 1,
            ..Default::default()
        }
        .encode();
        let (_, v) = decoded(&speed, false);
        assert_eq!(v["VS_Speed"], json!(50.0));
        assert_eq!(v["labels"]["VS_SpeedValid"], json!("Valid"));
        assert!(
            decode(&speed, true).is_none(),
            "the vehicle's message as sent by us"
        );
        let extended = CanFrame {
            id: speed.id | CanFrame::EFF_FLAG,
            ..speed
        };
        assert!(
            decode(&extended, false).is_none(),
            "extended 0x0A0 is another message"
        );
        let short = CanFrame { len: 7, ..speed };
        assert!(decode(&short, false).is_none(), "wrong DLC");
        let mut na = speed;
        na.data[0] = 0xFF;
        na.data[1] = 0xFF;
        let (_, v) = decoded(&na, false);
        assert_eq!(v["VS_Speed"], Value::Null);
        assert_eq!(v["labels"]["VS_Speed"], json!("NotAvailable"));
    }

    #[test]
    fn schemas_list_every_signal_and_label() {
        for m in MESSAGES {
            let schema: Value = serde_json::from_str(&json_schema(m)).unwrap();
            assert_eq!(schema["title"], json!(schema_name(m)));
            for s in m.signals {
                assert!(schema["properties"][s.name].is_object(), "{}", s.name);
            }
            assert_eq!(
                schema["required"].as_array().unwrap().len(),
                m.signals.len()
            );
        }
        let w = serde_json::from_str::<Value>(&json_schema(&AebWarning::SPEC)).unwrap();
        assert_eq!(
            w["properties"]["AEB_TTC"]["type"],
            json!(["number", "null"])
        );
        assert_eq!(w["properties"]["AEB_Stage"]["type"], json!("integer"));
        assert_eq!(
            w["properties"]["labels"]["properties"]["AEB_Stage"]["enum"],
            json!(["None", "FCW", "PartialBrake", "FullBrake"])
        );
        assert_eq!(topic(&AebWarning::SPEC), "/can/tx/AEB_Warning");
        assert_eq!(topic(&VehicleSpeed::SPEC), "/can/rx/VehicleSpeed");
    }
}
