package rooms_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

func TestNormalizeContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want, code string
	}{
		{"OK", "hello", "hello", ""},
		{"OKTrimmed", "  hi there \n\t", "hi there", ""},
		{"OKNewlinesTabs", "a\n\tb", "a\n\tb", ""},
		{"OKCRLF", "a\r\nb", "a\nb", ""},
		{"OKMaxChars", strings.Repeat("é", 4000), strings.Repeat("é", 4000), ""},
		{"ErrEmpty", "", "", cg.EINVALIDCONTENT},
		{"ErrBlank", " \n\t ", "", cg.EINVALIDCONTENT},
		{"ErrTooLong", strings.Repeat("a", 4001), "", cg.EINVALIDCONTENT},
		{"ErrControl", "a\x00b", "", cg.EINVALIDCONTENT},
		{"ErrBell", "a\u0007", "", cg.EINVALIDCONTENT},
		{"ErrLoneCR", "a\rb", "", cg.EINVALIDCONTENT},
		{"ErrLineSeparator", "a\u2028b", "", cg.EINVALIDCONTENT},
		{"ErrInvalidUTF8", "a\xffb", "", cg.EINVALIDCONTENT},
		{"ErrDEL", "a\u007fb", "", cg.EINVALIDCONTENT},
		{"ErrC1First", "a\u0080b", "", cg.EINVALIDCONTENT},
		{"ErrC1NextLine", "a\u0085b", "", cg.EINVALIDCONTENT},
		{"ErrC1Last", "a\u009fb", "", cg.EINVALIDCONTENT},
		{"OKZeroWidthJoiner", "\U0001F469\u200d\U0001F4BB", "\U0001F469\u200d\U0001F4BB", ""},
		{"OKZeroWidthNonJoiner", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", ""},
		{"OKBidiBalanced", "\u202bx\u202c \u2067y\u2069", "\u202bx\u202c \u2067y\u2069", ""},
		{"OKBidiOverrideClosed", "a\u202eb", "a\u202eb\u202c", ""},
		{"OKBidiEachKindClosed", "\u202a\u202b\u202d\u2066\u2067\u2068x", "\u202a\u202b\u202d\u2066\u2067\u2068x\u2069\u2069\u2069\u202c\u202c\u202c", ""},
		{"OKBidiIsolateClosesEmbeddings", "\u2068\u202ax\u2069", "\u2068\u202ax\u2069", ""},
		{"OKBidiEmbeddingInIsolateClosed", "\u2067x\u202by", "\u2067x\u202by\u202c\u2069", ""},
		{"OKBidiPDFCannotLeaveIsolate", "\u202b\u2066x\u202c", "\u202b\u2066x\u202c\u2069\u202c", ""},
		{"OKBidiStrayClosers", "x\u202c\u2069", "x\u202c\u2069", ""},
		{"OKBidiClosedAfterTrim", "a\u202e \n", "a\u202e\u202c", ""},
		{"ErrBidiClosedTooLong", strings.Repeat("a", 3999) + "\u202e", "", cg.EINVALIDCONTENT},
	}
	for _, tt := range tests {
		got, err := rooms.NormalizeContent(tt.in)
		if code := cg.ErrorCode(err); code != tt.code {
			t.Errorf("%s: code=%q, want %q", tt.name, code, tt.code)
		} else if err == nil && got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	t.Parallel()
	room := "7d8c3c5e-0a51-4c43-9f3c-7a6a53e1c0b1"
	tests := []struct {
		name, in, typ, code string
	}{
		{"OKPing", `{"type":"ping","ref":"r"}`, "ping", ""},
		{"OKSubscribe", `{"type":"subscribe","room":"` + room + `","since_seq":41}`, "subscribe", ""},
		{"OKSubscribeNullSince", `{"type":"subscribe","room":"` + room + `","since_seq":null}`, "subscribe", ""},
		{"OKPublish", `{"type":"publish","room":"` + room + `","content":"x","client_msg_id":"a-1"}`, "publish", ""},
		{"OKUnknownFieldIgnored", `{"type":"ping","extra":{"a":[1]}}`, "ping", ""},
		{"ErrNotJSON", `nope`, "", rooms.EINVALIDFRAME},
		{"ErrArray", `[]`, "", rooms.EINVALIDFRAME},
		{"ErrTypeNumber", `{"type":1}`, "", rooms.EINVALIDFRAME},
		{"ErrUnknownType", `{"type":"x"}`, "", rooms.EUNKNOWNTYPE},
		{"ErrLongRef", `{"type":"ping","ref":"` + strings.Repeat("r", 129) + `"}`, "", rooms.EINVALIDFRAME},
		{"ErrRoomNotUUID", `{"type":"subscribe","room":"x"}`, "", cg.ENOTFOUND},
		{"ErrSinceFraction", `{"type":"subscribe","room":"` + room + `","since_seq":1.5}`, "", rooms.EINVALIDFRAME},
		{"ErrSinceString", `{"type":"subscribe","room":"` + room + `","since_seq":"1"}`, "", rooms.EINVALIDFRAME},
		{"ErrContentNumber", `{"type":"publish","room":"` + room + `","content":5}`, "", cg.EINVALIDCONTENT},
		{"ErrParentNumber", `{"type":"publish","room":"` + room + `","content":"x","parent_id":5}`, "", cg.EINVALIDPARENT},
		{"ErrTypeOtherCase", `{"Type":"ping"}`, "", rooms.EINVALIDFRAME},
		{"ErrContentOtherCase", `{"type":"publish","room":"` + room + `","Content":"x"}`, "", cg.EINVALIDCONTENT},
		{"ErrContentTwice", `{"type":"publish","room":"` + room + `","content":"x","content":"y"}`, "", rooms.EINVALIDFRAME},
		{"ErrContentLoneSurrogate", `{"type":"publish","ref":"r","room":"` + room + `","content":"a\ud800b"}`, "", cg.EINVALIDCONTENT},
		{"ErrContentReversedPair", `{"type":"publish","room":"` + room + `","content":"a\udc00\ud800"}`, "", cg.EINVALIDCONTENT},
		{"ErrRefLoneSurrogate", `{"type":"ping","ref":"\udfff"}`, "", rooms.EINVALIDFRAME},
		{"ErrUnknownFieldLoneSurrogate", `{"type":"ping","x":"\ud800"}`, "", rooms.EINVALIDFRAME},
		{"OKEscapedPair", `{"type":"publish","room":"` + room + `","content":"\ud83d\ude00"}`, rooms.TypePublish, ""},
		{"ErrClientMsgIDSpace", `{"type":"publish","room":"` + room + `","content":"x","client_msg_id":"a b"}`, "", rooms.EINVALIDFRAME},
	}
	for _, tt := range tests {
		f, ferr := rooms.DecodeFrame([]byte(tt.in))
		switch {
		case tt.code == "" && ferr != nil:
			t.Errorf("%s: error %v", tt.name, ferr)
		case tt.code != "" && (ferr == nil || ferr.Code != tt.code):
			t.Errorf("%s: got %v, want code %s", tt.name, ferr, tt.code)
		case tt.code == "" && f.Type != tt.typ:
			t.Errorf("%s: type %q, want %q", tt.name, f.Type, tt.typ)
		}
	}
}

// FuzzDecodeFrame checks that no input makes the decoder panic, that accepted frames are
// well-formed, and that every error frame it leads to is valid JSON.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"type":"subscribe","ref":"1","room":"7d8c3c5e-0a51-4c43-9f3c-7a6a53e1c0b1","since_seq":41}`))
	f.Add([]byte(`{"type":"publish","ref":"2","room":"7d8c3c5e-0a51-4c43-9f3c-7a6a53e1c0b1","content":"hi","parent_id":null}`))
	f.Add([]byte(`{"type":"ping"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ferr := rooms.DecodeFrame(data)
		if ferr != nil {
			out := rooms.ErrorFrame(ferr.Ref, ferr.Code, ferr.Message, 0)
			if !utf8.Valid(out) {
				t.Fatalf("error frame is not UTF-8: %q", out)
			}
			return
		}
		if fr.Type == "" {
			t.Fatalf("accepted a frame without a type: %q", data)
		}
		if fr.Type != rooms.TypePing && !cg.ValidUUID(string(fr.Room)) {
			t.Fatalf("accepted room %q", fr.Room)
		}
		if fr.SinceSeq != nil && *fr.SinceSeq < 0 {
			t.Fatalf("accepted since_seq %d", *fr.SinceSeq)
		}
		if len(fr.Ref) > rooms.MaxRefLen {
			t.Fatalf("accepted a ref of %d bytes", len(fr.Ref))
		}
	})
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	e := rooms.Event{Kind: rooms.EventTyping, Seq: 1<<40 + 7, Anon: "Anon_a3f2e1", Frame: []byte(`{"type":"typing"}`)}
	got, err := rooms.DecodeEvent(e.Encode())
	if err != nil || got.Kind != e.Kind || got.Seq != e.Seq || got.Anon != e.Anon || string(got.Frame) != string(e.Frame) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("m"), append([]byte("m12345678"), 9)} {
		if _, err := rooms.DecodeEvent(bad); err == nil {
			t.Fatalf("decoded malformed event %q", bad)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := rooms.NewRateLimiter(2, 3)
	l.Now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("u"); !ok {
			t.Fatalf("burst message %d refused", i)
		}
	}
	ok, wait := l.Allow("u")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Fatal("another user was limited")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("u"); !ok {
		t.Fatal("refused after the wait")
	}
}

// BenchmarkDecodeFrame decodes the frames a client sends most: subscribes (four on every
// connect) and publishes.
func BenchmarkDecodeFrame(b *testing.B) {
	for _, bc := range []struct{ name, frame string }{
		{"subscribe", `{"type":"subscribe","ref":"s-1","room":"7d8c3c5e-0a51-4c43-9f3c-7a6a53e1c0b1","since_seq":41}`},
		{"publish", `{"type":"publish","ref":"p-17","room":"7d8c3c5e-0a51-4c43-9f3c-7a6a53e1c0b1","content":"Does anyone have the notes from Tuesday's lecture? I missed the part on eigenvalues.","client_msg_id":"c-0b7e3d"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.frame)
			b.ReportAllocs()
			for b.Loop() {
				if _, ferr := rooms.DecodeFrame(data); ferr != nil {
					b.Fatal(ferr)
				}
			}
		})
	}
}

