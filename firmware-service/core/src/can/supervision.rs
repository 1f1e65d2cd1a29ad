//! Supervision of the CAN inputs the decider relies on (ego speed, driver inputs, yaw rate):
//! per message a timeout, E2E counter continuity and CRC ([`super::e2e`]), DLC and range checks.
//! Pure: time comes from the frames' receive timestamps and from the caller.
//!
//! Defaults (all configurable in `[can]`), for messages sent every 20 ms:
//! - **timeout 100 ms** (5 cycles). A camera AEB runs at 10–30 frames/s and reacts within
//!   ~0.1–0.3 s; at 36 m/s (130 km/h) an ego speed 100 ms old is 3.6 m of travel, and with 10 m/s²
//!   of braking the speed can have changed by 1 m/s — already a 10 % TTC error at 10 m/s. A
//!   "max(10 periods, 1 s)" rule would let the decider act on a speed up to 1 s old: 36 m blind.
//!   Five cycles still ride out two or three frames lost to bus load without flapping.
//! - **counter**: jumps of up to `max_delta_counter` (2) are accepted (one frame lost); after
//!   `max_errors` (3) *consecutive* E2E/DLC/range errors the signal is invalid until
//!   `recovery_frames` (2) consecutive good frames arrive. A single bit flip thus costs one sample,
//!   not the function; a babbling or frozen sender is caught within 3 frames (60 ms).
//! - **ranges**: speed 0..=320 km/h with its valid bit set (raw 0xFFFF = not available), yaw rate
//!   within ±3 rad/s with its valid bit set.

use super::dbc::{DriverInput, VehicleSpeed, YawRate};
use super::e2e::{Checker, E2eStatus};
use adas_types::CanFrame;
use adas_types::{EgoState, InhibitReason};

/// Supervision parameters for one input message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupervisionParams {
    /// Expected cycle, ms (for logs and the timeout default).
    pub period_ms: u64,
    /// No valid frame for this long → timeout.
    pub timeout_ms: u64,
    /// Largest accepted counter delta (E2E_P01 MaxDeltaCounter).
    pub max_delta_counter: u8,
    /// Consecutive bad frames (CRC, counter, DLC, range) before the signal is invalid.
    pub max_errors: u32,
    /// Consecutive good frames after which an invalid signal is valid again.
    pub recovery_frames: u32,
}

impl SupervisionParams {
    pub fn for_period(period_ms: u64) -> SupervisionParams {
        SupervisionParams {
            period_ms,
            // Saturating: a period so long that five of them overflow means "never times out".
            timeout_ms: period_ms.saturating_mul(5),
            max_delta_counter: 2,
            max_errors: 3,
            recovery_frames: 2,
        }
    }
}

/// Error counters of one input, for logs and the status message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputCounters {
    pub frames: u64,
    pub accepted: u64,
    pub crc_errors: u64,
    pub sequence_errors: u64,
    pub repeated: u64,
    pub lost: u64,
    pub dlc_errors: u64,
    pub range_errors: u64,
    pub timeouts: u64,
}

/// The verdict on one input at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputState {
    /// No valid frame yet.
    NoData,
    Valid,
    /// Last valid frame older than the timeout.
    Timeout,
    /// Too many consecutive E2E/DLC/range errors.
    Invalid,
}

/// Supervises one input message.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub params: SupervisionParams,
    checker: Checker,
    last_ok_ns: Option<u64>,
    consecutive_errors: u32,
    good_streak: u32,
    invalid: bool,
    timed_out: bool,
    pub counters: InputCounters,
}

impl Supervisor {
    pub fn new(params: SupervisionParams, layout: super::dbc::E2eLayout) -> Supervisor {
        Supervisor {
            params,
            checker: Checker::new(layout, params.max_delta_counter),
            last_ok_ns: None,
            consecutive_errors: 0,
            good_streak: 0,
            invalid: false,
            timed_out: false,
            counters: InputCounters::default(),
        }
    }

    fn error(&mut self) {
        self.consecutive_errors += 1;
        self.good_streak = 0;
        if self.consecutive_errors >= self.params.max_errors {
            self.invalid = true;
        }
    }

