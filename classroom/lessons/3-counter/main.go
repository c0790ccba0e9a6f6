package main

import "github.com/wszero/wszero"

var count = 0

func main() {
	wszero.On("connect", func(c *wszero.Client) {
		c.Send("count", wszero.Params{"count": count})
	})
	wszero.On("click", func(c *wszero.Client) {
		count = count + 1
		wszero.Broadcast("count", wszero.Params{"count": count})
	})
	wszero.RunServer(8000)
}
