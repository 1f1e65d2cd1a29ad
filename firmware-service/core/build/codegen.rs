//! DBC → Rust code generation, used by `build.rs` (and unit-tested from `src/can/dbc.rs`).

use can_dbc::{
    AttributeDefinition, AttributeValue, AttributeValueType, ByteOrder, Dbc, MessageId,
    NumericValue, ValueType,
};
use std::fmt::Write as _;

pub const DBC: &str = "../can/adas.dbc";

/// `line: message` for errors, the line found by looking for `needle` in the DBC text.
fn at_line(text: &str, needle: &str, message: &str) -> String {
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1);
    format!("{line}: {message}")
}

fn numeric(v: &NumericValue) -> f64 {
    match *v {
        NumericValue::Uint(u) => u as f64,
        NumericValue::Int(i) => i as f64,
        NumericValue::Double(d) => d,
    }
}

fn camel(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) if p.chars().all(|ch| !ch.is_ascii_lowercase()) => {
                    f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()
                }
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if !out.is_empty() && !out.ends_with('_') && (prev_lower || (prev_upper && next_lower))
            {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Signal shape after checks.
struct Sig {
    name: String,
    field: String,
    start: u64,
    size: u64,
    signed: bool,
    factor: f64,
    offset: f64,
    min: f64,
    max: f64,
    unit: String,
    /// Integer (factor 1, offset 0) signals become integers in Rust, the others f64.
    int_type: Option<&'static str>,
    /// `CM_ SG_`.
    comment: String,
    /// `VAL_` entries, raw → label.
    values: Vec<(i64, String)>,
}

/// Decimal places of a factor or offset as written (`0.05` → 2), so that displays can compute
/// physical values in those units.
fn decimals(v: f64) -> usize {
    let text = format!("{v}");
    text.split_once('.')
        .map_or(0, |(_, frac)| frac.len().min(15))
}

/// An attribute's value as text: an `ENUM` attribute's index (or default string) resolved to its
/// name through the `BA_DEF_`; numbers as written.
fn attribute_text(dbc: &Dbc, name: &str, value: Option<&AttributeValue>) -> String {
    let names = dbc.attribute_definitions.iter().find_map(|d| match d {
        AttributeDefinition::Message(n, AttributeValueType::Enum(v))
        | AttributeDefinition::Signal(n, AttributeValueType::Enum(v))
            if n == name =>
        {
            Some(v)
        }
        _ => None,
    });
    let index = |i: usize| names.and_then(|n| n.get(i)).cloned();
    match value {
        None => String::new(),
        Some(AttributeValue::String(s)) => s.clone(),
        Some(AttributeValue::Uint(u)) => {
            index(usize::try_from(*u).unwrap_or(usize::MAX)).unwrap_or_else(|| u.to_string())
        }
        Some(AttributeValue::Int(i)) => {
            index(usize::try_from(*i).unwrap_or(usize::MAX)).unwrap_or_else(|| i.to_string())
        }
        Some(AttributeValue::Double(d)) => d.to_string(),
    }
}

fn int_type(size: u64, signed: bool) -> &'static str {
    match (size, signed) {
        (0..=8, false) => "u8",
        (9..=16, false) => "u16",
        (17..=32, false) => "u32",
        (_, false) => "u64",
        (0..=8, true) => "i8",
        (9..=16, true) => "i16",
        (17..=32, true) => "i32",
        (_, true) => "i64",
    }
}