    /// Checks one received frame (DLC already checked by the caller: pass `dlc_ok`).
    /// `range_ok` is the caller's range check of the decoded content. Returns whether the content
    /// may be used (new, intact, in range, and the signal is not invalid).
    pub fn on_frame(&mut self, t_ns: u64, frame: &CanFrame, dlc_ok: bool, range_ok: bool) -> bool {
        self.counters.frames += 1;
        if !dlc_ok {
            self.counters.dlc_errors += 1;
            self.error();
            return false;
        }
        // Back from a timeout: the counter restarts from whatever the sender has now.
        if self.timed_out || self.last_ok_ns.is_some_and(|t| self.expired(t, t_ns)) {
            self.checker.resync();
            self.timed_out = false;
        }
        match self.checker.check(frame) {
            E2eStatus::WrongCrc => {
                self.counters.crc_errors += 1;
                self.error();
                return false;
            }
            E2eStatus::WrongSequence => {
                self.counters.sequence_errors += 1;
                self.error();
                return false;
            }
            E2eStatus::Repeated => {
                self.counters.repeated += 1;
                return false;
            }
            E2eStatus::OkSomeLost(n) => self.counters.lost += u64::from(n),
            E2eStatus::Ok => {}
        }
        if !range_ok {
            self.counters.range_errors += 1;
            self.error();
            return false;
        }
        self.consecutive_errors = 0;
        self.good_streak += 1;
        if self.invalid && self.good_streak >= self.params.recovery_frames {
            self.invalid = false;
        }
        if self.invalid {
            return false;
        }
        self.counters.accepted += 1;
        self.last_ok_ns = Some(t_ns);
        true
    }

    fn expired(&self, last_ns: u64, now_ns: u64) -> bool {
        // Saturating: a frame from the future (clock went back) is not expired, and a timeout
        // beyond u64 nanoseconds (585 years) is never reached.
        now_ns.saturating_sub(last_ns) > self.params.timeout_ms.saturating_mul(1_000_000)
    }

    /// The state at `now_ns` (counts a timeout once per occurrence).
    pub fn state(&mut self, now_ns: u64) -> InputState {
        if self.invalid {
            return InputState::Invalid;
        }
        match self.last_ok_ns {
            None => InputState::NoData,
            Some(t) if self.expired(t, now_ns) => {
                if !self.timed_out {
                    self.timed_out = true;
                    self.counters.timeouts += 1;
                }
                InputState::Timeout
            }
            Some(_) => InputState::Valid,
        }
    }

    pub fn last_ok_ns(&self) -> Option<u64> {
        self.last_ok_ns
    }
}

/// Supervision parameters of the three inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EgoInputParams {
    pub speed: SupervisionParams,
    pub driver: SupervisionParams,
    pub yaw_rate: SupervisionParams,
}

impl Default for EgoInputParams {
    fn default() -> Self {
        EgoInputParams {
            speed: SupervisionParams::for_period(VehicleSpeed::CYCLE_TIME_MS),
            driver: SupervisionParams::for_period(DriverInput::CYCLE_TIME_MS),
            yaw_rate: SupervisionParams::for_period(YawRate::CYCLE_TIME_MS),
        }
    }
}

/// Builds the decider's [`EgoState`] from the supervised CAN inputs.
#[derive(Debug, Clone)]
pub struct EgoInput {
    pub speed: Supervisor,
    pub driver: Supervisor,
    pub yaw_rate: Supervisor,
    last_speed: Option<VehicleSpeed>,
    last_driver: Option<DriverInput>,
    last_yaw: Option<YawRate>,
    /// Frames that are not an input (ignored): other ids, and every extended-id frame.
    pub other_frames: u64,
}

/// Speed range the supervision accepts, km/h.
pub const MAX_SPEED_KPH: f64 = 320.0;
/// Yaw-rate range the supervision accepts, rad/s.
pub const MAX_YAW_RATE_RPS: f64 = 3.0;

fn layout(l: Option<super::dbc::E2eLayout>) -> super::dbc::E2eLayout {
    l.unwrap_or(super::dbc::E2eLayout {
        counter_start_bit: 48,
        crc_byte: 7,
    })
}

impl EgoInput {
    pub fn new(params: EgoInputParams) -> EgoInput {
        EgoInput {
            speed: Supervisor::new(params.speed, layout(VehicleSpeed::E2E)),
            driver: Supervisor::new(params.driver, layout(DriverInput::E2E)),
            yaw_rate: Supervisor::new(params.yaw_rate, layout(YawRate::E2E)),
            last_speed: None,
            last_driver: None,
            last_yaw: None,
            other_frames: 0,
        }
    }

