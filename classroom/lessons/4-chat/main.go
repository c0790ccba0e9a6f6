package main

import "github.com/wszero/wszero"

func main() {
	wszero.On("join", func(c *wszero.Client, p struct{ Name string }) {
		c.Set("name", p.Name)
		wszero.Broadcast("said", wszero.Params{"name": p.Name, "text": "has joined"})
	})
	wszero.On("say", func(c *wszero.Client, p struct{ Text string }) {
		wszero.Broadcast("said", wszero.Params{"name": c.Get("name"), "text": p.Text})
	})
	wszero.RunServer(8000)
}
