// Package hub serves the class rooms over WebSockets: it multiplexes any number of rooms on one
// socket, fans each message out to every local member exactly once and in seq order, and
// repairs from Postgres whatever the broker did not deliver.
//
// # Concurrency rules
//
//   - Each connection has one reader: a goroutine started by its HTTP handler, which handles
//     the client's frames one after another. When nothing of the client's is left to read, the
//     reader parks (park.go): it hands over to a new goroutine that waits for the socket with a
//     small stack and no read buffer, and takes the client's pongs to the keepalive pings off
//     the socket itself, so that an idle socket costs little more than its library state.
//     Data frames are written only by the connection's writer goroutine, which exists only
//     while the connection's queue has something in it (or a keepalive ping is due): an
//     idle socket holds no writer goroutine and no write buffer of ours. The writer sends
//     everything queued in one system call (cork.go); while the instance is behind, a new
//     writer starts Options.WriteDelay later, so that it finds more to send. Enqueueing never blocks;
//     a queue past Options.MaxQueueBytes closes the socket with CloseSlowConsumer (the client
//     resumes with since_seq and loses nothing).
//   - Parking, corking and the peeks into a socket's read buffer rely on internals of the
//     WebSocket library, all listed in wsinternals.go with the version they were checked
//     against, and each checked by TestWebsocketAssumptions. Options.DisableParking
//     (HUB_PARK=false) turns them off: the reader then waits in the library's read loop, the
//     library pings, and each frame is its own write.
//   - Each room is a lock and a member set. Events from the broker go into the room's inbox
//     without blocking; a worker goroutine, which exists only while the inbox is not empty,
//     delivers them in seq order, holding the room lock only for the non-blocking enqueues.
//     A message frame is encoded once by its publisher, and the same bytes go to every member.
//     A room (room.go) sees nothing of the hub but its delivery: a store reader, the broker's
//     subscriptions, the options, the metrics and the worker count; its members are recipients
//     (a queue that never blocks), so that TestDelivery drives it with a store of its own.
//   - A seq that arrives ahead of its predecessor waits in the room's reorder buffer for
//     GapWait; then the missing messages are read from the store (outside the room lock) and
//     delivered first. Seqs at or below the room's last delivered seq are dropped.
//   - A connection has one timer, for its keepalive and its session's end, and no context of
//     its own: whatever ends it closes the network connection, which ends its reads and writes,
//     and ends the context of the work its reader has under way (conn.work: a batch of
//     subscribes, a publish), which is a child of the hub's, ended by Shutdown.
//   - The hub keeps each user's sockets together (userSockets): revoking a user and a user's
//     leaving a class touch only that user's sockets, and a leave makes only that user's
//     subscribes under way check their access again.
//   - Each socket subscribes the broker to its user's channel before it reads its first frame and
//     unsubscribes when it ends (the broker counts): events for one user (read markers,
//     notifications) reach every socket of the user here, whatever rooms it is in, through
//     HandleUserEvent, which copies the user's sockets under hub.mu and enqueues without it
//     (users.go).
//   - Lock order: hub.mu, then a shard lock, then a room lock, then a connection lock. No lock is
//     held across I/O except the connection lock's own queue operations.
//   - Every goroutine has an owner that stops it: Shutdown closes every socket with 1012 after
//     its queue is flushed and waits for the readers and room workers to end.
package hub
