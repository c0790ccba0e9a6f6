package main

import (
	"encoding/json"
	"net/http"

	"github.com/olahol/melody"
)

// newMelody is the application on melody, as its README writes a chat.
func newMelody() http.Handler {
	m := melody.New()
	m.Config.MessageBufferSize = 1024
	m.HandleMessage(func(s *melody.Session, data []byte) {
		var msg in
		if json.Unmarshal(data, &msg) != nil {
			return
		}
		switch msg.Op {
		case "echo":
			out, _ := json.Marshal(echoOut{"echo", msg.Seq, msg.Text})
			_ = s.Write(out)
		case "pub":
			out, _ := json.Marshal(msgOut{"msg", msg.Seq, msg.Ts, msg.Text})
			_ = m.Broadcast(out)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = m.HandleRequest(w, r)
	})
}
