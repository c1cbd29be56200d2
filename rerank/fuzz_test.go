package rerank

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{
		`{"enabled": true, "rank_window_size": 50, "min_score": 0.2, "weight": 0.7, "fields": {"text": ["title", "description"], "image": "image_url"}, "timeout": "300ms"}`,
		`true`, `false`, `{}`, `{"fields":{"text":"title"}}`, `{"timeout":"1.5s"}`, `{"rank_window_size":1e3}`,
		`{"unknown":1}`, `[1]`, `{"weight":2}`, `{"timeout":"-1s"}`, `"x"`, ``, `{"enabled":"yes"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := ParseOptions(raw)
		if err != nil {
			var e *eserr.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Reason == "" {
				t.Fatalf("error %v is not a 400 *eserr.Error", err)
			}
			return
		}
		if o.WindowSize != nil && *o.WindowSize < 1 {
			t.Fatalf("window %d accepted", *o.WindowSize)
		}
		if o.Weight != nil && !(*o.Weight >= 0 && *o.Weight <= 1) {
			t.Fatalf("weight %v accepted", *o.Weight)
		}
		if o.Timeout != nil && *o.Timeout <= 0 {
			t.Fatalf("timeout %v accepted", *o.Timeout)
		}
		if o.Fields != nil && len(o.Fields.Text) == 0 && o.Fields.Image == "" {
			t.Fatal("empty fields accepted")
		}
	})
}

func FuzzApply(f *testing.F) {
	f.Add(string(esResponse(products, 0, 6, nil)), "", 3, 0)
	f.Add(string(esResponse(products, 0, 6, nil)), "filter_path=hits.hits._id,-took", 2, 1)
	f.Add(`{"hits":{"hits":[{"_id":"1","_score":null,"_source":{"title":["a","b"]}},{"_id":2}]}}`, "_source=false", 1, 1)
	f.Add(`{"hits":{"max_score":null,"hits":[1,"x",{"_source":[]}]}}`, "_source_includes=brand", 5, 0)
	f.Add(`{"error":{"type":"x"},"status":500}`, "filter_path=**.type", 1, 0)
	f.Add(`{"hits":{"hits":[{"_id":"1"`, "", 1, 0)
	f.Fuzz(func(t *testing.T, es string, args string, size, from int) {
		if size < 0 || size > 100 || from < 0 || from > 100 {
			return
		}
		r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, newMapCache())
		plan, _, _, skip, err := r.Prepare(Request{Index: "products", Args: QueryArgs(args), Opts: Options{Timeout: ptr(time.Second)},
			Body: []byte(`{"query":{"match":{"title":"red running shoes"}},"size":` + itoa(size) + `,"from":` + itoa(from) + `}`)})
		if err != nil || skip != "" {
			return
		}
		var res Result
		done := make(chan struct{})
		go func() { res, err = r.Apply(context.Background(), plan, []byte(es)); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 2)
			t.Fatalf("Apply hung on %q %q: %s", es, args, b.String())
		}
		if err != nil {
			t.Fatalf("Apply error %v", err)
		}
		if res.Status == "" {
			t.Fatal("no status")
		}
		if res.Explain != nil && !json.Valid(res.Explain) {
			t.Fatalf("invalid explain %s", res.Explain)
		}
		// Valid ES JSON in gives valid JSON out.
		if json.Valid([]byte(es)) && !json.Valid(res.Body) {
			t.Fatalf("valid input %s gave invalid output %s", es, res.Body)
		}
	})
}
