// Package live streams the progress of imports to browsers over WebSocket
// (GET /v1/imports/{id}/progress).
//
// The design borrows the good parts of Centrifugo: a hub that fans out
// bus-delivered updates to many connections, bounded per-connection send
// queues that disconnect slow consumers instead of blocking publishers,
// server-side keepalive pings, and resumable subscriptions.
//
// # Architecture
//
// The HTTP layer authenticates the caller, checks that the import belongs to
// the caller's tenant, parses the optional ?since=N query parameter and then
// calls [Hub.Serve]. Progress reaches the hub from the message bus: a notify
// handler calls [Hub.Publish] for every state change of an import. The hub never
// reads pipeline memory, so API and worker processes can be separate. A
// connecting client's initial state comes from the [Snapshot] function (a
// database read) supplied to Serve. Publish must therefore be called only after
// the new state is durable, so that a Snapshot taken later never misses it.
//
// # Wire protocol
//
// Only the server sends messages. Each one is a JSON text message:
//
//	{"type":"snapshot"|"progress"|"completed","seq":N,"import":{...}}
//
// "import" is the import summary exactly as given in [Update.Import]; the hub
// treats it as opaque. "seq" is [Update.Seq], the import's state version. It is
// assigned by the pipeline, increases monotonically with every state change and
// is stable across processes and restarts; the hub never invents seqs. Every
// message carries the complete (cumulative) state, so the newest message is
// all a client needs.
//
// On one connection:
//
//   - The first message is always a "snapshot" with the newest state the
//     server knows (the Snapshot result, or a newer update the hub has already
//     seen from the bus).
//   - "snapshot" and "progress" messages have strictly increasing seqs.
//   - Progress is coalesced: at most one "progress" message per
//     [Config.CoalesceInterval] (only the latest state is sent).
//   - A connection that observes completion (it is open when the completed
//     update is published, or the import is already complete when it connects)
//     receives exactly one "completed" message. Its seq is the completion
//     version, which is greater than the seq of the preceding message, with
//     one exception: if the import was already complete when the snapshot was
//     taken, the snapshot already holds the completed state, and "snapshot" and
//     "completed" carry the same state and the same seq. Clients that ignore
//     messages by seq must therefore never ignore a "completed" message.
//   - After "completed" the server sends a close frame with code 1000 (normal
//     closure) and closes the connection.
//
// # Resuming
//
// A client that loses its connection reconnects with ?since=N, where N is the
// seq of the last message it received. Because state is cumulative, "what the
// client missed" is simply the newest state, so the server always starts with
// a "snapshot" of the newest state (even if its seq is not above N: resending
// state is cheap, idempotent, and gives the client one uniform code path). After
// the snapshot, "progress" messages with a seq of N or less are not sent, since
// the client already has that state. Completion is never suppressed by since:
// if the import is or becomes complete, the resumed connection receives exactly
// one "completed" and is closed, even if N is the completion seq.
//
// # Connection management
//
// Each connection has a bounded send queue ([Config.ClientQueue]). A client
// whose queue overflows is disconnected with close code 1013 (try again later)
// and reason "slow consumer"; it can reconnect with ?since=N and catch up with
// a single snapshot. Publish never blocks on clients. The server pings every
// [Config.PingInterval] and drops clients that do not answer within
// [Config.PongWait]. Client frames larger than [Config.ReadLimit] close the
// connection with code 1009. Cross-origin handshakes are refused with 403
// unless listed in [Config.AllowedOrigins]. When the context passed to
// [Hub.Run] ends, every client is closed with code 1001 (going away).
package live
