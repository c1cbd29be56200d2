package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vlproxy/vlproxy/bench"
)

func runIndex(args []string) error {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	def := bench.DefaultIndexConfig()
	cfg := def
	fs.StringVar(&cfg.URL, "url", def.URL, "ES/OpenSearch (or vlproxy) base URL")
	fs.StringVar(&cfg.Index, "index", def.Index, "index to load into")
	fs.BoolVar(&cfg.Recreate, "recreate", false, "delete the index first if it exists")
	fs.IntVar(&cfg.Workers, "workers", def.Workers, "concurrent bulk requests")
	fs.IntVar(&cfg.BulkActions, "bulk-actions", def.BulkActions, "documents per bulk request")
	file := fs.String("file", "", "catalogue: .csv (header row) or NDJSON")
	idField := fs.String("id-field", "id", "field holding the document id (empty: ES assigns ids)")
	mappings := fs.String("mappings", "", "JSON file with the index body (settings, mappings)")
	fashion := fs.Bool("fashion", false, "load the fashion catalogue (styles.csv) with its own mappings")
	fashionDir := fs.String("fashion-dir", "", "fashion catalogue folder (default: ../shared/data/fashion from the repository root)")
	limit := fs.Int("limit", 0, "load only the first N documents (0: all)")
	photosOnly := fs.Bool("photos-only", false, "fashion: load only the products with a photo (the 2,000 of images/)")
	knn := fs.Bool("knn", false, "fashion: create the index with index.knn: true (OpenSearch k-NN, needed for a knn_vector field with HNSW)")
	allowRemote := fs.Bool("allow-remote", false, "allow a -url that is not on a loopback address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := bench.ParseTarget("es="+cfg.URL, *allowRemote); err != nil {
		return err
	}
	var docs []bench.Doc
	switch {
	case *fashion:
		dir, err := bench.FindFashionDir(*fashionDir)
		if err != nil {
			return err
		}
		ps, err := bench.LoadFashion(dir)
		if err != nil {
			return err
		}
		if *photosOnly {
			ps = bench.FashionWithPhotos(ps)
		}
		docs = bench.FashionDocs(ps)
		if *mappings == "" {
			cfg.Mappings = json.RawMessage(bench.FashionMappings)
			if *knn {
				cfg.Mappings = json.RawMessage(strings.Replace(bench.FashionMappings, `"number_of_replicas": 0}`, `"number_of_replicas": 0, "index.knn": true}`, 1))
			}
		}
	case *file != "":
		var err error
		if docs, err = bench.ReadCatalogue(*file, *idField); err != nil {
			return err
		}
	default:
		return fmt.Errorf("give -file CATALOGUE or -fashion")
	}
	if *mappings != "" {
		b, err := os.ReadFile(*mappings)
		if err != nil {
			return fmt.Errorf("cannot read -mappings: %w", err)
		}
		if !json.Valid(b) {
			return fmt.Errorf("-mappings %s is not valid JSON", *mappings)
		}
		cfg.Mappings = b
	}
	if *limit > 0 && *limit < len(docs) {
		docs = docs[:*limit]
	}
	if isTerminal(os.Stderr) {
		cfg.Progress = func(done, total int64) {
			const width = 30
			n := int(float64(done) / float64(total) * width)
			fmt.Fprintf(os.Stderr, "\r\033[Kindex %s [%s%s] %d/%d", cfg.Index, strings.Repeat("#", n), strings.Repeat("-", width-n), done, total)
			if done >= total {
				fmt.Fprint(os.Stderr, "\r\033[K")
			}
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	st, err := bench.LoadCatalogue(ctx, cfg, docs)
	if err != nil {
		return err
	}
	fmt.Printf("indexed %d documents into %s at %s in %s (%.0f docs/s)\n", st.Docs, cfg.Index, cfg.URL,
		st.Duration.Round(1e6), float64(st.Docs)/st.Duration.Seconds())
	return nil
}

func runFashionQueries(args []string) error {
	fs := flag.NewFlagSet("fashion-queries", flag.ContinueOnError)
	fashionDir := fs.String("fashion-dir", "", "fashion catalogue folder (default: ../shared/data/fashion from the repository root)")
	out := fs.String("out", "", "output folder for queries-{text,image}.ndjson and qrels-{text,image}.txt (required; not inside the repository)")
	nText := fs.Int("text", 50, "number of text queries")
	nImage := fs.Int("image", 50, "number of image queries")
	seed := fs.Uint64("seed", 1, "sampling seed")
	full := fs.Bool("full-qrels", false, "also write gain-0 judgments (every product is judged; large files)")
	photosOnly := fs.Bool("photos-only", false, "judge only the products with a photo (for an index loaded with index -photos-only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	dir, err := bench.FindFashionDir(*fashionDir)
	if err != nil {
		return err
	}
	ps, err := bench.LoadFashion(dir)
	if err != nil {
		return err
	}
	if *photosOnly {
		ps = bench.FashionWithPhotos(ps)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("cannot create -out: %w", err)
	}
	absDir, _ := filepath.Abs(dir)
	tq, tr := bench.FashionTextQueries(ps, *nText, *seed)
	if err := bench.WriteQuerySet(filepath.Join(*out, "queries-text.ndjson"), filepath.Join(*out, "qrels-text.txt"), tq, tr, !*full); err != nil {
		return err
	}
	iq, ir := bench.FashionImageQueries(ps, *nImage, *seed, absDir)
	if err := bench.WriteQuerySet(filepath.Join(*out, "queries-image.ndjson"), filepath.Join(*out, "qrels-image.txt"), iq, ir, !*full); err != nil {
		return err
	}
	fmt.Printf("wrote %d text and %d image queries with qrels to %s (catalogue: %d products from %s)\n", len(tq), len(iq), *out, len(ps), dir)
	return nil
}
