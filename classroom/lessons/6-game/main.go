package main

import (
	"time"

	"github.com/wszero/wszero"
)

var scores = map[string]int{}
var secondsLeft = 20

func main() {
	wszero.On("join", func(c *wszero.Client, p struct{ Name string }) {
		c.Set("name", p.Name)
		scores[p.Name] = 0
	})
	wszero.On("tap", func(c *wszero.Client) {
		if secondsLeft > 0 {
			name := c.Get("name").(string)
			scores[name] = scores[name] + 1
		}
		wszero.Broadcast("scores", wszero.Params{"scores": scores})
	})
	wszero.Every(time.Second, func() {
		secondsLeft = secondsLeft - 1
		if secondsLeft < -5 {
			secondsLeft = 20
			for name := range scores {
				scores[name] = 0
			}
			wszero.Broadcast("scores", wszero.Params{"scores": scores})
		}
		wszero.Broadcast("clock", wszero.Params{"seconds": secondsLeft})
	})
	wszero.RunServer(8000)
}