    /// Feeds one received frame (any id; the inputs are picked out).
    pub fn on_frame(&mut self, t_ns: u64, frame: &CanFrame) {
        // The inputs are standard-id messages (the DBC has no other), and `frame.id` carries the
        // width (`CanFrame::EFF_FLAG`): an extended frame whose 29-bit number equals an input's
        // id falls through to `other_frames`, never taken for ego speed.
        match frame.id {
            VehicleSpeed::ID => {
                let decoded = VehicleSpeed::decode(frame.payload()).ok();
                let range_ok = decoded.is_some_and(|s| {
                    s.vs_speed_valid == 1
                        && (0.0..=MAX_SPEED_KPH).contains(&s.vs_speed)
                        && s.vs_long_accel.is_finite()
                });
                if self
                    .speed
                    .on_frame(t_ns, frame, decoded.is_some(), range_ok)
                {
                    self.last_speed = decoded;
                }
            }
            DriverInput::ID => {
                let decoded = DriverInput::decode(frame.payload()).ok();
                let range_ok = decoded.is_some_and(|d| d.di_accel_pedal <= 100.0);
                if self
                    .driver
                    .on_frame(t_ns, frame, decoded.is_some(), range_ok)
                {
                    self.last_driver = decoded;
                }
            }
            YawRate::ID => {
                let decoded = YawRate::decode(frame.payload()).ok();
                let range_ok = decoded.is_some_and(|y| {
                    y.yr_yaw_rate_valid == 1 && y.yr_yaw_rate.abs() <= MAX_YAW_RATE_RPS
                });
                if self
                    .yaw_rate
                    .on_frame(t_ns, frame, decoded.is_some(), range_ok)
                {
                    self.last_yaw = decoded;
                }
            }
            _ => self.other_frames += 1,
        }
    }

    /// Why the ego input cannot be used at `now_ns`, if it cannot.
    pub fn inhibit(&mut self, now_ns: u64) -> Option<InhibitReason> {
        match self.speed.state(now_ns) {
            InputState::Valid => None,
            InputState::NoData => Some(InhibitReason::NoEgo),
            InputState::Timeout => Some(InhibitReason::EgoStale),
            InputState::Invalid => Some(InhibitReason::EgoInvalid),
        }
    }

