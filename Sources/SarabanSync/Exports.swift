// The feed types (SpaceID, FeedVector, NodeRole, FetchLimit, EnvelopeError, EnvelopePayload)
// live in SarabanFeed, below both the sync protocol and the store; importing SarabanSync
// brings them along.
@_exported import SarabanFeed
