package wszero_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero"
)

func ExampleWithAuthenticate() {
	s := wszero.New(wszero.WithLogger(nil), wszero.WithAuthenticate(func(r *http.Request) (any, error) {
		switch r.URL.Query().Get("token") { // or a cookie: r.Cookie("session")
		case "ada-secret":
			return "Ada", nil
		case "":
			return nil, errors.New("log in first") // 401
		}
		return nil, &wszero.HTTPError{Status: http.StatusForbidden, Reason: "that token is not valid"}
	}))
	defer s.Shutdown(context.Background())
	s.On("whoami", func(c *wszero.Client) any { return c.Identity() })

	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, token := range []string{"", "guess", "ada-secret"} {
		url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?token=" + token
		conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("%d %s", resp.StatusCode, body)
			continue
		}
		exchange(conn, `{"op": "whoami", "_ref": 1}`)
		conn.Close()
	}
	// Output:
	// 401 log in first
	// 403 that token is not valid
	// {"op":"_reply","_ref":1,"result":"Ada"}
}

func ExampleWithGuard() {
	s := wszero.New(wszero.WithLogger(nil), wszero.WithGuard("kick", func(c *wszero.Client) error {
		if !c.InGroup("teachers") {
			return errors.New("only teachers may kick")
		}
		return nil
	}))
	defer s.Shutdown(context.Background())
	s.On("join", func(c *wszero.Client, p struct{ Group string }) error { return c.AddToGroup(p.Group) })
	s.On("kick", func(c *wszero.Client, p struct{ Who string }) string { return p.Who + " has to leave" })

	ts := httptest.NewServer(s)
	defer ts.Close()
	conn := dialExample(ts)
	defer conn.Close()

	exchange(conn, `{"op": "kick", "who": "Bob", "_ref": 1}`)
	exchange(conn, `{"op": "join", "group": "teachers", "_ref": 2}`)
	exchange(conn, `{"op": "kick", "who": "Bob", "_ref": 3}`)
	// Output:
	// {"op":"error","msg":"only teachers may kick","for":"kick","_ref":1}
	// {"op":"_reply","_ref":2,"result":null}
	// {"op":"_reply","_ref":3,"result":"Bob has to leave"}
}
