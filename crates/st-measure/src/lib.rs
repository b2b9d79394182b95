//! What stboot measures and the event log that records it (skeleton; see issue 8).
