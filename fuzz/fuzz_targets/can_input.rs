//! Received CAN frames through the DBC decoders, the E2E check and the ego-input supervision.
//! The header is the supervision's parameters (as `[can]` allows them); then 12 bytes per
//! frame: time step (0.1 ms), id, DLC (bit 7: give the frame a valid E2E CRC), 8 data bytes.
#![no_main]

use adas_core::can::dbc::{self, AebStatus, AebWarning, DriverInput, VehicleSpeed, YawRate};
use adas_core::can::e2e;
use adas_core::can::supervision::{EgoInput, EgoInputParams, SupervisionParams, MAX_SPEED_KPH};
use adas_types::CanFrame;
use libfuzzer_sys::fuzz_target;

fn params(h: &mut adas_fuzz::Header) -> SupervisionParams {
    SupervisionParams {
        period_ms: h.u64().max(1),
        timeout_ms: h.u64().max(1),
        max_delta_counter: h.u8() % 14 + 1,
        max_errors: u32::from(h.u8()).max(1),
        recovery_frames: u32::from(h.u8()).max(1),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = adas_fuzz::Header::new(data);
    let params = EgoInputParams {
        speed: params(&mut h),
        driver: params(&mut h),
        yaw_rate: params(&mut h),
    };
    let mut ego = EgoInput::new(params);
    let mut t_ns = 0u64;
    while !h.is_empty() {
        t_ns += u64::from(h.u16()) * 100_000;
        let id = h.u8();
        let id = dbc::ALL_IDS
            .get(usize::from(id))
            .copied()
            .unwrap_or(u32::from(id) << 3);
        let len = h.u8();
        let mut frame = CanFrame {
            id,
            len: len & 0x0F,
            data: h.bytes(),
        };
        if let Some(layout) = VehicleSpeed::E2E.filter(|_| len & 0x80 != 0) {
            let counter = e2e::counter_of(&frame, layout);
            e2e::protect(&mut frame, layout, counter);
        }
        let payload = frame.payload();
        let _ = (
            VehicleSpeed::decode(payload),
            DriverInput::decode(payload),
            YawRate::decode(payload),
        );
        let _ = (AebWarning::decode(payload), AebStatus::decode(payload));
        ego.on_frame(t_ns, &frame);
        let _ = ego.inhibit(t_ns);
        if let Some(state) = ego.ego_state(t_ns).filter(|s| s.valid) {
            assert!(
                (0.0..=MAX_SPEED_KPH / 3.6).contains(&state.speed_mps),
                "{state:?}"
            );
        }
    }
});