    /// The ego sample at `now_ns`: `None` before the first valid speed. Speed is mandatory; the
    /// driver input and yaw rate are used while they are valid (a missing driver input means no
    /// override is known, a missing yaw rate a straight corridor). `valid` is false unless the
    /// speed is valid now; `t_ns` is when the speed was received.
    pub fn ego_state(&mut self, now_ns: u64) -> Option<EgoState> {
        let speed = self.last_speed?;
        let t_ns = self.speed.last_ok_ns()?;
        let speed_state = self.speed.state(now_ns);
        let driver = match self.driver.state(now_ns) {
            InputState::Valid => self.last_driver,
            _ => None,
        };
        let yaw = match self.yaw_rate.state(now_ns) {
            InputState::Valid => self.last_yaw,
            _ => None,
        };
        Some(EgoState {
            t_ns,
            speed_mps: speed.vs_speed / 3.6,
            accel_mps2: Some(speed.vs_long_accel),
            yaw_rate_rps: yaw.map(|y| y.yr_yaw_rate),
            brake_pedal: driver.is_some_and(|d| d.di_brake_pedal == 1),
            steering_away: driver.is_some_and(|d| d.di_driver_override == 1),
            // A timed-out sample stays "valid" content-wise; its age makes it stale.
            valid: matches!(speed_state, InputState::Valid | InputState::Timeout),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::can::e2e::Protector;

    const MS: u64 = 1_000_000;

    fn speed_frame(p: &mut Protector, kph: f64) -> CanFrame {
        let mut f = VehicleSpeed {
            vs_speed: kph,
            vs_speed_valid: 1,
            ..Default::default()
        }
        .encode();
        p.protect(&mut f, VehicleSpeed::E2E);
        f
    }

    #[test]
    fn valid_stream_gives_an_ego_state_and_timeout_inhibits() {
        let mut input = EgoInput::new(EgoInputParams::default());
        assert_eq!(input.inhibit(0), Some(InhibitReason::NoEgo));
        let mut p = Protector::default();
        for i in 0..10 {
            input.on_frame(i * 20 * MS, &speed_frame(&mut p, 36.0));
        }
        let e = input.ego_state(190 * MS).unwrap();
        assert!((e.speed_mps - 10.0).abs() < 1e-9);
        assert_eq!(e.t_ns, 180 * MS);
        assert_eq!(input.inhibit(190 * MS), None);
        // 100 ms timeout: at 281 ms the last sample (180 ms) is stale.
        assert_eq!(input.inhibit(280 * MS), None);
        assert_eq!(input.inhibit(281 * MS), Some(InhibitReason::EgoStale));
        assert_eq!(input.speed.counters.timeouts, 1);
        // The stream resumes with any counter: resynchronised, valid again.
        let mut p2 = Protector::default();
        input.on_frame(500 * MS, &speed_frame(&mut p2, 36.0));
        input.on_frame(500 * MS, &speed_frame(&mut p2, 36.0));
        assert_eq!(input.inhibit(510 * MS), None);
    }

    #[test]
    fn a_few_bad_frames_are_tolerated_then_invalid_then_recovers() {
        let mut input = EgoInput::new(EgoInputParams::default());
        let mut p = Protector::default();
        let mut t = 0;
        for _ in 0..5 {
            t += 20 * MS;
            input.on_frame(t, &speed_frame(&mut p, 50.0));
        }
        // Two corrupted frames: tolerated.
        for _ in 0..2 {
            t += 20 * MS;
            let mut f = speed_frame(&mut p, 50.0);
            f.data[0] ^= 0x10;
            input.on_frame(t, &f);
        }
        assert_eq!(input.inhibit(t), None);
        assert_eq!(input.speed.counters.crc_errors, 2);
        // A third consecutive error (counter jump) makes it invalid.
        t += 20 * MS;
        for _ in 0..6 {
            let _ = speed_frame(&mut p, 50.0);
        }
        input.on_frame(t, &speed_frame(&mut p, 50.0));
        assert_eq!(input.speed.counters.sequence_errors, 1);
        assert_eq!(input.inhibit(t), Some(InhibitReason::EgoInvalid));
        // Wrong DLC counts, never panics.
        let short = CanFrame {
            id: VehicleSpeed::ID,
            len: 3,
            data: [0; 8],
        };
        input.on_frame(t, &short);
        assert_eq!(input.speed.counters.dlc_errors, 1);
        // Two good frames in a row: valid again.
        for _ in 0..2 {
            t += 20 * MS;
            input.on_frame(t, &speed_frame(&mut p, 50.0));
        }
        assert_eq!(input.inhibit(t), None);
    }

    #[test]
    fn an_extended_frame_is_never_ego_speed() {
        let mut input = EgoInput::new(EgoInputParams::default());
        let mut p = Protector::default();
        for i in 0..5 {
            // VehicleSpeed's content, E2E and all, but under the extended id 0x0A0.
            let mut f = speed_frame(&mut p, 36.0);
            f.id |= CanFrame::EFF_FLAG;
            input.on_frame(i * 20 * MS, &f);
        }
        assert_eq!(input.other_frames, 5);
        assert_eq!(input.speed.counters.frames, 0);
        assert!(input.ego_state(100 * MS).is_none());
        assert_eq!(input.inhibit(100 * MS), Some(InhibitReason::NoEgo));
    }

    #[test]
    fn a_timeout_beyond_u64_nanoseconds_never_expires() {
        // Found by fuzz/fuzz_targets/can_input.rs: `timeout_ms * 1_000_000` overflowed.
        let params = SupervisionParams {
            timeout_ms: u64::MAX / 1000,
            ..SupervisionParams::for_period(20)
        };
        let mut input = EgoInput::new(EgoInputParams {
            speed: params,
            ..EgoInputParams::default()
        });
        let mut p = Protector::default();
        input.on_frame(0, &speed_frame(&mut p, 36.0));
        assert_eq!(input.inhibit(u64::MAX), None);
    }

    #[test]
    fn out_of_range_speed_is_rejected() {
        let mut input = EgoInput::new(EgoInputParams::default());
        let mut p = Protector::default();
        let mut f = VehicleSpeed {
            vs_speed_valid: 1,
            ..Default::default()
        }
        .encode();
        // Raw 0xFFFF: "not available" (655.35 km/h, beyond the DBC range).
        f.data[0] = 0xFF;
        f.data[1] = 0xFF;
        p.protect(&mut f, VehicleSpeed::E2E);
        input.on_frame(0, &f);
        assert_eq!(input.speed.counters.range_errors, 1);
        assert!(input.ego_state(0).is_none());
    }
}
