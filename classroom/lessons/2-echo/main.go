package main

import "github.com/wszero/wszero"

func main() {
	wszero.On("shout", func(c *wszero.Client, p struct{ Text string }) {
		c.Send("echo", wszero.Params{"text": p.Text + "... " + p.Text + "..."})
	})
	wszero.RunServer(8000)
}
