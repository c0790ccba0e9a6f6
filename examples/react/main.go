// React serves a Vite + React app built into dist/, with a shared counter
// that every open page sees.
//
//	cd examples/react && npm install && npm run build && cd ../..
//	go run ./examples/react
//
// For development with hot reload, run this and "npm run dev" side by side:
// Vite forwards /ws to this server (see vite.config.ts).
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"

	"github.com/wszero/wszero"
)

func main() {
	addr := flag.String("addr", "localhost:8000", "the address to listen on")
	dist := flag.String("dist", defaultDist(), "the folder of the built app (npm run build)")
	flag.Parse()
	if _, err := os.Stat(filepath.Join(*dist, "index.html")); err != nil {
		fmt.Fprintf(os.Stderr, "There is no built app in %s: run \"npm install && npm run build\" in examples/react first.\n", *dist)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Open http://%s\n", l.Addr())
	log.Fatal(http.Serve(l, newServer(*dist)))
}

// newServer returns the app's server: the counter's handlers and the files
// of dist.
func newServer(dist string) *wszero.Server {
	s := wszero.New(wszero.WithStatic(dist), wszero.WithAllowedOrigins("localhost:5173"))
	count := 0 // handlers run one at a time: no lock needed
	s.On("connect", func(c *wszero.Client) {
		_ = c.Send("count", wszero.Params{"count": count})
	})
	s.On("add", func(c *wszero.Client, p struct{ By int }) (int, error) {
		if p.By < 1 || p.By > 10 {
			return 0, errors.New("add between 1 and 10 at a time")
		}
		count += p.By
		_ = s.Broadcast("count", wszero.Params{"count": count})
		return count, nil
	})
	return s
}

// defaultDist is the dist folder beside this file's source.
func defaultDist() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "dist"
	}
	return filepath.Join(filepath.Dir(file), "dist")
}
