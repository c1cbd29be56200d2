package ui

import (
	"encoding/json"
	"testing"
)

func TestParseSample(t *testing.T) {
	f := func(line, name string, labels map[string]string, value float64, ok bool) {
		t.Helper()
		n, l, v, k := parseSample(line)
		if k != ok || n != name || v != value || len(l) != len(labels) {
			t.Fatalf("%q: got %q %v %v %v", line, n, l, v, k)
		}
		for key, want := range labels {
			if l[key] != want {
				t.Fatalf("%q: label %s = %q, want %q", line, key, l[key], want)
			}
		}
	}
	f(`vlproxy_experiment_rerank_compared_total{experiment="e",variant="v"} 12`, "vlproxy_experiment_rerank_compared_total", map[string]string{"experiment": "e", "variant": "v"}, 12, true)
	f(`x{a="q\"uo\\te\n",b=""} 1.5e3 1700000000`, "x", map[string]string{"a": "q\"uo\\te\n", "b": ""}, 1500, true)
	f(`plain 3`, "plain", nil, 3, true)
	f(`broken{a="x} 3`, "", nil, 0, false)
	f(`nan{a="x"} NaN`, "", nil, 0, false)
	f(`novalue{a="x"}`, "", nil, 0, false)
	f(`{a="x"} 1`, "", nil, 0, false)
}

// FuzzExperimentMetrics: any text parses without panic into stats that encode as JSON.
func FuzzExperimentMetrics(f *testing.F) {
	f.Add([]byte("vlproxy_experiment_request_duration_seconds_count{experiment=\"e\",variant=\"v\"} 3\n" +
		"vlproxy_experiment_request_duration_seconds_sum{experiment=\"e\",variant=\"v\"} 0.06\n" +
		"vlproxy_experiment_rerank_status_total{experiment=\"e\",variant=\"v\",status=\"shadow\"} 2\n" +
		"vlproxy_experiment_rerank_topk_overlap_ratio_bucket{experiment=\"e\",variant=\"v\",le=\"0.5\"} 1\n"))
	f.Add([]byte("vlproxy_experiment_x{experiment=\"\\\"\",variant=\"\\\\\"} +Inf\n"))
	f.Add([]byte("vlproxy_experiment_{"))
	f.Fuzz(func(t *testing.T, text []byte) {
		m := experimentMetrics(text)
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("cannot encode %v: %v", m, err)
		}
	})
}
