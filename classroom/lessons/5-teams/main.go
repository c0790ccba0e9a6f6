package main

import "github.com/wszero/wszero"

func main() {
	wszero.On("join", func(c *wszero.Client, p struct{ Name, Team string }) {
		c.Set("name", p.Name)
		c.Set("team", p.Team)
		c.AddToGroup(p.Team)
		wszero.BroadcastTo(p.Team, "said", wszero.Params{"name": p.Name, "text": "has joined team " + p.Team})
	})
	wszero.On("say", func(c *wszero.Client, p struct{ Text string }) {
		team := c.Get("team").(string)
		wszero.BroadcastTo(team, "said", wszero.Params{"name": c.Get("name"), "text": p.Text})
	})
	wszero.RunServer(8000)
}
