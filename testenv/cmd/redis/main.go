// Command redis runs one redis-server on a free loopback port for testenv/with-redis.sh: it
// prints the server's URL on stdout once it answers PING and stops the server when its stdin
// closes or on SIGINT/SIGTERM.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vlproxy/vlproxy/testenv"
)

func main() {
	r, err := testenv.StartRedis(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "redis:", err)
		os.Exit(1)
	}
	defer r.Stop()
	fmt.Println(r.URL)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	eof := testenv.StdinClosed(true)
	select {
	case <-sigs:
	case <-eof:
	}
}
