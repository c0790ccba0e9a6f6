// Command wszero makes a new wszero project that builds and runs today,
// against this checkout of wszero:
//
//	go run ./cmd/wszero new ~/myapp
//	cd ~/myapp && go run .
//
// The project has a main.go with one handler, a static/index.html that
// uses it, and a go.mod that points at this checkout (a replace line, so
// nobody has to type one) until wszero is published; then
// "go mod edit -dropreplace github.com/wszero/wszero && go get github.com/wszero/wszero"
// is all it takes to use the published module instead.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

const usage = `Usage: go run ./cmd/wszero new FOLDER

Makes FOLDER (it must not exist yet, or be empty) with a wszero program
that works: main.go, static/index.html and go.mod. Then:

    cd FOLDER && go run .
`

func main() {
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	flag.Parse()
	if flag.NArg() != 2 || flag.Arg(0) != "new" {
		flag.Usage()
		os.Exit(2)
	}
	if err := newProject(flag.Arg(1), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wszero:", err)
		os.Exit(1)
	}
}

// newProject writes a project into dir and makes its go.mod, saying what
// it did on out.
func newProject(dir string, out io.Writer) error {
	root, err := checkoutRoot()
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s already has files in it: choose a new folder, like %s", dir, dir+"-2")
	}
	name := moduleName(filepath.Base(dir))
	files := map[string]string{
		"main.go":           mainGo,
		"static/index.html": indexHTML,
		"go.mod":            fmt.Sprintf(goMod, name, root),
	}
	for path, text := range files {
		full := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			return err
		}
	}
	// wszero's go.sum vouches for its requirements, so that go mod tidy
	// need not ask the checksum database (offline, it cannot); tidy keeps
	// the lines the project needs.
	if sums, err := os.ReadFile(filepath.Join(root, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
			return err
		}
	}
	// go mod tidy records wszero's own requirements; they are in the
	// module cache already, since this checkout has just been built.
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	if msg, err := tidy.CombinedOutput(); err != nil {
		return fmt.Errorf("the project is in %s, but \"go mod tidy\" failed there:\n%s\nRun it again in that folder once the network is back", dir, msg)
	}
	fmt.Fprintf(out, "Made a wszero project in %s:\n", dir)
	fmt.Fprintln(out, "    main.go            the server: one handler, and RunServer(8000)")
	fmt.Fprintln(out, "    static/index.html  the page")
	fmt.Fprintf(out, "    go.mod             uses wszero from %s\n", root)
	fmt.Fprintf(out, "Now run it:\n    cd %s\n    go run .\n", dir)
	return nil
}

// checkoutRoot is the folder of the wszero checkout this command was built
// from.
func checkoutRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil && strings.HasPrefix(string(mod), "module github.com/wszero/wszero\n") {
			return root, nil
		}
	}
	return "", errors.New("cannot find the wszero checkout this command comes from: run it from inside the checkout, as go run ./cmd/wszero new FOLDER")
}

// moduleName turns a folder's name into a module path.
func moduleName(folder string) string {
	name := strings.Trim(regexp.MustCompile(`[^a-z0-9._-]+`).ReplaceAllString(strings.ToLower(folder), "-"), "-.")
	if name == "" {
		return "myapp"
	}
	return name
}

const goMod = `module %s

go 1.25

require github.com/wszero/wszero v0.0.0

// Until wszero is published, it comes from this checkout. Once it is:
//     go mod edit -dropreplace github.com/wszero/wszero && go get github.com/wszero/wszero
replace github.com/wszero/wszero => %s
`

const mainGo = `package main

import "github.com/wszero/wszero"

// Announce is what the page sends: {"op": "announce", "text": "hi"}.
type Announce struct {
	Text string
}

func main() {
	// Everything one page announces, every open page shows.
	wszero.On("announce", func(c *wszero.Client, p Announce) error {
		return wszero.Broadcast("announce", wszero.Params{"text": p.Text})
	})
	wszero.RunServer(8000)
}
`

const indexHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>My wszero app</title>
<script src="/wszero.js"></script>
<!-- Opened as a file, the page cannot reach the server: this line says so. -->
<script>if (location.protocol === "file:") document.write('<p id="open-the-address" style="color:#b00;font-weight:bold">Open the address the terminal printed (like http://localhost:8000), not the file.</p>')</script>
</head>
<body>
<h1>Announcements</h1>
<input id="text" placeholder="Say something">
<button onclick="send()">Send</button>
<ul id="list"></ul>
<script>
  function send() {
    send_message({op: "announce", text: text.value})
    text.value = ""
  }
  HANDLERS.announce = function (msg) {
    const li = document.createElement("li")
    li.textContent = msg.text
    list.append(li)
  }
</script>
</body>
</html>
`
