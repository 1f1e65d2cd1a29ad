//! The CAN codec: messages generated from `firmware-service/can/adas.dbc` ([`dbc`]), their E2E
//! protection ([`e2e`]), decisions and status as messages ([`messages`]), and the supervision of
//! the vehicle's inputs ([`supervision`]). The transports live in the shell.

pub mod dbc;
pub mod e2e;
pub mod messages;
pub mod supervision;
