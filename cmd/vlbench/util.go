package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vlproxy/vlproxy/bench"
)

// runFreePort prints a free loopback TCP port (for scripts that start servers on fixed ports).
func runFreePort(args []string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cannot find a free port: %w", err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

// runWait waits until a TCP address accepts connections.
func runWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port to wait for")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		c, err := net.DialTimeout("tcp", *addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within -timeout %s: %w", *addr, *timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runSection replaces one "<!-- bench:NAME -->" section of a Markdown file with a file's content.
func runSection(args []string) error {
	fs := flag.NewFlagSet("section", flag.ContinueOnError)
	out := fs.String("out", "BENCHMARKS.md", "Markdown file to update")
	name := fs.String("name", "", "section name (required)")
	file := fs.String("file", "", "file holding the new section body, starting with its '## ' heading (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *file == "" {
		return fmt.Errorf("-name and -file are required")
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("cannot read -file: %w", err)
	}
	return bench.ReplaceSection(*out, *name, string(b))
}
