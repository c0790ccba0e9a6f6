// A lesson with a mistake: the handler forgot the client.
package main

import "github.com/wszero/wszero"

func main() {
	wszero.On("hello", func(p struct{ Name string }) string { return "Hello, " + p.Name })
	wszero.RunServer(8000)
}
