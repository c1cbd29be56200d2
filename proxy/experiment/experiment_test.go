package experiment

import (
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/internal/promexp"
)

func headers(kv ...string) func(string) string {
	return func(name string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if strings.EqualFold(kv[i], name) {
				return kv[i+1]
			}
		}
		return ""
	}
}

func ab(weights ...float64) Config {
	e := Experiment{Name: "rerank-ab", DefaultVariant: "control"}
	names := []string{"control", "rerank", "shadow", "judge"}
	for i, w := range weights {
		e.Variants = append(e.Variants, Variant{Name: names[i], Weight: w})
	}
	return Config{Experiments: []Experiment{e}}
}

func TestSplitShares(t *testing.T) {
	f := func(weights ...float64) {
		t.Helper()
		s, err := New(ab(weights...))
		if err != nil {
			t.Fatal(err)
		}
		const n = 100000
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			v, ok, err := s.Pick(headers("X-User-Id", "user-"+strconv.Itoa(i)), "")
			if !ok || err != nil {
				t.Fatal(ok, err)
			}
			counts[v.Name]++
		}
		var sum float64
		for _, w := range weights {
			sum += w
		}
		for i, v := range s.exps[0].Variants {
			want := weights[i] / sum
			got := float64(counts[v.Name]) / n
			if math.Abs(got-want) > 0.01 {
				t.Fatalf("weights %v: variant %s share %.4f, want %.4f±0.01", weights, v.Name, got, want)
			}
		}
	}
	f(50, 50)
	f(1, 1, 1)
	f(90, 10)
	f(0.5, 0.3, 0.2)
	f(70, 0, 20, 10)
}

func TestSticky(t *testing.T) {
	s, _ := New(ab(1, 1, 1, 1))
	for i := 0; i < 1000; i++ {
		key := "u" + strconv.Itoa(i*7919)
		first, _, _ := s.Pick(headers("x-user-id", key), "")
		for j := 0; j < 5; j++ {
			again, _, _ := s.Pick(headers("X-User-Id", key), "")
			if again.Name != first.Name {
				t.Fatalf("key %s: %s then %s", key, first.Name, again.Name)
			}
		}
	}
	// A second Set built from the same config assigns the same (no process-random seed).
	s2, _ := New(ab(1, 1, 1, 1))
	for i := 0; i < 1000; i++ {
		h := headers("X-User-Id", "k"+strconv.Itoa(i))
		a, _, _ := s.Pick(h, "")
		b, _, _ := s2.Pick(h, "")
		if a.Name != b.Name {
			t.Fatalf("not stable across instances")
		}
	}
}

func TestPick(t *testing.T) {
	cfg := ab(0, 100)
	cfg.Experiments = append(cfg.Experiments, Experiment{Name: "by-session", KeyHeader: "X-Session", Variants: []Variant{
		{Name: "rerank", Weight: 0}, {Name: "judge", Weight: 1, Scorer: "judge", Rerank: "on", WindowSize: 20},
	}})
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := func(h func(string) string, forced, wantExp, wantName string) {
		t.Helper()
		v, ok, err := s.Pick(h, forced)
		if err != nil || !ok || v.Experiment != wantExp || v.Name != wantName {
			t.Fatalf("Pick(%q) = %+v %v %v, want %s/%s", forced, v, ok, err, wantExp, wantName)
		}
	}
	f(headers(), "", "rerank-ab", "control")                                    // no key: default variant
	f(headers("X-User-Id", "abc"), "", "rerank-ab", "rerank")                   // weight 100 vs 0
	f(headers("X-Session", "s1"), "", "by-session", "judge")                    // second experiment's key
	f(headers("X-User-Id", "abc", "X-Session", "s"), "", "rerank-ab", "rerank") // first experiment wins
	f(headers("X-User-Id", "abc"), "control", "rerank-ab", "control")           // forced wins
	f(headers(), "by-session/rerank", "by-session", "rerank")                   // qualified
	f(headers(), " judge ", "by-session", "judge")
	v, _, _ := s.Pick(headers("X-Session", "x"), "")
	if v.Scorer != "judge" || v.Rerank != "on" || v.WindowSize != 20 {
		t.Fatalf("switches lost: %+v", v)
	}

	bad := func(forced string) {
		t.Helper()
		_, _, err := s.Pick(headers(), forced)
		var e *eserr.Error
		if !errors.As(err, &e) {
			t.Fatalf("forced %q: err %v", forced, err)
		}
		st, typ, reason := e.ESError()
		if st != 400 || typ != "illegal_argument_exception" || !strings.Contains(reason, forced) {
			t.Fatalf("forced %q: %d %s %s", forced, st, typ, reason)
		}
	}
	bad("nope")
	bad("by-session/control")

	empty, _ := New(Config{})
	if _, ok, err := empty.Pick(headers("X-User-Id", "a"), ""); ok || err != nil {
		t.Fatalf("no experiments: ok=%v err=%v", ok, err)
	}
	if _, _, err := empty.Pick(headers(), "x"); err == nil {
		t.Fatal("forced variant without experiments accepted")
	}
}

