package main

import (
	"errors"

	"github.com/wszero/wszero"
)

func main() {
	wszero.On("join", func(c *wszero.Client, p struct{ Name, Team string }) error {
		if p.Name == "" {
			return errors.New("type your name in the box first")
		}
		c.Set("name", p.Name)
		c.Set("team", p.Team)
		c.AddToGroup(p.Team)
		return wszero.BroadcastTo(p.Team, "said", wszero.Params{"name": p.Name, "text": "has joined team " + p.Team})
	})
	wszero.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		team, joined := c.Get("team").(string)
		if !joined {
			return errors.New("join a team first: press Join team red or Join team blue")
		}
		return wszero.BroadcastTo(team, "said", wszero.Params{"name": c.Get("name"), "text": p.Text})
	})
	wszero.RunServer(8000)
}
