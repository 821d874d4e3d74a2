//! Typed identifiers. An `Id<Camera>` cannot be passed where an `Id<Event>` is
//! expected, so IDs cannot be swapped silently between arguments.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A UUID tagged with the kind of thing it names.
pub struct Id<T> {
    uuid: Uuid,
    kind: PhantomData<fn() -> T>,
}

/// Marker types naming what an [`Id`] identifies.
pub mod kind {
    /// A person's account.
    pub enum User {}
    /// A paired camera.
    pub enum Camera {}
    /// One motion, person or sound event of a camera.
    pub enum Event {}
    /// A logged-in session of a user.
    pub enum Session {}
    /// An owner's pending invitation for a camera to pair.
    pub enum Claim {}
    /// A camera's pending pairing request.
    pub enum Pairing {}
}

pub type UserId = Id<kind::User>;
pub type CameraId = Id<kind::Camera>;
pub type EventId = Id<kind::Event>;
pub type SessionId = Id<kind::Session>;
pub type ClaimId = Id<kind::Claim>;
pub type PairingId = Id<kind::Pairing>;

impl<T> Id<T> {
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self {
            uuid,
            kind: PhantomData,
        }
    }

    /// A time-ordered ID (UUIDv7), so IDs sort by creation time.
    pub fn new_v7() -> Self {
        Self::from_uuid(Uuid::now_v7())
    }

    /// A fully random ID (UUIDv4), for IDs that double as unguessable handles.
    pub fn new_random() -> Self {
        Self::from_uuid(Uuid::new_v4())
    }

    pub const fn uuid(&self) -> Uuid {
        self.uuid
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}
impl<T> Eq for Id<T> {}
impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.uuid.cmp(&other.uuid)
    }
}
impl<T> std::hash::Hash for Id<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.uuid.hash(state);
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.uuid)
    }
}
impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.uuid.fmt(f)
    }
}
impl<T> FromStr for Id<T> {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self::from_uuid)
    }
}
impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.uuid.serialize(s)
    }
}
impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Uuid::deserialize(d).map(Self::from_uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text_and_json() {
        let id = CameraId::new_v7();
        assert_eq!(id.to_string().parse::<CameraId>().ok(), Some(id));
        let json = serde_json::to_string(&id).unwrap_or_default();
        assert_eq!(serde_json::from_str::<CameraId>(&json).ok(), Some(id));
    }

    #[test]
    fn v7_ids_sort_by_creation() {
        let a = EventId::new_v7();
        let b = EventId::new_v7();
        assert!(a < b);
    }
}