func TestNewValidates(t *testing.T) {
	f := func(cfg Config, want string) {
		t.Helper()
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New: %v, want %q", err, want)
		}
	}
	one := func(vs ...Variant) Config { return Config{Experiments: []Experiment{{Name: "e", Variants: vs}}} }
	f(one(), "no variants")
	f(one(Variant{Name: "a"}), "sum to 0")
	f(one(Variant{Name: "a", Weight: -1}, Variant{Name: "b", Weight: 2}), "must be finite and >= 0")
	f(one(Variant{Name: "a", Weight: math.NaN()}), "must be finite")
	f(one(Variant{Name: "a", Weight: 1}, Variant{Name: "a", Weight: 1}), "duplicate variant")
	f(one(Variant{Name: "", Weight: 1}), "missing name")
	f(one(Variant{Name: "a", Weight: 1, Rerank: "maybe"}), "must be on, off or shadow")
	f(Config{Experiments: []Experiment{{Name: "e", DefaultVariant: "z", Variants: []Variant{{Name: "a", Weight: 1}}}}}, "default_variant")
	f(Config{Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "a", Weight: 1}}}, {Name: "e", Variants: []Variant{{Name: "a", Weight: 1}}}}}, "duplicate name")
}

func TestObserveMetrics(t *testing.T) {
	s, _ := New(ab(1, 1))
	v, _, _ := s.Pick(headers(), "rerank")
	s.Observe(v, Observation{Latency: 20 * time.Millisecond, RerankStatus: "applied", Compared: true, Top1Changed: true, Overlap: 0.5, Displacement: 2})
	s.Observe(v, Observation{Latency: 30 * time.Millisecond, RerankStatus: "applied", Compared: true, Overlap: 1})
	s.Observe(v, Observation{Latency: 5 * time.Millisecond, RerankStatus: "fallback:timeout"})
	out := promexp.Text()
	for _, want := range []string{
		`vlproxy_experiment_rerank_status_total{experiment="rerank-ab",status="applied",variant="rerank"} 2`,
		`vlproxy_experiment_rerank_status_total{experiment="rerank-ab",status="fallback:timeout",variant="rerank"} 1`,
		`vlproxy_experiment_rerank_compared_total{experiment="rerank-ab",variant="rerank"} 2`,
		`vlproxy_experiment_rerank_top1_changed_total{experiment="rerank-ab",variant="rerank"} 1`,
		`vlproxy_experiment_request_duration_seconds_count{experiment="rerank-ab",variant="rerank"} 3`,
		`vlproxy_experiment_rerank_topk_overlap_ratio_sum{experiment="rerank-ab",variant="rerank"} 1.5`,
		`vlproxy_experiment_rerank_rank_displacement_sum{experiment="rerank-ab",variant="rerank"} 2`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	s, _ := New(ab(50, 30, 20))
	h := headers("X-User-Id", "user-123456")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := s.Pick(h, ""); !ok {
			b.Fatal("no variant")
		}
	}
}
