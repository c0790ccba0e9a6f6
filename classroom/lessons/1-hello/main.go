package main

import "github.com/wszero/wszero"

func main() {
	wszero.On("hello", func(c *wszero.Client, p struct{ Name string }) string {
		return "Hello, " + p.Name + "!"
	})
	wszero.RunServer(8000)
}
