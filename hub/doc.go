// Package hub serves the class rooms over WebSockets: it multiplexes any number of rooms on one
// socket, fans each message out to every local member exactly once and in seq order, and
// repairs from Postgres whatever the broker did not deliver.
//
// # Three parts
//
// Each client socket is a transport and a session (socket.go joins them); the rooms deliver to
// the sockets.
//
//   - The transport (transport.go) is the WebSocket: its reader, which decodes the client's
//     frames and hands them to the session one after another (reader.go), parking while the
//     socket is idle (park.go, park_unix.go); its send queue and writer (writer.go), which
//     corks the connection to send what is queued in one write (cork.go); its buffers
//     (buffers.go); its keepalive and the session's expiry (keepalive.go); its close codes.
//     What it assumes of the WebSocket library's internals is in wsinternals.go. The session
//     sees it through the transport interface: Write, Close, the rooms' enqueue, and the
//     holding back and waiting on the queue that batches and paces its replies.
//   - The session (session.go, subscribe.go) is one client's protocol state: the rooms it
//     joined under its pseudonyms, subscribing (in batches, with resume), unsubscribing,
//     publishing, typing, and leaving every room when the socket ends. session.handle maps
//     each type of client frame to its handler. It sees the rooms' logic through roomService,
//     and tests drive it with a transport and a service of their own.
//   - Delivery (room.go) is the rooms, their member tables, the ordered push with gap repair
//     and dedup, and the ring of recent messages. A room sees nothing of the hub but its
//     delivery (a store reader, the broker's subscriptions, the options, the metrics and the
//     worker count); its members are recipients (a queue that never blocks), so that
//     TestDelivery drives it with a store of its own. The active rooms are in a sharded table
//     (roomtable.go) that counts each room's references.
//
// The Hub (hub.go) holds the sockets, indexed by session and by user, and the rooms; handler.go
// opens sockets.
//
// # Concurrency rules
//
//   - Each socket has one reader: a goroutine started by its HTTP handler, which hands the
//     client's frames to the session one after another; the session's state is the reader's
//     alone and has no lock. When nothing of the client's is left to read, the reader parks
//     (park.go): it hands over to a new goroutine that waits for the socket with a small stack
//     and no read buffer, and takes the client's pongs to the keepalive pings off the socket
//     itself, so that an idle socket costs little more than its library state.
//   - Data frames are written only by the socket's writer goroutine, which exists only while
//     the socket's queue has something in it (or a keepalive ping is due): an idle socket
//     holds no writer goroutine and no write buffer of ours. The writer sends everything
//     queued in one system call (cork.go); while the instance is behind, a new writer starts
//     Options.WriteDelay later, so that it finds more to send. Enqueueing never blocks; a
//     queue past Options.MaxQueueBytes closes the socket with CloseSlowConsumer (the client
//     resumes with since_seq and loses nothing).
//   - The transport's lock (wsTransport.mu) guards its queue, its writer's state, its one
//     timer (the keepalive, and the session's end) and its closing. The library's reads and
//     writes happen outside it, but for the parked reader's reads ahead, which never block.
//   - Parking, corking and the peeks into a socket's read buffer rely on internals of the
//     WebSocket library, all listed in wsinternals.go with the version they were checked
//     against, and each checked by TestWebsocketAssumptions. Options.DisableParking
//     (HUB_PARK=false) turns them off: the reader then waits in the library's read loop, the
//     library pings, and each frame is its own write.
//   - Each room is a lock and a member set. Events from the broker go into the room's inbox
//     without blocking; a worker goroutine, which exists only while the inbox is not empty,
//     delivers them in seq order, holding the room lock only for the non-blocking enqueues.
//     A message frame is encoded once by its publisher, and the same bytes go to every member.
//   - A seq that arrives ahead of its predecessor waits in the room's reorder buffer for
//     GapWait; then the missing messages are read from the store (outside the room lock) and
//     delivered first. Seqs at or below the room's last delivered seq are dropped.
//   - A socket has one timer, for its keepalive and its session's end, and no context of its
//     own: whatever ends it closes the network connection, which ends its reads and writes,
//     and ends the context of the work its session has under way (wsTransport.work: a batch
//     of subscribes, a publish), which is a child of the hub's, ended by Shutdown.
//   - The hub keeps each user's sockets together (userSockets): revoking a user and a user's
//     leaving a class touch only that user's sockets, and a leave makes only that user's
//     subscribes under way check their access again.
//   - Lock order: hub.mu, then a shard lock (roomTable), then a room lock, then a transport
//     lock. No lock is held across I/O except the transport lock's own queue operations.
//   - Every goroutine has an owner that stops it: Shutdown closes every socket with 1012 after
//     its queue is flushed and waits for the readers and room workers to end.
package hub
