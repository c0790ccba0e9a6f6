// Classroom is a complete app for a class, built on wszero's public API:
// students open the address it prints and type their name; the teacher
// opens /teacher with the code it prints, sees who is there, splits the
// class into groups, asks questions, watches the answers arrive as a bar
// chart, reveals the answer, and can lock the students' screens.
//
//	go run ./classroom
//
// Every teacher op is refused, by a guard, to a client that has not given
// the code.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed static
var files embed.FS

func main() {
	code := os.Getenv("CLASSROOM_CODE")
	if code == "" {
		code = newCode()
	}
	port := 8000
	if p := os.Getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			fail(fmt.Sprintf("the PORT environment variable is %q, which is not a port number: set it to a number like 8000, or unset it", p))
		}
		port = n
	}
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if errors.Is(err, syscall.EADDRINUSE) {
		fail(fmt.Sprintf("port %d is already in use: another program (maybe the classroom, already running) is using it. Stop it with Ctrl-C in its window, or choose another port: PORT=%d go run ./classroom", port, port+1))
	} else if err != nil {
		fail(fmt.Sprintf("cannot listen on port %d: %v", port, err))
	}
	port = l.Addr().(*net.TCPAddr).Port

	c := newClassroom(code)
	srv := &http.Server{Handler: c.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	fmt.Printf("The classroom is open.\n\nStudents open this address (on a phone or a laptop):\n")
	for _, ip := range lanAddresses() {
		fmt.Printf("    http://%s:%d\n", ip, port)
	}
	fmt.Printf("    http://localhost:%d   (on this computer)\n\n", port)
	fmt.Printf("Teacher: open this address, and keep it to yourself:\n    http://localhost:%d/teacher?code=%s\n", port, code)
	fmt.Printf("or open /teacher on any computer of the class and type the code %s\n\n", code)
	fmt.Println("Press Ctrl-C to stop.")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-served:
		fail(fmt.Sprintf("the classroom stopped: %v", err))
	case <-ctx.Done():
	}
	fmt.Println("\nStopping: saying goodbye to every page…")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.s.Shutdown(sctx)
	_ = srv.Close()
	fmt.Println("Stopped.")
}

// fail prints why the classroom cannot run and exits with status 1.
func fail(why string) {
	fmt.Fprintln(os.Stderr, "classroom: "+why)
	os.Exit(1)
}

// codeLetters leave out the letters and digits that look alike (0 and O,
// 1 and I and L).
const codeLetters = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// newCode returns a random code of 6 letters and digits for the teacher.
func newCode() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		log.Fatal(err)
	}
	for i := range b {
		b[i] = codeLetters[int(b[i])%len(codeLetters)]
	}
	return string(b)
}

// codeMatches compares a typed code with the teacher's, ignoring case and
// spaces, in constant time.
func codeMatches(typed, code string) bool {
	typed = strings.ToUpper(strings.Join(strings.Fields(typed), ""))
	return subtle.ConstantTimeCompare([]byte(typed), []byte(code)) == 1
}

// handler serves the pages and the WebSocket endpoint. /teacher serves the
// teacher's page only with the right code in the address; without it, a
// form that asks for the code.
func (c *classroom) handler() http.Handler {
	static, _ := fs.Sub(files, "static")
	mux := http.NewServeMux()
	mux.Handle("/ws", c.s)
	mux.Handle("/wszero.js", c.s)
	mux.HandleFunc("/teacher", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		page := "code.html"
		if codeMatches(r.URL.Query().Get("code"), c.code) {
			page = "teacher.html"
		} else if r.URL.Query().Has("code") {
			w.WriteHeader(http.StatusForbidden)
		}
		b, _ := fs.ReadFile(static, page)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
	files := http.FileServerFS(static)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teacher.html" || r.URL.Path == "/code.html" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	return mux
}

// lanAddresses lists this computer's IPv4 addresses that the class can
// reach.
func lanAddresses() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []string
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			if ip := ipnet.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				ips = append(ips, ip.String())
			}
		}
	}
	return ips
}
