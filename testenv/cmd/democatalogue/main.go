// Command democatalogue gives the demo catalogue its photos: it reads products NDJSON and
// writes it again with an "image" field per product, a small JPEG data URI drawn from the
// product's category, colour and title (testenv.AddDemoPhotos). Nothing is fetched.
//
//	democatalogue -in testenv/demo/products.ndjson -out /tmp/products.ndjson
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vlproxy/vlproxy/testenv"
)

func main() {
	in := flag.String("in", "", "products NDJSON to read (required)")
	out := flag.String("out", "", "where to write the NDJSON with photos (required)")
	field := flag.String("field", "image", "the _source field that gets the data URI")
	flag.Parse()
	if err := run(*in, *out, *field); err != nil {
		fmt.Fprintln(os.Stderr, "democatalogue:", err)
		os.Exit(1)
	}
}

func run(in, out, field string) error {
	if in == "" || out == "" {
		return fmt.Errorf("cannot run without -in and -out")
	}
	src, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("cannot read -in: %w", err)
	}
	b, err := testenv.AddDemoPhotos(src, field)
	if err != nil {
		return fmt.Errorf("cannot add photos to %s: %w", in, err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("cannot write -out: %w", err)
	}
	return nil
}