// FuzzFieldDecoders checks the frame's field decoders against encoding/json/v2 on any valid
// JSON value: the same string, the same number, the same refusals (lone surrogates included).
func FuzzFieldDecoders(f *testing.F) {
	for _, v := range []string{`"s-1"`, `"a\"b"`, `"\u00e9t\u00e9"`, `"été"`, `""`, `null`, `41`, `0`, `-1`, `1.5`, `1e3`,
		`99999999999999999999`, `123456789012345678`, `true`, `{}`, `[]`, `"\ud800"`, `"\ud83d\ude00"`} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || !utf8.Valid(raw) {
			return // a frame's fields are valid JSON, and its text valid UTF-8
		}
		var got string
		present, ok := rooms.OptString(raw, &got)
		var want *string
		wantErr := jsonv2.Unmarshal(raw, &want)
		switch {
		case wantErr != nil:
			if ok {
				t.Fatalf("%s: accepted as %q; encoding/json/v2: %v", raw, got, wantErr)
			}
		case want == nil: // null
			if !ok || got != "" {
				t.Fatalf("%s: got %q (present=%v ok=%v), want nothing", raw, got, present, ok)
			}
		case !present || !ok || got != *want:
			t.Fatalf("%s: got %q (present=%v ok=%v), encoding/json/v2 %q", raw, got, present, ok, *want)
		}

		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return // an absent since_seq, which the frame's decoder handles before DecodeSeq
		}
		seq, ok := rooms.DecodeSeq(raw)
		var n int64
		if err := jsonv2.Unmarshal(raw, &n); err != nil || n < 0 {
			if ok {
				t.Fatalf("%s: seq %d accepted; encoding/json/v2: %d, %v", raw, seq, n, err)
			}
		} else if !ok || seq != n {
			t.Fatalf("%s: seq %d (ok=%v), encoding/json/v2 %d", raw, seq, ok, n)
		}
	})
}
