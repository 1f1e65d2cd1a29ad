//! Prometheus's text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per family,
//! then its samples, label values escaped.
//!
//! Written here rather than taken from a crate: the daemon exposes one fixed set of families
//! from one snapshot, and needs only this writer (~100 lines). `prometheus-client` writes
//! OpenMetrics only, `prometheus` brings a global registry and protobuf, and `metrics` with its
//! exporter a global recorder and, for serving, an async runtime.

use super::histogram::Histogram;
use std::fmt::Write as _;

/// The `Content-Type` of what [`Text`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Labels of one sample: `(name, value)` pairs, names from the code, values escaped here.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// The exposition being written.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    /// Starts a family: its help line and type. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing into a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of an integer (counters, state gauges).
    pub fn int(&mut self, name: &str, labels: Labels<'_>, value: u64) {
        self.series(name, labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// One sample of a float.
    pub fn float(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.series(name, labels, None);
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A whole histogram family of one series: its buckets, sum and count.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, Kind::Histogram, help);
        for (bound, count) in h.cumulative() {
            self.series(&format!("{name}_bucket"), &[], Some(&number(bound)));
            let _ = writeln!(self.out, " {count}");
        }
        self.float(&format!("{name}_sum"), &[], h.sum());
        self.int(&format!("{name}_count"), &[], h.count());
    }

    /// `name{a="x",le="0.5"}` without the value.
    fn series(&mut self, name: &str, labels: Labels<'_>, le: Option<&str>) {
        self.out.push_str(name);
        let le = le.map(|v| ("le", v));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_none() {
            return;
        }
        self.out.push('{');
        for (i, (label, value)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{label}=\"{}\"", escape_label(value));
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value as the format quotes it: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus parses it (Go's `ParseFloat` plus `+Inf`, `-Inf`, `NaN`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes_follow_the_format() {
        let mut t = Text::default();
        t.family(
            "adas_x_total",
            Kind::Counter,
            "Things.\nWith a \\ in the help.",
        );
        t.int("adas_x_total", &[("reason", "a \"b\"\\c\nd")], 7);
        t.int("adas_x_total", &[("reason", "e"), ("input", "f")], 0);
        t.family("adas_up", Kind::Gauge, "Up.");
        t.float("adas_up", &[], 0.25);
        t.float("adas_up", &[], f64::NEG_INFINITY);
        assert_eq!(
            t.finish(),
            "# HELP adas_x_total Things.\\nWith a \\\\ in the help.\n\
             # TYPE adas_x_total counter\n\
             adas_x_total{reason=\"a \\\"b\\\"\\\\c\\nd\"} 7\n\
             adas_x_total{reason=\"e\",input=\"f\"} 0\n\
             # HELP adas_up Up.\n\
             # TYPE adas_up gauge\n\
             adas_up 0.25\n\
             adas_up -Inf\n"
        );
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_up_to_inf_then_sum_and_count() {
        let mut h = Histogram::default();
        h.observe(0.005);
        h.observe(0.25);
        h.observe(4.0);
        let mut t = Text::default();
        t.histogram("adas_l_seconds", "Latency.", &h);
        let text = t.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# HELP adas_l_seconds Latency.");
        assert_eq!(lines[1], "# TYPE adas_l_seconds histogram");
        assert_eq!(lines[2], "adas_l_seconds_bucket{le=\"0.001\"} 0");
        assert_eq!(lines[4], "adas_l_seconds_bucket{le=\"0.005\"} 1");
        assert!(lines.contains(&"adas_l_seconds_bucket{le=\"0.15\"} 1"));
        assert!(lines.contains(&"adas_l_seconds_bucket{le=\"0.25\"} 2"));
        assert!(lines.contains(&"adas_l_seconds_bucket{le=\"2.5\"} 2"));
        let n = lines.len();
        assert_eq!(lines[n - 3], "adas_l_seconds_bucket{le=\"+Inf\"} 3");
        assert_eq!(lines[n - 2], "adas_l_seconds_sum 4.255");
        assert_eq!(lines[n - 1], "adas_l_seconds_count 3");
    }
}
