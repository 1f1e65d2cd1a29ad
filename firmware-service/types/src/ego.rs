//! Ego vehicle state as the decision core sees it: speed, acceleration, yaw rate and the driver's
//! inputs, each sample stamped with the time it was measured (monotonic ns, same clock as the
//! camera's `t_capture_ns`) and a validity flag from the input supervision (CAN timeout, alive
//! counter, CRC). The decider never trusts a sample blindly: [`EgoState::check`] turns a stale or
//! invalid sample into an [`InhibitReason`].

/// One ego sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EgoState {
    /// When the sample was measured, ns (monotonic, the camera's clock).
    pub t_ns: u64,
    /// Longitudinal speed over ground, m/s (≥ 0; reversing is not an AEB use case).
    pub speed_mps: f64,
    /// Longitudinal acceleration, m/s² (negative when braking); `None` if not available.
    pub accel_mps2: Option<f64>,
    /// Yaw rate, rad/s, positive turning left; `None` if not available (straight corridor).
    pub yaw_rate_rps: Option<f64>,
    /// The driver presses the brake pedal.
    pub brake_pedal: bool,
    /// The driver overrides: steers away (steering-wheel rate above the vehicle's threshold) or
    /// kicks down the accelerator. Reported by the vehicle side as one flag.
    pub steering_away: bool,
    /// The input supervision vouches for this sample (no timeout, counter and CRC good).
    pub valid: bool,
}

impl EgoState {
    /// A valid sample with only a speed (the fixed-speed configuration, simple tests).
    pub fn with_speed(t_ns: u64, speed_mps: f64) -> EgoState {
        EgoState {
            t_ns,
            speed_mps,
            accel_mps2: None,
            yaw_rate_rps: None,
            brake_pedal: false,
            steering_away: false,
            valid: true,
        }
    }

    /// Acceleration, 0 when unknown or not finite.
    pub fn accel_or_zero(&self) -> f64 {
        self.accel_mps2.filter(|a| a.is_finite()).unwrap_or(0.0)
    }

    /// Yaw rate, 0 when unknown or not finite.
    pub fn yaw_rate_or_zero(&self) -> f64 {
        self.yaw_rate_rps.filter(|w| w.is_finite()).unwrap_or(0.0)
    }

    /// Path curvature κ = ω / v (1/m, positive to the left); 0 when unknown or when the vehicle is
    /// too slow for the ratio to mean anything (below `min_speed_mps`).
    pub fn curvature(&self, min_speed_mps: f64) -> f64 {
        let w = self.yaw_rate_or_zero();
        if self.speed_mps.is_finite() && self.speed_mps > min_speed_mps.max(0.1) {
            let k = w / self.speed_mps;
            if k.is_finite() {
                return k;
            }
        }
        0.0
    }

    /// Can the decider use this sample for a frame captured at `t_frame_ns`? A sample newer than
    /// the frame is fine (the frame waited in the detector); one older than `max_age_ns` is stale.
    pub fn check(&self, t_frame_ns: u64, max_age_ns: u64) -> Result<(), InhibitReason> {
        if !self.valid {
            return Err(InhibitReason::EgoInvalid);
        }
        let finite = |o: Option<f64>| o.is_none_or(f64::is_finite);
        if !self.speed_mps.is_finite()
            || self.speed_mps < 0.0
            || !finite(self.accel_mps2)
            || !finite(self.yaw_rate_rps)
        {
            return Err(InhibitReason::EgoOutOfRange);
        }
        if t_frame_ns.saturating_sub(self.t_ns) > max_age_ns {
            return Err(InhibitReason::EgoStale);
        }
        Ok(())
    }
}

/// Why the decider cannot act (reported on CAN, never silent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InhibitReason {
    /// No ego sample yet.
    NoEgo,
    /// The input supervision marked the ego sample invalid.
    EgoInvalid,
    /// The ego sample is older than `ego_timeout_ms` at the frame's capture time.
    EgoStale,
    /// Speed negative or not finite, acceleration or yaw rate not finite.
    EgoOutOfRange,
    /// Frame time went backwards (replay glitch or clock fault): the tracks were reset.
    TimeWentBack,
}

impl InhibitReason {
    /// Code for the CAN status/warning message.
    pub fn code(self) -> u8 {
        match self {
            InhibitReason::NoEgo => 1,
            InhibitReason::EgoInvalid => 2,
            InhibitReason::EgoStale => 3,
            InhibitReason::EgoOutOfRange => 4,
            InhibitReason::TimeWentBack => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InhibitReason::NoEgo => "no ego state",
            InhibitReason::EgoInvalid => "ego state invalid",
            InhibitReason::EgoStale => "ego state stale",
            InhibitReason::EgoOutOfRange => "ego state out of range",
            InhibitReason::TimeWentBack => "time went back",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_invalid_stale_and_out_of_range_samples() {
        let ms = 1_000_000;
        let e = EgoState::with_speed(1000 * ms, 10.0);
        assert_eq!(e.check(1100 * ms, 150 * ms), Ok(()));
        assert_eq!(
            e.check(900 * ms, 150 * ms),
            Ok(()),
            "newer than the frame is fine"
        );
        assert_eq!(e.check(1200 * ms, 150 * ms), Err(InhibitReason::EgoStale));
        let invalid = EgoState { valid: false, ..e };
        assert_eq!(
            invalid.check(1000 * ms, 150 * ms),
            Err(InhibitReason::EgoInvalid)
        );
        for bad in [f64::NAN, -1.0, f64::INFINITY] {
            let b = EgoState {
                speed_mps: bad,
                ..e
            };
            assert_eq!(
                b.check(1000 * ms, 150 * ms),
                Err(InhibitReason::EgoOutOfRange)
            );
        }
        let b = EgoState {
            yaw_rate_rps: Some(f64::NAN),
            ..e
        };
        assert_eq!(
            b.check(1000 * ms, 150 * ms),
            Err(InhibitReason::EgoOutOfRange)
        );
    }

    #[test]
    fn curvature_is_yaw_rate_over_speed() {
        let e = EgoState {
            yaw_rate_rps: Some(0.2),
            ..EgoState::with_speed(0, 10.0)
        };
        assert!((e.curvature(1.0) - 0.02).abs() < 1e-12);
        let slow = EgoState {
            speed_mps: 0.5,
            ..e
        };
        assert_eq!(slow.curvature(1.0), 0.0);
    }
}
