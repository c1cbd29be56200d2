package rerank

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
)

// These tests run the scorers through the real model client against the simulator, so the
// wire shapes (vLLM/Jina results sorted by score, TEI bare array, chat logprobs) are covered.

func simScores(q, d modeltest.Doc) float64 {
	first, _, _ := strings.Cut(d.Text, "\n")
	if s, ok := modelScores[strings.TrimSpace(first)]; ok && strings.Contains(q.Text, "red running shoes") {
		return s
	}
	return 0.5
}

func newSim(t *testing.T, faults ...modeltest.Fault) *modeltest.Server {
	t.Helper()
	srv := modeltest.NewServer(modeltest.Config{ScoreFunc: simScores, Faults: faults, Model: "m"})
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, role, url, api string) *model.Client {
	t.Helper()
	c, err := model.New(role, model.Config{URL: url, API: api, Model: "m", HealthInterval: -1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRerankAPIShapesWithSimulator(t *testing.T) {
	for _, api := range []string{model.APIVLLM, model.APITEI} {
		srv := newSim(t)
		r := newTestReranker(t, testConfig(), NewAPIScorer(newClient(t, model.RoleRerank, srv.URL, api)), nil)
		res, _ := run(t, r, matchReq(`{`+qRed+`,"size":4}`))
		if got := ids(t, res.Body); got != "4,3,6,1" || res.Status != StatusApplied {
			t.Fatalf("%s: ids %s status %s", api, got, res.Status)
		}
		if total(srv.Calls()) != 1 {
			t.Fatalf("%s: calls %v", api, srv.Calls())
		}
	}
}

func TestRerankMalformedModelOutputFailsOpen(t *testing.T) {
	f := func(fault modeltest.Fault, want string) {
		t.Helper()
		srv := newSim(t, fault)
		r := newTestReranker(t, testConfig(), NewAPIScorer(newClient(t, model.RoleRerank, srv.URL, model.APIVLLM)), nil)
		res, _ := run(t, r, matchReq(`{`+qRed+`,"size":3}`))
		if res.Status != want || string(res.Body) != string(esResponse(products, 0, 3, nil)) {
			t.Fatalf("fault %+v: status %s body %s", fault, res.Status, res.Body)
		}
	}
	f(modeltest.Fault{Route: modeltest.RouteRerank, Output: modeltest.OutBadIndex}, "fallback:bad_output")
	f(modeltest.Fault{Route: modeltest.RouteRerank, Output: modeltest.OutBadBody}, "fallback:bad_output")
	f(modeltest.Fault{Route: modeltest.RouteRerank, Status: 503}, "fallback:unavailable")
	f(modeltest.Fault{Route: modeltest.RouteRerank, Delay: modeltest.Duration(2 * time.Second)}, "fallback:timeout")
}

func TestJudgeWithSimulator(t *testing.T) {
	srv := newSim(t)
	s := NewJudgeScorer(newClient(t, model.RoleChat, srv.URL, model.APIVLLM), JudgeConfig{Concurrency: 3})
	got, err := s.Score(context.Background(), model.Document{Text: "red running shoes"},
		[]model.Document{{Text: "red dress"}, {Text: "red running shoes"}, {Text: "green hat"}})
	if err != nil {
		t.Fatal(err)
	}
	// P(yes) read from logprobs reproduces the simulator's graded scores (rounded to 1e-4 there).
	for i, want := range []float64{0.3, 0.9, 0.05} {
		if math.Abs(got[i]-want) > 1e-3 {
			t.Fatalf("scores %v", got)
		}
	}
	r := newTestReranker(t, testConfig(), s, nil)
	res, _ := run(t, r, matchReq(`{`+qRed+`,"size":3}`))
	if ids(t, res.Body) != "4,3,6" || res.Status != StatusApplied || total(srv.Calls()) != 3+6 {
		t.Fatalf("ids %s status %s calls %v", ids(t, res.Body), res.Status, srv.Calls())
	}
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}