pub fn generate(text: &str) -> Result<String, String> {
    let dbc = Dbc::try_from(text).map_err(|e| {
        // pest errors carry " --> line:col"; the others name the offending token.
        let msg = e.to_string();
        if let Some(pos) = msg.find("--> ") {
            let rest = &msg[pos + 4..];
            let line = rest.split(':').next().unwrap_or("0").trim().to_string();
            format!("{line}: malformed DBC: {}", msg.replace('\n', " "))
        } else {
            let token = msg.split('\'').nth(1).unwrap_or("");
            if token.is_empty() {
                format!("0: malformed DBC: {msg}")
            } else {
                at_line(text, token, &format!("malformed DBC: {msg}"))
            }
        }
    })?;

    let mut code = String::new();
    let _ = writeln!(
        code,
        "// @generated by firmware-service/core/build.rs from {DBC}. Do not edit.\n"
    );
    let mut names = std::collections::HashSet::new();
    let mut all = Vec::new();
    for m in &dbc.messages {
        let bo = match m.id {
            MessageId::Standard(id) => format!("BO_ {id} "),
            MessageId::Extended(id) => format!("BO_ {} ", id | 0x8000_0000),
        };
        let id = match m.id {
            MessageId::Standard(id) if id <= 0x7FF => u32::from(id),
            _ => {
                return Err(at_line(
                    text,
                    &bo,
                    &format!(
                        "message {}: only 11-bit (standard) ids are supported",
                        m.name
                    ),
                ))
            }
        };
        if m.size == 0 || m.size > 8 {
            return Err(at_line(
                text,
                &bo,
                &format!(
                    "message {}: DLC {} is not 1..=8 (classic CAN)",
                    m.name, m.size
                ),
            ));
        }
        if !names.insert(m.name.clone()) {
            return Err(at_line(
                text,
                &bo,
                &format!("message {} defined twice", m.name),
            ));
        }
        let mut used = 0u64;
        let mut sigs = Vec::new();
        for s in &m.signals {
            let sg = format!("SG_ {} ", s.name);
            let err =
                |what: &str| at_line(text, &sg, &format!("signal {}.{}: {what}", m.name, s.name));
            if s.byte_order != ByteOrder::LittleEndian {
                return Err(err("only little-endian (@1) signals are supported"));
            }
            if s.size == 0 || s.size > 64 || s.start_bit + s.size > m.size * 8 {
                return Err(err(&format!(
                    "bits {}..{} do not fit in the {}-byte frame",
                    s.start_bit,
                    s.start_bit + s.size,
                    m.size
                )));
            }
            let mask = if s.size == 64 {
                u64::MAX
            } else {
                ((1u64 << s.size) - 1) << s.start_bit
            };
            if used & mask != 0 {
                return Err(err("overlaps another signal"));
            }
            used |= mask;
            if !(s.factor.is_finite() && s.factor != 0.0 && s.offset.is_finite()) {
                return Err(err("factor must be finite and non-zero"));
            }
            let signed = s.value_type == ValueType::Signed;
            let (min, max) = (numeric(&s.min), numeric(&s.max));
            if min > max {
                return Err(err("minimum above maximum"));
            }
            let is_int = s.factor == 1.0 && s.offset == 0.0;
            let values: Vec<(i64, String)> = dbc
                .value_descriptions_for_signal(m.id, &s.name)
                .unwrap_or(&[])
                .iter()
                .map(|v| (v.id, v.description.clone()))
                .collect();
            let raw_range = if signed {
                -(1i128 << (s.size - 1))..=(1i128 << (s.size - 1)) - 1
            } else {
                0..=(1i128 << s.size) - 1
            };
            if let Some((raw, _)) = values
                .iter()
                .find(|(v, _)| !raw_range.contains(&i128::from(*v)))
            {
                return Err(err(&format!(
                    "value table entry {raw} does not fit in {} {} bits",
                    s.size,
                    if signed { "signed" } else { "unsigned" }
                )));
            }
            sigs.push(Sig {
                name: s.name.clone(),
                field: snake(&s.name),
                start: s.start_bit,
                size: s.size,
                signed,
                factor: s.factor,
                offset: s.offset,
                min,
                max,
                unit: s.unit.clone(),
                int_type: is_int.then(|| int_type(s.size, signed)),
                comment: dbc.signal_comment(m.id, &s.name).unwrap_or("").to_string(),
                values,
            });
        }
        let cycle = match dbc.resolved_message_attribute(m.id, "GenMsgCycleTime") {
            Some(can_dbc::AttributeValue::Uint(v)) => *v,
            Some(can_dbc::AttributeValue::Int(v)) => u64::try_from(*v).unwrap_or(0),
            Some(can_dbc::AttributeValue::Double(v)) => *v as u64,
            _ => 0,
        };
        let send_type = attribute_text(
            &dbc,
            "GenMsgSendType",
            dbc.resolved_message_attribute(m.id, "GenMsgSendType"),
        );
        let counter = sigs.iter().find(|s| s.name.ends_with("_Counter"));
        let crc = sigs.iter().find(|s| s.name.ends_with("_CRC"));
        let e2e = match (counter, crc) {
            (Some(c), Some(r)) => {
                if c.size != 4 || r.size != 8 || r.start % 8 != 0 {
                    return Err(at_line(
                        text,
                        &bo,
                        &format!("message {}: E2E needs a 4-bit *_Counter and a byte-aligned 8-bit *_CRC", m.name),
                    ));
                }
                Some((c.start, r.start / 8))
            }
            (None, None) => None,
            _ => {
                return Err(at_line(
                    text,
                    &bo,
                    &format!("message {}: *_Counter and *_CRC come together", m.name),
                ))
            }
        };
        all.push((
            m.name.clone(),
            id,
            m.size,
            cycle,
            send_type,
            e2e,
            sigs,
            m.transmitter.clone(),
        ));
    }

    for (name, id, dlc, cycle, send_type, e2e, sigs, tx) in &all {
        let ty = camel(name);
        let comment = dbc
            .message_comment(MessageId::Standard(*id as u16))
            .unwrap_or("");
        let _ = writeln!(
            code,
            "/// `{name}` (0x{id:03X}, {dlc} bytes, sent by {}). {comment}",
            tx.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            code,
            "#[derive(Debug, Clone, Copy, PartialEq, Default)]\npub struct {ty} {{"
        );
        for s in sigs {
            let rt = s.int_type.unwrap_or("f64");
            let unit = if s.unit.is_empty() {
                String::new()
            } else {
                format!(" [{}]", s.unit)
            };
            let _ = writeln!(
                code,
                "    /// `{}`: bits {}..{}, {}, ×{} +{}, {}..={}{unit}.",
                s.name,
                s.start,
                s.start + s.size,
                if s.signed { "signed" } else { "unsigned" },
                s.factor,
                s.offset,
                s.min,
                s.max
            );
            let _ = writeln!(code, "    pub {}: {rt},", s.field);
        }
        let _ = writeln!(code, "}}\n");
        let _ = writeln!(code, "impl {ty} {{");
        let _ = writeln!(code, "    pub const NAME: &'static str = {name:?};");
        let _ = writeln!(code, "    pub const ID: u32 = 0x{id:03X};");
        let _ = writeln!(code, "    pub const DLC: u8 = {dlc};");
        let _ = writeln!(
            code,
            "    /// `GenMsgCycleTime` (0: event-driven / not set)."
        );
        let _ = writeln!(code, "    pub const CYCLE_TIME_MS: u64 = {cycle};");
        let _ = writeln!(
            code,
            "    /// `GenMsgSendType` (Vector interaction layer: `Cyclic`, `CyclicIfActiveAndSpontaneous`, …)."
        );
        let _ = writeln!(
            code,
            "    pub const SEND_TYPE: &'static str = {send_type:?};"
        );
        let _ = writeln!(
            code,
            "    /// The signals as the DBC declares them (for [`MessageSpec::decode`]).\n    pub const SIGNALS: &'static [SignalSpec] = &["
        );
        for s in sigs {
            let values: Vec<String> = s
                .values
                .iter()
                .map(|(raw, label)| format!("({raw}, {label:?})"))
                .collect();
            let _ = writeln!(
                code,
                "        SignalSpec {{ name: {:?}, start: {}, size: {}, signed: {}, factor: {:?}, offset: {:?}, decimals: {}, min: {:?}, max: {:?}, unit: {:?}, comment: {:?}, values: &[{}] }},",
                s.name,
                s.start,
                s.size,
                s.signed,
                s.factor,
                s.offset,
                decimals(s.factor).max(decimals(s.offset)),
                s.min,
                s.max,
                s.unit,
                s.comment,
                values.join(", ")
            );
        }
        let _ = writeln!(code, "    ];");
        let _ = writeln!(
            code,
            "    pub const SPEC: MessageSpec = MessageSpec {{ name: Self::NAME, id: Self::ID, dlc: Self::DLC, transmitter: {:?}, cycle_time_ms: Self::CYCLE_TIME_MS, send_type: Self::SEND_TYPE, comment: {comment:?}, signals: Self::SIGNALS }};",
            tx.as_deref().unwrap_or("")
        );
        match e2e {
            Some((cstart, crc_byte)) => {
                let _ = writeln!(
                    code,
                    "    pub const E2E: Option<E2eLayout> = Some(E2eLayout {{ counter_start_bit: {cstart}, crc_byte: {crc_byte} }});"
                );
            }
            None => {
                let _ = writeln!(code, "    pub const E2E: Option<E2eLayout> = None;");
            }
        }
        // encode
        let _ = writeln!(code, "\n    /// Packs the signals (physical values are rounded, NaN and values outside the DBC range\n    /// saturate to its bounds, NaN to the maximum). E2E fields are packed as given.");
        let _ = writeln!(
            code,
            "    pub fn encode(&self) -> CanFrame {{\n        let mut bits: u64 = 0;"
        );
        for s in sigs {
            let mask = if s.size == 64 {
                u64::MAX
            } else {
                (1u64 << s.size) - 1
            };
            let (raw_lo, raw_hi): (f64, f64) = if s.signed {
                (
                    -((1u64 << (s.size - 1)) as f64),
                    ((1u64 << (s.size - 1)) - 1) as f64,
                )
            } else {
                (0.0, mask as f64)
            };
            let (lo, hi) = if s.min == 0.0 && s.max == 0.0 {
                (raw_lo, raw_hi)
            } else {
                (
                    ((s.min - s.offset) / s.factor).round().max(raw_lo),
                    ((s.max - s.offset) / s.factor).round().min(raw_hi),
                )
            };
            let phys = if s.int_type.is_some() {
                format!("self.{} as f64", s.field)
            } else {
                format!("self.{}", s.field)
            };
            let _ = writeln!(
                code,
                "        let raw = raw_of({phys}, {:?}, {:?}, {lo:?}, {hi:?});\n        bits |= ((raw as u64) & 0x{mask:X}) << {};",
                s.factor, s.offset, s.start
            );
        }
        let _ = writeln!(
            code,
            "        let mut data = [0u8; 8];\n        data.copy_from_slice(&bits.to_le_bytes());\n        CanFrame {{ id: Self::ID, len: Self::DLC, data }}\n    }}\n"
        );
        // decode
        let _ = writeln!(code, "    /// Unpacks a frame of this message; a wrong DLC is an error (no range checks here).");
        let _ = writeln!(
            code,
            "    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {{"
        );
        let _ = writeln!(
            code,
            "        if payload.len() != usize::from(Self::DLC) {{\n            return Err(DecodeError::Dlc {{ message: Self::NAME, expected: Self::DLC, got: payload.len() }});\n        }}\n        let mut b = [0u8; 8];\n        b[..payload.len()].copy_from_slice(payload);\n        let bits = u64::from_le_bytes(b);"
        );
        let _ = writeln!(code, "        Ok(Self {{");
        for s in sigs {
            let raw = format!("raw_bits(bits, {}, {}, {})", s.start, s.size, s.signed);
            match s.int_type {
                Some(t) => {
                    let _ = writeln!(code, "            {}: {raw} as {t},", s.field);
                }
                None => {
                    let _ = writeln!(
                        code,
                        "            {}: ({raw} as f64) * {:?} + {:?},",
                        s.field, s.factor, s.offset
                    );
                }
            }
        }
        let _ = writeln!(code, "        }})\n    }}\n}}\n");
    }
    let ids: Vec<String> = all
        .iter()
        .map(|(_, id, ..)| format!("0x{id:03X}"))
        .collect();
    let _ = writeln!(
        code,
        "/// Every message id in the DBC.\npub const ALL_IDS: &[u32] = &[{}];",
        ids.join(", ")
    );
    let specs: Vec<String> = all
        .iter()
        .map(|(name, ..)| format!("{}::SPEC", camel(name)))
        .collect();
    let _ = writeln!(
        code,
        "/// Every message of the DBC, in its order.\npub const MESSAGES: &[MessageSpec] = &[{}];",
        specs.join(", ")
    );
    Ok(code)
}
