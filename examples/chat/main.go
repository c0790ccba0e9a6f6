// Chat is the classic first wszero app: everyone on the page picks a name
// and talks to everyone else.
//
//	go run ./examples/chat
//
// then open the address it prints in two browser windows.
package main

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/wszero/wszero"
)

func main() {
	addHandlers(wszero.Default()) // the server that wszero.RunServer runs
	wszero.RunServer(8000)
}

// addHandlers gives the server s the chat's handlers. (They are in a
// function of their own so that main_test.go can give them to a test
// server too.)
func addHandlers(s *wszero.Server) {
	s.On("join", func(c *wszero.Client, p struct{ Name string }) error {
		name := strings.TrimSpace(p.Name)
		if name == "" || utf8.RuneCountInString(name) > 30 {
			return errors.New("choose a name of 1 to 30 letters")
		}
		c.Set("name", name)
		return s.Broadcast("joined", wszero.Params{"name": name})
	})

	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		name, _ := c.Get("name").(string)
		if name == "" {
			return errors.New("join with a name before you talk")
		}
		if strings.TrimSpace(p.Text) == "" {
			return nil
		}
		return s.Broadcast("said", wszero.Params{"name": name, "text": p.Text})
	})

	s.On("disconnect", func(c *wszero.Client) {
		if name, ok := c.Get("name").(string); ok {
			_ = s.Broadcast("left", wszero.Params{"name": name})
		}
	})
}
