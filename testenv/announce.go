package testenv

import (
	"fmt"
	"io"
	"os"
)

// Announce prints a started server's URL on stdout (the line the with-*.sh wrappers read) and,
// when urlFile is set, writes it there too. The returned func removes that file.
func Announce(url, urlFile string) (remove func(), err error) {
	fmt.Println(url)
	if urlFile == "" {
		return func() {}, nil
	}
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write -urlfile: %w", err)
	}
	return func() { os.Remove(urlFile) }, nil
}

// StdinClosed returns a channel closed when stdin reaches end of file (the parent that holds
// the pipe is gone), or one that never closes when watch is false.
func StdinClosed(watch bool) <-chan struct{} {
	eof := make(chan struct{})
	if watch {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
	}
	return eof
}
