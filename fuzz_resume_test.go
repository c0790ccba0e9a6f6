package wszero

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wszero/wszero/internal/protocol"
)

// FuzzResumeHandshake sends arbitrary first frames on connections that
// offer to resume, against a server holding one live session. Whatever
// the frame, the server's first frame is _session; it says resumed only
// for the session's own ID and current key, with a count it can honour;
// every refusal has words; a resume takes the old connection over (it is
// closed); and nothing panics. The inputs choose the ID (the session's,
// or their own), the key (the current one, the last one, or their own),
// the count, and whether the frame is a well-formed _resume or their
// bytes as they are.
func FuzzResumeHandshake(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint64(0), []byte(nil))               // the right session
	f.Add(uint8(0), uint8(1), uint64(0), []byte(nil))               // the last key, used already
	f.Add(uint8(0), uint8(2), uint64(0), []byte("guess"))           // a guessed key
	f.Add(uint8(1), uint8(0), uint64(0), []byte("someone.else"))    // another ID, the right key
	f.Add(uint8(0), uint8(0), uint64(1<<53), []byte(nil))           // more seen than was sent
	f.Add(uint8(3), uint8(0), uint64(0), []byte(`{"op":"_resume"`)) // not JSON
	f.Add(uint8(3), uint8(0), uint64(0), []byte(`{"op":"_resume","id":"x","key":"y","seen":-1}`))
	f.Add(uint8(3), uint8(0), uint64(0), []byte(`{"op":"_resume","id":"x","id":"y","key":"y","seen":0}`))
	f.Add(uint8(3), uint8(0), uint64(0), []byte(`[1,2,3]`))
	log := &logRecorder{}
	s := New(WithLogger(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))), WithHandshakeTimeout(time.Second))
	ts := startFuzzServer(f, s)
	url := wsURL(ts, "/ws")
	resumer := *fuzzDialer
	resumer.Subprotocols = []string{protocol.SubprotocolJSON, protocol.SubprotocolResume}
	first := func(t *testing.T, conn *websocket.Conn) map[string]any {
		_ = conn.SetReadDeadline(time.Now().Add(fuzzTimeout))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("no _session came: %v", err)
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil || m["op"] != protocol.OpSession {
			t.Fatalf("the first frame was %q, not _session", data)
		}
		return m
	}
	// The live session, and its current and last keys.
	newSession := func(t *testing.T) (*websocket.Conn, string, string) {
		d := *fuzzDialer
		d.Subprotocols = []string{protocol.SubprotocolJSON}
		conn, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := first(t, conn)
		return conn, m["id"].(string), m["key"].(string)
	}
	f.Fuzz(func(t *testing.T, idMode, keyMode uint8, seen uint64, own []byte) {
		live, id, key := newSession(t)
		defer live.Close()
		last := key
		// Resume once by hand, so that there is a used key to try.
		{
			conn, _, err := resumer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.WriteJSON(map[string]any{"op": protocol.OpResume, "id": id, "key": key, "seen": 0})
			m := first(t, conn)
			if m["resumed"] != true {
				t.Fatalf("the session's own resume was refused: %v", m)
			}
			live.Close()
			live, key = conn, m["key"].(string)
			defer live.Close()
		}
		var frame []byte
		tryID, tryKey := id, key
		switch idMode % 4 {
		case 1, 2:
			tryID = string(own)
		case 3:
			frame = own
		}
		switch keyMode % 3 {
		case 1:
			tryKey = last
		case 2:
			tryKey = string(own)
		}
		if frame == nil {
			frame, _ = json.Marshal(map[string]any{"op": protocol.OpResume, "id": tryID, "key": tryKey, "seen": seen})
		}
		conn, _, err := resumer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
		m := first(t, conn)
		req, parseErr := protocol.ParseResume(frame)
		// Two messages (the first _session, the hand resume's) were sent
		// unnumbered; nothing numbered was: only seen 0 can be honoured.
		want := parseErr == nil && req.ID == id && req.Key == key && req.Seen == 0
		switch got := m["resumed"] == true; {
		case got != want:
			t.Fatalf("%q: resumed %v, want %v (%v)", frame, got, want, m)
		case got && m["id"] != id:
			t.Fatalf("%q resumed as %v, not %s", frame, m["id"], id)
		case got:
			// The connection it took over is closed.
			_ = live.SetReadDeadline(time.Now().Add(fuzzTimeout))
			for {
				if _, _, err := live.ReadMessage(); err != nil {
					break
				}
			}
		case !got && (m["why"] == nil || m["why"] == ""):
			t.Fatalf("%q was refused without words: %v", frame, m)
		case !got && m["id"] == id:
			t.Fatalf("%q was refused, yet given the session's ID", frame)
		}
		if logged := log.take(); strings.Contains(logged, "panicked") || strings.Contains(logged, key) {
			t.Fatalf("%q: the server logged:\n%s", frame, logged)
		}
	})
}
