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
	wszero.On("join", func(c *wszero.Client, p struct{ Name string }) error {
		name := strings.TrimSpace(p.Name)
		if name == "" || utf8.RuneCountInString(name) > 30 {
			return errors.New("choose a name of 1 to 30 letters")
		}
		c.Set("name", name)
		return wszero.Broadcast("joined", wszero.Params{"name": name})
	})

	wszero.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		name, _ := c.Get("name").(string)
		if name == "" {
			return errors.New("join with a name before you talk")
		}
		if strings.TrimSpace(p.Text) == "" {
			return nil
		}
		return wszero.Broadcast("said", wszero.Params{"name": name, "text": p.Text})
	})

	wszero.On("disconnect", func(c *wszero.Client) {
		if name, ok := c.Get("name").(string); ok {
			_ = wszero.Broadcast("left", wszero.Params{"name": name})
		}
	})

	wszero.RunServer(8000)
}
