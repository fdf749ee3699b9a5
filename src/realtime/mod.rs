//! Live session state: the `SessionManager` actor, the WebSocket connections it pushes to, and the event bus
//! that carries session changes between nodes. Every actix actor and WebSocket type stays in this module.

pub mod bus;
pub mod events;
pub mod frame_limit;
pub mod live_sets;
pub mod presence;
pub mod session_lists;
pub mod session_manager;
pub mod socket_slots;
pub mod ws_session;
