//! `/healthz`: the AEB status the daemon sends on CAN, as an HTTP verdict. Healthy while
//! AEB can act (standby, warning, braking); unhealthy with the reason while it cannot
//! (unavailable with its faults or inhibit reason, off, no frame decided yet, or no frame
//! decided for `[can] stale_after_ms`, when the CAN thread too reports the pipeline stalled).

use super::state::{inhibit_label, mode_label, LastStatus};
use adas_core::can::messages::{fault, Mode};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    /// One line: the mode, and why when not ok.
    pub text: String,
}

/// The fault bits of `AEB_Status` by name (docs/CAN.md).
const FAULTS: [(u8, &str); 7] = [
    (fault::FRAME_LOST, "frame_lost"),
    (fault::DETECTOR, "detector"),
    (fault::CALIBRATION, "calibration"),
    (fault::EGO, "ego"),
    (fault::CAN_BUS, "can_bus"),
    (fault::CAMERA, "camera"),
    (fault::OUTPUT, "output"),
];

/// The verdict at `now` on the last status handed to CAN (`None`: none yet).
pub fn verdict(last: Option<&LastStatus>, now: Instant, stale_after: Duration) -> Health {
    let Some(last) = last else {
        return Health {
            ok: false,
            text: "starting: no frame decided yet".into(),
        };
    };
    let age = now.saturating_duration_since(last.at);
    let mode = last.status.mode;
    if mode != Mode::Off && age > stale_after {
        return Health {
            ok: false,
            text: format!(
                "unavailable: no frame decided for {} ms (pipeline stalled; the CAN status says \
                 unavailable too)",
                age.as_millis()
            ),
        };
    }
    let faults: Vec<&str> = FAULTS
        .iter()
        .filter(|(bit, _)| last.status.faults & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    let mut text = mode_label(mode).to_string();
    if !faults.is_empty() {
        text += &format!("; faults: {}", faults.join(", "));
    }
    if let Some(reason) = last.inhibit {
        text += &format!("; inhibited: {}", inhibit_label(reason));
    }
    Health {
        ok: matches!(mode, Mode::Standby | Mode::Warning | Mode::Braking),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adas_core::aeb::InhibitReason;
    use adas_core::can::messages::Status;

    fn last(mode: Mode, faults: u8, inhibit: Option<InhibitReason>, at: Instant) -> LastStatus {
        LastStatus {
            status: Status {
                mode,
                faults,
                fps: 10.0,
                latency_ms: 40.0,
            },
            inhibit,
            at,
        }
    }

    #[test]
    fn healthy_while_aeb_can_act_and_unhealthy_with_the_reason_otherwise() {
        let t0 = Instant::now();
        let stale = Duration::from_millis(1000);
        let at = |mode, faults, inhibit| verdict(Some(&last(mode, faults, inhibit, t0)), t0, stale);
        assert_eq!(
            verdict(None, t0, stale),
            Health {
                ok: false,
                text: "starting: no frame decided yet".into()
            }
        );
        for mode in [Mode::Standby, Mode::Warning, Mode::Braking] {
            assert!(at(mode, 0, None).ok, "{mode:?}");
        }
        // An output's fault is shown but does not make AEB unavailable.
        assert_eq!(
            at(Mode::Standby, fault::OUTPUT, None),
            Health {
                ok: true,
                text: "standby; faults: output".into()
            }
        );
        assert_eq!(
            at(Mode::Unavailable, fault::EGO, Some(InhibitReason::EgoStale)),
            Health {
                ok: false,
                text: "unavailable; faults: ego; inhibited: ego_stale".into()
            }
        );
        let h = at(Mode::Unavailable, fault::FRAME_LOST | fault::CAMERA, None);
        assert_eq!(h.text, "unavailable; faults: frame_lost, camera");
        assert!(!h.ok);
        assert!(!at(Mode::Off, 0, None).ok);
    }

    #[test]
    fn a_stalled_pipeline_is_unhealthy_but_off_stays_off() {
        let t0 = Instant::now();
        let stale = Duration::from_millis(1000);
        let later = t0 + Duration::from_millis(1500);
        let h = verdict(Some(&last(Mode::Standby, 0, None, t0)), later, stale);
        assert!(!h.ok);
        assert!(
            h.text.contains("no frame decided for 1500 ms"),
            "{}",
            h.text
        );
        let within = t0 + Duration::from_millis(900);
        assert!(verdict(Some(&last(Mode::Standby, 0, None, t0)), within, stale).ok);
        let off = verdict(Some(&last(Mode::Off, 0, None, t0)), later, stale);
        assert_eq!(off.text, "off");
    }
}
