// Command ofrep-testserver serves a flag file over OFREP on a loopback port. It exists
// so clients nobody here wrote (the official OpenFeature OFREP providers) can be
// tested against the ofrep package: it prints "listening on http://ADDR" once ready
// and serves until it is killed (or, with -exit-on-stdin-eof, until its stdin closes).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ofrep"
)

func main() {
	file := flag.String("flags", "", "flag file (JSON or YAML, docs/FORMAT.md)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	apiKey := flag.String("api-key", "", "require this X-API-Key (empty: no auth)")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin closes (for a parent test process)")
	flag.Parse()
	if *file == "" {
		log.Fatal("ofrep-testserver: -flags is required")
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		log.Fatalf("ofrep-testserver: %v", err)
	}
	set, problems, err := flagset.Load(data)
	if err != nil {
		log.Fatalf("ofrep-testserver: %s: %v", *file, err)
	}
	for _, p := range problems {
		log.Printf("ofrep-testserver: %s: %v", *file, p)
	}
	var opts ofrep.Options
	if *apiKey != "" {
		opts.APIKeys = []string{*apiKey}
	}
	h := ofrep.NewHandler(func() *flagset.Set { return set }, opts)
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("ofrep-testserver: listen %s: %v", *addr, err)
	}
	fmt.Printf("listening on http://%s\n", l.Addr())
	// Exit when the parent goes away (its end of our stdin closes), so a crashed test
	// never leaves a server behind.
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}
	log.Fatal(http.Serve(l, h))
}
