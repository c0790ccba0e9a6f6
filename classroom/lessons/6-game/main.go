package main

import (
	"errors"
	"time"

	"github.com/wszero/wszero"
)

var scores = map[string]int{}
var secondsLeft = 20

func main() {
	wszero.On("join", func(c *wszero.Client, p struct{ Name string }) error {
		if p.Name == "" || len(p.Name) > 30 {
			return errors.New("type a name of 1 to 30 letters in the box first")
		}
		if old, joined := c.Get("name").(string); joined {
			delete(scores, old) // a new name for the same player
		}
		c.Set("name", p.Name)
		scores[p.Name] = 0
		return nil
	})
	wszero.On("disconnect", func(c *wszero.Client) {
		if name, joined := c.Get("name").(string); joined {
			delete(scores, name) // players who left leave the list
		}
	})
	wszero.On("tap", func(c *wszero.Client) error {
		name, joined := c.Get("name").(string)
		if !joined {
			return errors.New("type your name and press Play first")
		}
		if secondsLeft > 0 {
			scores[name] = scores[name] + 1
		}
		return wszero.Broadcast("scores", wszero.Params{"scores": scores})
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
