package wszero_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero"
)

// dialExample connects a gorilla client to ts's endpoint, as a browser would.
func dialExample(ts *httptest.Server) *websocket.Conn {
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		panic(err)
	}
	return conn
}

// exchange sends one frame and prints the frame that comes back.
func exchange(conn *websocket.Conn, frame string) {
	if err := conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		panic(err)
	}
	_, reply, err := conn.ReadMessage()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(reply))
}

func ExampleOn() {
	// A handler takes the client and a struct; message keys fill its fields.
	wszero.On("greet", func(c *wszero.Client, p struct{ Name string }) string {
		return "Hello, " + p.Name + "!"
	})

	ts := httptest.NewServer(wszero.Default())
	defer ts.Close()
	conn := dialExample(ts)
	defer conn.Close()

	exchange(conn, `{"op": "greet", "name": "Ada", "_ref": 1}`)
	exchange(conn, `{"op": "greet", "nmae": "Ada"}`)
	exchange(conn, `{"op": "gret", "name": "Ada"}`)
	// Output:
	// {"op":"_reply","_ref":1,"result":"Hello, Ada!"}
	// {"op":"error","msg":"greet got \"nmae\" — did you mean \"name\"?","for":"greet"}
	// {"op":"error","msg":"no handler for \"gret\" — did you mean \"greet\"?","for":"gret"}
}

func ExampleBroadcast() {
	// Everything a client says, everyone hears.
	wszero.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		return wszero.Broadcast("said", wszero.Params{"text": p.Text})
	})
	wszero.On("hello", func(c *wszero.Client) {})

	ts := httptest.NewServer(wszero.Default())
	defer ts.Close()
	listener := dialExample(ts)
	defer listener.Close()
	exchange(listener, `{"op": "hello", "_ref": 1}`) // the listener is in

	speaker := dialExample(ts)
	defer speaker.Close()
	if err := speaker.WriteMessage(websocket.TextMessage, []byte(`{"op": "say", "text": "hi all"}`)); err != nil {
		panic(err)
	}
	_, heard, _ := listener.ReadMessage()
	fmt.Println(string(heard))
	// Output:
	// {"op":"_reply","_ref":1,"result":null}
	// {"op":"said","text":"hi all"}
}

func ExampleNew() {
	s := wszero.New(wszero.WithLogger(nil))
	defer s.Shutdown(context.Background())
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })

	ts := httptest.NewServer(s)
	defer ts.Close()
	conn := dialExample(ts)
	defer conn.Close()

	exchange(conn, `{"op": "add", "a": 2, "b": 3, "_ref": 7}`)
	exchange(conn, `{"op": "add", "a": 2.5, "b": 3, "_ref": 8}`)
	// Output:
	// {"op":"_reply","_ref":7,"result":5}
	// {"op":"error","msg":"add: \"a\" should be a whole number, but got 2.5","for":"add","_ref":8}
}

func ExampleServer_Serve() {
	s := wszero.New()
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })

	// A port the system chooses, and a server that does not block.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	conn, _, err := websocket.DefaultDialer.Dial("ws://"+l.Addr().String()+"/ws", nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	exchange(conn, `{"op": "add", "a": 2, "b": 3, "_ref": 1}`)

	_ = s.Shutdown(context.Background())
	fmt.Println(<-served)
	// Output:
	// {"op":"_reply","_ref":1,"result":5}
	// http: Server closed
}

func ExampleServer_Do() {
	s := wszero.New()
	votes := map[string]int{} // the handlers' own: no lock
	s.On("vote", func(c *wszero.Client, p struct{ For string }) { votes[p.For]++ })

	// An HTTP handler reads the votes on the handler loop.
	results := func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := s.Do(func() { n = votes["pizza"] }); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "pizza: %d", n)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", s)
	mux.HandleFunc("/results", results)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer s.Shutdown(context.Background())

	conn := dialExample(ts)
	defer conn.Close()
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"op": "vote", "for": "pizza"}`))
	exchange(conn, `{"op": "vote", "for": "pizza", "_ref": 1}`) // handled after the first

	resp, err := http.Get(ts.URL + "/results")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// {"op":"_reply","_ref":1,"result":null}
	// pizza: 2
}
