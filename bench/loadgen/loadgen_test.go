package loadgen

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testServer is the benchmark's application in its plainest form.
func testServer(t *testing.T) string {
	var mu sync.Mutex
	conns := map[*websocket.Conn]bool{}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns[conn] = true
		mu.Unlock()
		go func() {
			defer conn.Close()
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return
				}
				var m struct {
					Op      string
					Seq, Ts int64
					Text    string
				}
				if json.Unmarshal(data, &m) != nil {
					return
				}
				mu.Lock()
				switch m.Op {
				case "echo":
					out, _ := json.Marshal(struct {
						Op   string `json:"op"`
						Seq  int64  `json:"seq"`
						Text string `json:"text"`
					}{"echo", m.Seq, m.Text})
					_ = conn.WriteMessage(websocket.TextMessage, out)
				case "pub":
					out, _ := json.Marshal(struct {
						Op   string `json:"op"`
						Seq  int64  `json:"seq"`
						Ts   int64  `json:"ts"`
						Text string `json:"text"`
					}{"msg", m.Seq, m.Ts, m.Text})
					for c := range conns {
						_ = c.WriteMessage(websocket.TextMessage, out)
					}
				}
				mu.Unlock()
			}
		}()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dialAll dials n connections to addr.
func dialAll(t *testing.T, addr string, n int) (*Loop, []*Conn) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]*Conn, n)
	for i := range cs {
		if cs[i], err = l.Dial(addr, i); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(l.CloseAll)
	return l, cs
}

func TestEcho(t *testing.T) {
	l, cs := dialAll(t, testServer(t), 5)
	res := Echo(l, cs, 200*time.Millisecond)
	if err := res.Check(); err != nil || res.Deliveries == 0 {
		t.Fatalf("%+v: %v", res, err)
	}
}

func TestFanout(t *testing.T) {
	l, cs := dialAll(t, testServer(t), 5)
	res := FanoutClosed(l, cs, 200*time.Millisecond, 4)
	if err := res.Check(); err != nil || res.Deliveries == 0 {
		t.Fatalf("%+v: %v", res, err)
	}
}

func TestFanoutRate(t *testing.T) {
	l, cs := dialAll(t, testServer(t), 5)
	res := FanoutRate(l, cs, 200*time.Millisecond, 500)
	if err := res.Check(); err != nil || res.Deliveries != 100 || res.P99 <= 0 {
		t.Fatalf("%+v: %v", res, err)
	}
}

// A message whose bytes differ from what was sent is counted as corrupt.
func TestParseMsg(t *testing.T) {
	ok := `{"op":"msg","seq":12,"ts":34,"text":"` + Text + `"}`
	if seq, ts, good := parseMsg([]byte(ok), `{"op":"msg","seq":`, true); !good || seq != 12 || ts != 34 {
		t.Fatal("a good message was refused")
	}
	for _, bad := range []string{strings.Replace(ok, "quick", "quack", 1), ok[:len(ok)-1], strings.Replace(ok, `"ts":34`, `"ts":x`, 1)} {
		if _, _, good := parseMsg([]byte(bad), `{"op":"msg","seq":`, true); good {
			t.Fatalf("%s was taken", bad)
		}
	}
}
