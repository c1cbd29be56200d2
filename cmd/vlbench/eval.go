package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vlproxy/vlproxy/bench"
)

func runEval(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	def := bench.DefaultEvalConfig()
	target := fs.String("url", "http://127.0.0.1:8080", "base URL of vlproxy or ES")
	index := fs.String("index", def.Index, "index searched with POST /INDEX/_search")
	queries := fs.String("queries", "", "NDJSON queries file: {\"id\":…,\"text\":…,\"image_file\":…,\"exclude\":[…]} (required)")
	qrelsFile := fs.String("qrels", "", "TREC qrels file: query 0 document relevance (required)")
	k := fs.Int("k", def.K, "metric cutoff and hits requested")
	tmpl := fs.String("template", "", "file with the _search body; {{text}}, {{image}} (JSON strings) and {{size}} are replaced (default: a multimodal clause)")
	recallAt := fs.Int("recall-at", 0, "also request this many hits and report recall@N over them (other metrics stay at -k)")
	perms := fs.Int("permutations", def.Permutations, "permutations of the paired randomization test")
	idField := fs.String("id-field", "", "read document ids from this _source field instead of _id")
	allJudged := fs.Bool("all-judged", false, "documents missing from the qrels are judged non-relevant (every document judged, only gains >= 1 written)")
	allowRemote := fs.Bool("allow-remote", false, "allow a -url that is not on a loopback address")
	note := fs.String("note", "", "note printed above the Markdown report (e.g. 'model: simulated by model/modeltest')")
	jsonOut := fs.String("json", "", "write the full report (per query) as JSON to this file")
	mdOut := fs.String("markdown", "", "write the Markdown report to this file (default: stdout)")
	svgOut := fs.String("svg", "", "write a bar chart of the mean metrics to this file")
	var variants multiFlag
	fs.Var(&variants, "variant", "name or name:Header=Value,Header=Value (repeatable; compared against the first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queries == "" || *qrelsFile == "" {
		return fmt.Errorf("-queries and -qrels are required")
	}
	if _, err := bench.ParseTarget("eval="+*target, *allowRemote); err != nil {
		return err
	}
	cfg := def
	cfg.URL, cfg.Index, cfg.K, cfg.Permutations, cfg.IDField, cfg.AllJudged = *target, *index, *k, *perms, *idField, *allJudged
	cfg.RecallAt = *recallAt
	if *tmpl != "" {
		b, err := os.ReadFile(*tmpl)
		if err != nil {
			return fmt.Errorf("cannot read -template: %w", err)
		}
		cfg.Template = string(b)
	}
	if len(variants) > 0 {
		cfg.Variants = nil
		for _, s := range variants {
			v, err := bench.ParseVariant(s)
			if err != nil {
				return err
			}
			cfg.Variants = append(cfg.Variants, v)
		}
	}
	qs, err := bench.LoadQueries(*queries)
	if err != nil {
		return err
	}
	qrels, err := bench.LoadQrels(*qrelsFile)
	if err != nil {
		return err
	}
	if isTerminal(os.Stderr) {
		cfg.Progress = func(done, total int) {
			fmt.Fprintf(os.Stderr, "\r\033[Keval %d/%d queries × %d variants", done, total, len(cfg.Variants))
			if done == total {
				fmt.Fprint(os.Stderr, "\r\033[K")
			}
		}
	}
	rep, err := bench.RunEval(cfg, qs, qrels, bench.HTTPSearcher(cfg))
	if err != nil {
		return err
	}
	rep.Simulated = *note
	if err := writeFile(*jsonOut, func(f *os.File) error { return bench.WriteJSONValue(f, rep) }); err != nil {
		return err
	}
	if *mdOut == "" {
		bench.WriteEvalMarkdown(os.Stdout, rep)
	} else if err := writeFile(*mdOut, func(f *os.File) error { bench.WriteEvalMarkdown(f, rep); return nil }); err != nil {
		return err
	}
	return writeFile(*svgOut, func(f *os.File) error {
		return bench.WriteEvalSVG(f, fmt.Sprintf("mean relevance at k=%d, %d queries", rep.K, rep.Queries), rep)
	})
}
