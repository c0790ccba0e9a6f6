// Command server runs one implementation of the benchmark's application on
// 127.0.0.1: a client's {"op":"echo","seq":N,"text":T} is answered with the
// same message, and {"op":"pub","seq":N,"ts":T,"text":X} is sent to every
// connected client as {"op":"msg","seq":N,"ts":T,"text":X}. It prints
// "LISTEN <address>" once it accepts connections.
//
//	server -impl naive|prepared|melody|wszero
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// in is every message a client sends.
type in struct {
	Op   string `json:"op"`
	Seq  int64  `json:"seq"`
	Ts   int64  `json:"ts,omitempty"`
	Text string `json:"text"`
}

// echoOut is the answer to an echo.
type echoOut struct {
	Op   string `json:"op"`
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
}

// msgOut is what a pub becomes for every client.
type msgOut struct {
	Op   string `json:"op"`
	Seq  int64  `json:"seq"`
	Ts   int64  `json:"ts"`
	Text string `json:"text"`
}

func main() {
	impl := flag.String("impl", "wszero", "naive, prepared, melody or wszero")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGTERM")
	memprofile := flag.String("memprofile", "", "on SIGTERM, write a heap profile to this file and memory statistics to stderr")
	flag.Parse()
	if *memprofile != "" {
		runtime.MemProfileRate = 256 // what one connection holds is a few hundred bytes
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	handlers := map[string]func() http.Handler{
		"naive":    newNaive,
		"prepared": newPrepared,
		"melody":   newMelody,
		"wszero":   newWszero,
	}
	mk, ok := handlers[*impl]
	if !ok {
		log.Fatalf("unknown -impl %q", *impl)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", mk())
	fmt.Printf("LISTEN %s\n", ln.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		pprof.StopCPUProfile()
		if *memprofile != "" {
			writeHeap(*memprofile)
		}
		os.Exit(0)
	}()
	log.Fatal(http.Serve(ln, mux))
}

// writeHeap writes a heap profile and prints where the memory is.
func writeHeap(path string) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(os.Stderr, "goroutines %d, heap in use %d KB, stacks %d KB, sys %d KB\n",
		runtime.NumGoroutine(), m.HeapInuse>>10, m.StackInuse>>10, m.Sys>>10)
	f, err := os.Create(path)
	if err != nil {
		log.Print(err)
		return
	}
	defer f.Close()
	_ = pprof.WriteHeapProfile(f)
}
