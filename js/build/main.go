// Command build writes the browser client's bundles to js/dist. Run it from
// the repository root with "go generate" (see embed.go) or
// "go run ./js/build"; "go run ./js/build -check" only reports whether
// js/dist is up to date.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/wszero/wszero/internal/jsbuild"
)

func main() {
	check := flag.Bool("check", false, "report whether js/dist matches js/src, and write nothing")
	dir := flag.String("js", "js", "the js folder")
	flag.Parse()
	if *check {
		stale, err := jsbuild.Stale(*dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if len(stale) > 0 {
			fmt.Fprintf(os.Stderr, "js/dist is out of date (%v): run go generate and commit js/dist\n", stale)
			os.Exit(1)
		}
		fmt.Println("js/dist is up to date")
		return
	}
	if err := jsbuild.Write(*dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
