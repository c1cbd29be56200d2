// Command vlbench measures vlproxy: a fake Elasticsearch backend, an open-loop load generator,
// the pass-through benchmark against nginx, relevance evaluation and a catalogue loader.
package main

import (
	"fmt"
	"os"
	"sort"
)

type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{
	"fake-es":         {"serve canned Elasticsearch responses (cheaper than the proxy)", runFakeES},
	"load":            {"open-loop (or closed-loop) load generator with HDR latency histograms", runLoad},
	"passthrough":     {"capacity and CPU per request of several targets; writes a BENCHMARKS.md section", runPassthrough},
	"eval":            {"relevance metrics (nDCG, MAP, MRR, recall, P) per variant with significance tests", runEval},
	"index":           {"bulk-load a catalogue (CSV/NDJSON, or -fashion) into ES with olivere/elastic", runIndex},
	"fashion-queries": {"generate text and image query sets and qrels from the fashion catalogue", runFashionQueries},
	"fake-model":      {"serve the model/modeltest simulator of an OpenAI-compatible model server", runFakeModel},
	"exact-knn":       {"rank image queries by exact cosine over the index's stored vectors (the reference for the engine's kNN)", runExactKNN},
	"enrich":          {"write model keywords of each document's image into a field (resumable, rate-limited)", runEnrich},
	"section":         {"replace one <!-- bench:NAME --> section of BENCHMARKS.md with a file", runSection},
	"freeport":        {"print a free loopback TCP port", runFreePort},
	"gen-image":       {"write a photo-like JPEG of a given size for image-query benchmarks", runGenImage},
	"bare-proxy":      {"the smallest fasthttp reverse proxy: the floor vlproxy is compared with", runBareProxy},
	"wait":            {"wait until -addr host:port accepts connections", runWait},
	"hostile":         {"gzip bombs, 16-bit PNGs and 1000-clause bodies beside normal searches; peak RSS of vlproxy", runHostile},
	"wrk":             {"drive Debian's wrk (C, closed loop) at every target: _doc GET, _search miss and hit, CPU/req from /proc", runWrk},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: vlbench <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nrun 'vlbench <command> -help' for its flags\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-help" || os.Args[1] == "-h" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "vlbench: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "vlbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
