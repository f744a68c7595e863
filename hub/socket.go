package hub

import "github.com/commongrounds/commongrounds/rooms"

// socket is the hub's record of one client socket: its transport (the WebSocket, transport.go)
// and its session (the protocol, session.go), in one allocation. Each sees the other only
// through an interface: the session writes to its transport, and the transport hands the
// client's frames to the socket, which passes them on to the session.
type socket struct {
	id string // unique among all sockets
	t  wsTransport
	s  session
}

var _ receiver = (*socket)(nil)

func (k *socket) receive(f *rooms.ClientFrame, ferr *rooms.FrameError) { k.s.receive(f, ferr) }

// ended leaves the session's rooms and forgets the socket.
func (k *socket) ended() {
	k.s.end()
	k.t.hub.remove(k)
}
