//! Handlers, one module per part of the URL space; each lists its routes in `routes()`.

pub mod accounts;
pub mod cameras;
pub mod device;
pub mod device_stream;
pub mod events;
pub mod live;
pub mod shares;
pub mod transfers;
