// Command cgchat is a small terminal client of a Common Grounds room, and an example of the
// protocol (docs/protocol.md): it subscribes with since_seq, prints messages and the changes to
// them (edits, deletions, hides, restores, erasures), publishes each line typed with a
// client_msg_id, and on any disconnect reconnects with backoff and resumes from the last event
// position seen without losing or repeating an event.
//
//	cgchat -url ws://127.0.0.1:8080/ws -token <session token> -room <class id>
package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/coder/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "cgchat: %v\n", err)
		os.Exit(1)
	}
}

type message struct {
	Seq      int64   `json:"seq"`
	AnonID   *string `json:"anon_id"`
	Content  *string `json:"content"`
	Hidden   bool    `json:"hidden"`
	HiddenBy *string `json:"hidden_by"`
	Deleted  bool    `json:"deleted"`
	EditedAt *string `json:"edited_at"`
}

// String shows the message as a line: its seq, its pseudonym and its content, or what became of
// it.
func (m *message) String() string {
	who, text := "(erased)", ""
	if m.AnonID != nil {
		who = *m.AnonID
	}
	switch {
	case m.Deleted:
		text = "(deleted)"
	case m.Hidden && m.HiddenBy != nil && *m.HiddenBy == "moderator":
		text = "(hidden by a moderator)"
	case m.Hidden:
		text = "(hidden after reports)"
	case m.Content != nil:
		text = *m.Content
		if m.EditedAt != nil {
			text += " (edited)"
		}
	}
	return fmt.Sprintf("[%d] %s: %s", m.Seq, who, text)
}

// changes says, by change frame type, what happened to a message.
var changes = map[string]string{
	"message_edited":   "edited",
	"message_deleted":  "deleted by its author",
	"message_hidden":   "hidden by moderation",
	"message_restored": "restored",
	"message_erased":   "erased",
}

type frame struct {
	Type    string `json:"type"`
	Seq     int64  `json:"seq"` // a change's position`
	Code    string `json:"code"`
	AnonID  string `json:"anon_id"`
	LastSeq int64  `json:"last_seq"`
	Online  *int   `json:"online"`
	// OnlineFewerThan stands for the count when it is below the anonymity threshold.
	OnlineFewerThan int             `json:"online_fewer_than"`
	SmallRoom       bool            `json:"small_room"`
	AnonymityK      int             `json:"anonymity_k"`
	Message         json.RawMessage `json:"message"`
}

// online says how many are online, as the frame tells it.
func (f *frame) online() string {
	if f.Online == nil {
		return fmt.Sprintf("fewer than %d", f.OnlineFewerThan)
	}
	return fmt.Sprint(*f.Online)
}

func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("cgchat", flag.ContinueOnError)
	url := fs.String("url", "ws://127.0.0.1:8080/ws", "the server's WebSocket URL")
	token := fs.String("token", os.Getenv("CG_TOKEN"), "a session token (or CG_TOKEN)")
	room := fs.String("room", "", "the class id of the room")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" || *room == "" {
		return errors.New("-token and -room are required")
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var lastSeq *int64 // the highest event position seen: the resume point
	for attempt := 0; ; attempt++ {
		err := session(ctx, *url, *token, *room, &lastSeq, lines, out)
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return ctx.Err()
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4001 {
			return errors.New("the session ended: sign in again")
		}
		// Exponential backoff with full jitter, at most 10 s.
		wait := rand.N(min(10*time.Second, 250*time.Millisecond<<min(attempt, 6))) + 100*time.Millisecond
		fmt.Fprintf(out, "* disconnected (%v); reconnecting in %v\n", err, wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// session runs one connection until it ends.
func session(ctx context.Context, url, token, room string, lastSeq **int64, lines <-chan string, out io.Writer) error {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		return err
	}
	defer ws.CloseNow()
	send := func(v any) error {
		data, _ := json.Marshal(v)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return ws.Write(wctx, websocket.MessageText, data)
	}
	sub := map[string]any{"type": "subscribe", "ref": "sub", "room": room}
	if *lastSeq != nil {
		sub["since_seq"] = **lastSeq
	}
	if err := send(sub); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				errc <- err
				return
			}
			var f frame
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			switch f.Type {
			case "subscribed":
				fmt.Fprintf(out, "* joined as %s; %s online; last seq %d\n", f.AnonID, f.online(), f.LastSeq)
				if f.SmallRoom {
					fmt.Fprintf(out, "* fewer than %d people here: others may guess who you are\n", f.AnonymityK)
				}
				if *lastSeq == nil {
					s := f.LastSeq
					*lastSeq = &s
				}
			case "message":
				var m message
				if json.Unmarshal(f.Message, &m) != nil || m.Seq <= **lastSeq {
					continue
				}
				**lastSeq = m.Seq
				fmt.Fprintln(out, m.String())
			case "message_edited", "message_deleted", "message_hidden", "message_restored", "message_erased":
				var m message
				if json.Unmarshal(f.Message, &m) != nil || f.Seq <= **lastSeq {
					continue
				}
				**lastSeq = f.Seq
				fmt.Fprintf(out, "* message %d %s, now %s\n", m.Seq, changes[f.Type], m.String())
			case "presence":
				fmt.Fprintf(out, "* %s online\n", f.online())
			case "error":
				fmt.Fprintf(out, "* error: %s\n", f.Code)
			}
		}
	}()
	for {
		select {
		case err := <-errc:
			return err
		case line, ok := <-lines:
			if !ok {
				_ = ws.Close(websocket.StatusNormalClosure, "bye")
				return io.EOF
			}
			if line == "" {
				continue
			}
			id := make([]byte, 8)
			_, _ = crand.Read(id)
			if err := send(map[string]any{"type": "publish", "room": room, "content": line, "client_msg_id": hex.EncodeToString(id)}); err != nil {
				return err
			}
		}
	}
}
