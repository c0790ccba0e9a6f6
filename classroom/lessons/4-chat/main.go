package main

import (
	"errors"

	"github.com/wszero/wszero"
)

func main() {
	wszero.On("join", func(c *wszero.Client, p struct{ Name string }) error {
		if p.Name == "" {
			return errors.New("type your name in the box first")
		}
		c.Set("name", p.Name)
		return wszero.Broadcast("said", wszero.Params{"name": p.Name, "text": "has joined"})
	})
	wszero.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		name, joined := c.Get("name").(string)
		if !joined {
			return errors.New("join the chat first: type your name and press Join")
		}
		return wszero.Broadcast("said", wszero.Params{"name": name, "text": p.Text})
	})
	wszero.RunServer(8000)
}
