package main

import "github.com/wszero/wszero"

func main() {
	wszero.On("hello", func(c *wszero.Client, p struct{ Name string }) string {
		if p.Name == "" {
			return "Type your name in the box first!"
		}
		return "Hello, " + p.Name + "!"
	})
	wszero.RunServer(8000)
}
