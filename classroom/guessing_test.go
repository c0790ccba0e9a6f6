package main

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// from returns an HTTP client and a WebSocket dialer whose connections
// come from the loopback address ip (127.0.0.2, say): another computer of
// the class, as far as the classroom can tell.
func from(ip string) (*http.Client, *websocket.Dialer) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	return hc, &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 5 * time.Second}
}

// TestGuessingTheCodeIsSlow: the code is long, and guessing it is held
// back per address, across reconnections and over HTTP and WebSockets
// alike, with the teacher told in the terminal; the teacher's own
// computer is never held back.
func TestGuessingTheCodeIsSlow(t *testing.T) {
	p, code := startClassroom(t)
	if len(code) != codeLength || strings.Trim(code, codeLetters) != "" {
		t.Fatalf("the code %q is not %d of %q", code, codeLength, codeLetters)
	}

	t.Run("over HTTP", func(t *testing.T) {
		hc, _ := from("127.0.0.2")
		status := func(try string) int {
			resp, err := hc.Get(p.URL + "teacher?code=" + try)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i := 0; i < triesPerAddr; i++ {
			if got := status("WRONG" + strings.Repeat("X", i)); got != http.StatusForbidden {
				t.Fatalf("wrong try %d: status %d", i+1, got)
			}
		}
		if got := status("WRONGAGAIN"); got != http.StatusTooManyRequests {
			t.Errorf("a guess past the limit: status %d, want 429", got)
		}
		if got := status(code); got != http.StatusTooManyRequests {
			t.Errorf("the right code from a guessing address: status %d, want 429 until the tries come back", got)
		}
	})

	t.Run("over WebSockets, reconnecting each time", func(t *testing.T) {
		_, d := from("127.0.0.3")
		login := func(try string) string {
			conn, _, err := d.DialContext(context.Background(), "ws"+strings.TrimPrefix(p.URL, "http")+"ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.WriteJSON(map[string]any{"op": "teacher_login", "code": try, "_ref": 1}); err != nil {
				t.Fatal(err)
			}
			var m struct{ Op, Msg string }
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatal(err)
			}
			return m.Msg
		}
		for i := 0; i < triesPerAddr; i++ {
			if got := login("NOPE" + strings.Repeat("Y", i)); got != "that is not the code the classroom printed" {
				t.Fatalf("wrong try %d: %q", i+1, got)
			}
		}
		if got := login(code); got != tooMany {
			t.Errorf("past the limit, even the right code got %q", got)
		}
	})

	t.Run("the teacher is told, and never held back", func(t *testing.T) {
		p.WaitLine(t, regexp.MustCompile(`Someone is trying teacher codes`))
		status, body := get(t, p.URL+"teacher?code="+code) // from 127.0.0.1
		if status != http.StatusOK || !strings.Contains(body, "teacher_login") {
			t.Errorf("the teacher's own computer: status %d", status)
		}
	})
}
