package faults

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

func hitIDs(t testing.TB, body []byte) []string {
	t.Helper()
	var r struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("cannot decode a search response: %v: %s", err, tail(string(body), 300))
	}
	var ids []string
	for _, h := range r.Hits.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

// TestModelKilledMidCall: the chat model server dies while keyword generation calls are in
// flight, then the rerank server dies while rerank calls are in flight. Every search still
// succeeds: the rewrite falls back to a plain multi_match on the text, the rerank to ES order
// (the very hits the node returns for the same query), both visible in the status headers, and
// the answers come when the connection drops, not when the budget runs out. Searches after the
// deaths fall back the same way.
func TestModelKilledMidCall(t *testing.T) {
	url := testenv.URL(t)
	index := shopIndex(t, url)
	slow := modeltest.Latency{Base: modeltest.Duration(1500 * time.Millisecond)}
	chat := modeltest.NewServer(modeltest.Config{Latency: slow})
	defer chat.Close()
	rr := modeltest.NewServer(modeltest.Config{})
	defer rr.Close()
	const budget = 8 * time.Second
	p := startVLProxy(t, "-upstream", url, "-model-url", chat.URL, "-rerank-url", rr.URL, "-rerank-scorer", "api",
		"-model-timeout", budget.String(), "-rewrite-timeout", budget.String(), "-rerank-timeout", budget.String(),
		"-result-cache-size", "0", "-keyword-cache-size", "0", "-score-cache-size", "0")
	c := newClient(30 * time.Second)
	direct := func(body string) []string {
		return hitIDs(t, must(t, c, "POST", url+"/"+index+"/_search", []byte(body)).Body)
	}

	// wave sends n searches at once, kills sim once it has calls in flight (when kill is set), and
	// returns the replies.
	wave := func(n int, body func(i int) string, kill *modeltest.Server) []reply {
		out := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = call(c, "POST", p.URL+"/"+index+"/_search", []byte(body(i)), "X-VLProxy-Rerank", "on")
			}()
		}
		if kill != nil {
			deadline := time.Now().Add(budget / 2)
			for kill.InFlight() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // let the other calls of the wave arrive
			if got := kill.InFlight(); got == 0 {
				t.Errorf("no model call was in flight when the server was killed")
			} else {
				t.Logf("killing the model server with %d calls in flight", got)
			}
			kill.Close()
		}
		wg.Wait()
		return out
	}
	check := func(phase string, rs []reply, rewrite, rerank func(string) bool, wantIDs func(i int) []string) {
		t.Helper()
		statuses := map[string]int{}
		var slowest time.Duration
		for i, r := range rs {
			slowest = max(slowest, r.Took)
			if r.Err != nil || r.Status != 200 {
				t.Errorf("%s: search %d failed: %s", phase, i, describe(r))
				continue
			}
			rw, rk := r.Header.Get("X-VLProxy-Rewrite"), r.Header.Get("X-VLProxy-Rerank")
			statuses["rewrite="+rw+" rerank="+rk]++
			if !rewrite(rw) || !rerank(rk) {
				t.Errorf("%s: search %d: X-VLProxy-Rewrite %q, X-VLProxy-Rerank %q", phase, i, rw, rk)
			}
			if want := wantIDs(i); want != nil {
				if got := hitIDs(t, r.Body); !slices.Equal(got, want) {
					t.Errorf("%s: search %d: hits %v, want the node's order %v", phase, i, got, want)
				}
			}
			if r.Took >= budget {
				t.Errorf("%s: search %d took %s: the budget (%s) ran out instead of the dead connection being noticed", phase, i, r.Took, budget)
			}
		}
		t.Logf("%s: %d searches, statuses %v, slowest %s", phase, len(rs), statuses, slowest.Round(time.Millisecond))
	}
	fallback := func(s string) bool { return strings.HasPrefix(s, "fallback:") }
	applied := func(s string) bool { return s == "applied" }
	skipped := func(s string) bool { return s == "skipped" }

	// 1. The chat model dies mid-rewrite; the rerank server is alive. Each wave has its own
	// texts, so no cache (keywords, scores) answers for a dead model.
	text := func(wave string) func(i int) string {
		return func(i int) string {
			return fmt.Sprintf(`{"query":{"multimodal":{"text":"red dress %s%d","fields":["title"]}},"size":5}`, wave, i)
		}
	}
	check("chat model killed mid-rewrite", wave(12, text("a"), chat), fallback, applied, func(int) []string { return nil })
	check("after the chat model's death", wave(6, text("b"), nil), fallback, applied, func(int) []string { return nil })

	// 2. The rerank server dies mid-rerank: ES order comes back. The extra word matches no
	// document, so the hits and their order are the node's for the first words.
	if err := rr.SetConfig(modeltest.Config{Latency: slow}); err != nil {
		t.Fatal(err)
	}
	words := []string{"red", "dress", "blue denim", "white"}
	plain := func(wave string) func(i int) string {
		return func(i int) string {
			return fmt.Sprintf(`{"query":{"match":{"title":"%s zz%s%d"}},"size":5}`, words[i%4], wave, i)
		}
	}
	want := make([][]string, 4)
	for i := range want {
		want[i] = direct(plain("direct")(i))
	}
	order := func(i int) []string { return want[i%4] }
	check("rerank server killed mid-rerank", wave(12, plain("c"), rr), skipped, fallback, order)
	check("after the rerank server's death", wave(6, plain("d"), nil), skipped, fallback, order)
}
