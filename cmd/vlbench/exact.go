package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/vlproxy/vlproxy/bench"
)

// runExactKNN ranks the image queries by exact cosine over the vectors stored in the index and
// compares the result with an engine variant of an earlier `vlbench eval -json` report: the
// engine's kNN (HNSW) plus vlproxy's fusion and paging must come within -max-gap nDCG@k of it.
func runExactKNN(args []string) error {
	fs := flag.NewFlagSet("exact-knn", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:9200", "ES/OpenSearch base URL holding the vectors")
	index := fs.String("index", "products", "index")
	field := fs.String("field", "vl_image_vector", "vector field")
	sortField := fs.String("sort-field", "id", "keyword field the walk sorts on")
	queries := fs.String("queries", "", "image queries NDJSON (vlbench fashion-queries)")
	qrelsFile := fs.String("qrels", "", "TREC qrels of the queries")
	k := fs.Int("k", 10, "metric cutoff")
	recallAt := fs.Int("recall-at", 0, "also report recall@N")
	mdOut := fs.String("markdown", "", "write the Markdown report here (default: stdout)")
	compare := fs.String("compare", "", "a `vlbench eval -json` report to compare with")
	variant := fs.String("variant", "vector", "the variant of -compare to compare with")
	maxGap := fs.Float64("max-gap", 0.02, "fail when exact nDCG@k exceeds the variant's by more than this")
	allowRemote := fs.Bool("allow-remote", false, "allow a -url that is not on a loopback address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queries == "" || *qrelsFile == "" {
		return fmt.Errorf("-queries and -qrels are required")
	}
	if _, err := bench.ParseTarget("es="+*url, *allowRemote); err != nil {
		return err
	}
	qs, err := bench.LoadQueries(*queries)
	if err != nil {
		return err
	}
	qrels, err := bench.LoadQrels(*qrelsFile)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	vecs, err := bench.LoadVectors(ctx, *url, *index, *field, *sortField)
	if err != nil {
		return err
	}
	rep, err := bench.ExactCosine(vecs, qs, qrels, *k, *recallAt, "exact-cosine")
	if err != nil {
		return err
	}
	if *mdOut == "" {
		bench.WriteEvalMarkdown(os.Stdout, rep)
	} else if err := writeFile(*mdOut, func(f *os.File) error { bench.WriteEvalMarkdown(f, rep); return nil }); err != nil {
		return err
	}
	if *compare == "" {
		return nil
	}
	b, err := os.ReadFile(*compare)
	if err != nil {
		return fmt.Errorf("cannot read -compare: %w", err)
	}
	var other bench.EvalReport
	if err := json.Unmarshal(b, &other); err != nil {
		return fmt.Errorf("cannot parse -compare %s: %w", *compare, err)
	}
	m := fmt.Sprintf("ndcg@%d", *k)
	for _, v := range other.Variants {
		if v.Name != *variant {
			continue
		}
		exact, got := rep.Variants[0].Mean[m], v.Mean[m]
		gap := exact - got
		verdict := "within"
		if gap > *maxGap {
			verdict = "NOT within"
		}
		fmt.Printf("exact-cosine %s %.4f, %s %.4f: gap %+.4f, %s %.2f (%d vectors, %d queries)\n", m, exact, *variant, got, gap, verdict, *maxGap, len(vecs), len(qs))
		if gap > *maxGap {
			return fmt.Errorf("the %s variant is %.4f %s below exact cosine (more than %.2f)", *variant, gap, m, *maxGap)
		}
		return nil
	}
	return fmt.Errorf("-compare %s has no variant %q", *compare, *variant)
}
