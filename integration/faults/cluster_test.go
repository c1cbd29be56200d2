package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/testenv"
)

// startCluster starts a 2-node cluster for one test, or skips like testenv.URL does when the
// launcher is not built (and fails under CI=true / REQUIRE_OPENSEARCH=1).
func startCluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	began := time.Now()
	c, err := testenv.StartCluster(context.Background(), testenv.ClusterOptions{Nodes: 2})
	if err != nil {
		if errors.Is(err, testenv.ErrNotBuilt) && os.Getenv("CI") != "true" && os.Getenv(testenv.EnvRequire) != "1" {
			t.Skipf("testenv: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("cannot stop the cluster: %v", err)
		}
	})
	t.Logf("cluster %s: 2 nodes up in %s (%s)", c.Name, time.Since(began).Round(time.Millisecond), strings.Join(c.URLs(), ", "))
	return c
}

// write is one acknowledged (or refused) document write, identified by its marker field.
type write struct {
	marker string
	id     string // the _id the node acknowledged ("" when not acknowledged)
	acked  bool
}

// TestNodeKilledUnderLoad: a 2-node cluster (index with 1 replica) behind one vlproxy with both
// nodes as upstreams; open-loop reads and writes, and kill -9 of the data node in the middle.
// No read may fail (idempotent reads are retried on the other node); every write is either
// acknowledged and then present exactly once, or answered with an error and present at most
// once. Explicit-id creates and auto-id POSTs (single and _bulk) would show a retry of a
// non-idempotent request as a 409 or as a duplicated marker.
func TestNodeKilledUnderLoad(t *testing.T) {
	cl := startCluster(t)
	direct := cl.Nodes[0].URL
	c := newClient(60 * time.Second)
	const index = "faults-kill"
	must(t, c, "PUT", direct+"/"+index, []byte(`{"settings":{"number_of_shards":2,"number_of_replicas":1},
		"mappings":{"properties":{"marker":{"type":"keyword"},"kind":{"type":"keyword"},"n":{"type":"integer"}}}}`))
	must(t, c, "GET", direct+"/_cluster/health/"+index+"?wait_for_status=green&timeout=60s", nil)
	var seed strings.Builder
	for i := range 20 {
		fmt.Fprintf(&seed, "{\"index\":{\"_id\":\"seed-%d\"}}\n{\"marker\":\"seed-%d\",\"kind\":\"seed\",\"n\":%d}\n", i, i, i)
	}
	if r := must(t, c, "POST", direct+"/"+index+"/_bulk?refresh=true", []byte(seed.String())); strings.Contains(string(r.Body), `"errors":true`) {
		t.Fatalf("seed bulk: %s", r.Body)
	}
	shards := must(t, c, "GET", direct+"/_cat/shards/"+index+"?h=shard,prirep,state,node", nil)
	t.Logf("shards before the kill:\n%s", shards.Body)

	// Active checks every second, so they run during the load: the dead node is found at once
	// by its refused connections (passive ejection) and three checks later by the checker. On a
	// starved machine the survivor has been seen to miss a check while serving; one miss no
	// longer takes it out, and were both out, requests would still go to them (fail open).
	p := startVLProxy(t, "-upstream", strings.Join(cl.URLs(), ","),
		"-health-check-interval", "1s", "-result-cache-size", "0",
		"-request-timeout", "30s", "-upstream-timeout", "20s", "-max-retries", "2")
	base := p.URL + "/" + index

	const (
		n        = 640
		interval = 10 * time.Millisecond // 100 requests/s for 6.4 s
		killAt   = 2 * time.Second
	)
	type result struct {
		kind   string
		read   bool
		reply  reply
		writes []write // what the request tried to write, with acknowledgements
	}
	results := make([]result, n)
	killed := make(chan time.Time, 1)
	victim := cl.Nodes[1]
	timer := time.AfterFunc(killAt, func() {
		if err := victim.Kill(); err != nil {
			t.Errorf("kill -9: %v", err)
		}
		killed <- time.Now()
	})
	defer timer.Stop()
	began := time.Now()
	openLoop(n, interval, func(i int) {
		r := &results[i]
		switch i % 8 {
		case 0:
			r.kind, r.read = "GET _search", true
			r.reply = call(c, "GET", base+"/_search", []byte(`{"query":{"match_all":{}},"size":3}`))
		case 1:
			r.kind, r.read = "GET _doc", true
			r.reply = call(c, "GET", fmt.Sprintf("%s/_doc/seed-%d", base, i%20), nil)
		case 2:
			r.kind, r.read = "POST _count", true
			r.reply = call(c, "POST", base+"/_count", []byte(`{"query":{"term":{"kind":"seed"}}}`))
		case 3:
			r.kind, r.read = "POST _search", true
			r.reply = call(c, "POST", base+"/_search", []byte(`{"query":{"term":{"kind":"seed"}},"size":1}`))
		case 4:
			m := fmt.Sprintf("put-%d", i)
			r.kind, r.writes = "PUT _doc/id", []write{{marker: m}}
			r.reply = call(c, "PUT", base+"/_doc/"+m, fmt.Appendf(nil, `{"marker":%q,"kind":"put","n":%d}`, m, i))
			if r.reply.Err == nil && (r.reply.Status == 200 || r.reply.Status == 201) {
				r.writes[0].acked, r.writes[0].id = true, m
			}
		case 5:
			m := fmt.Sprintf("create-%d", i)
			r.kind, r.writes = "PUT _create/id", []write{{marker: m}}
			r.reply = call(c, "PUT", base+"/_create/"+m, fmt.Appendf(nil, `{"marker":%q,"kind":"create","n":%d}`, m, i))
			if r.reply.Err == nil && r.reply.Status == 201 {
				r.writes[0].acked, r.writes[0].id = true, m
			}
		case 6:
			m := fmt.Sprintf("auto-%d", i)
			r.kind, r.writes = "POST _doc", []write{{marker: m}}
			r.reply = call(c, "POST", base+"/_doc", fmt.Appendf(nil, `{"marker":%q,"kind":"auto","n":%d}`, m, i))
			if r.reply.Err == nil && r.reply.Status == 201 {
				var a struct {
					ID string `json:"_id"`
				}
				if json.Unmarshal(r.reply.Body, &a) == nil && a.ID != "" {
					r.writes[0].acked, r.writes[0].id = true, a.ID
				}
			}
		case 7:
			r.kind = "POST _bulk"
			var b strings.Builder
			for j := range 3 {
				m := fmt.Sprintf("bulk-%d-%d", i, j)
				r.writes = append(r.writes, write{marker: m})
				fmt.Fprintf(&b, "{\"index\":{}}\n{\"marker\":%q,\"kind\":\"bulk\",\"n\":%d}\n", m, i)
			}
			m := fmt.Sprintf("bulkcreate-%d", i)
			r.writes = append(r.writes, write{marker: m})
			fmt.Fprintf(&b, "{\"create\":{\"_id\":%q}}\n{\"marker\":%q,\"kind\":\"bulk\",\"n\":%d}\n", m, m, i)
			r.reply = call(c, "POST", base+"/_bulk", []byte(b.String()))
			if r.reply.Err == nil && r.reply.Status == 200 {
				var br struct {
					Items []map[string]struct {
						ID     string `json:"_id"`
						Status int    `json:"status"`
					} `json:"items"`
				}
				if json.Unmarshal(r.reply.Body, &br) == nil && len(br.Items) == len(r.writes) {
					for j, it := range br.Items {
						for _, v := range it {
							if v.Status == 200 || v.Status == 201 {
								r.writes[j].acked, r.writes[j].id = true, v.ID
							}
						}
					}
				}
			}
		}
	})
	loadTime := time.Since(began)
	var killTime time.Time
	select {
	case killTime = <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the node kill never happened")
	}
	logs := strings.Split(p.log.String(), "\n")
	count := func(msg, url string) (n int) {
		for _, l := range logs {
			if strings.Contains(l, msg) && strings.Contains(l, `"upstream":"`+url+`"`) {
				n++
			}
		}
		return n
	}
	t.Logf("health checker: killed node marked down %d time(s); survivor missed %d check(s), marked down %d time(s)",
		count("failed its health checks", victim.URL), count("missed a health check", cl.Nodes[0].URL),
		count("failed its health checks", cl.Nodes[0].URL))

	// Figures and read failures. A read that vlproxy failed (its own error, or no answer) is
	// a failure; a read the cluster itself answered with a node-departure error during the
	// failover (passed through unchanged, as every ES error is) is counted apart.
	var reads, readsFailed, readsESFailed, writeReqs, writeReqErr, transportErr, conflicts int
	var all []reply
	failedByKind := map[string][]string{}
	for _, r := range results {
		all = append(all, r.reply)
		if r.reply.Err != nil {
			transportErr++
		}
		if r.read {
			reads++
			ok := r.reply.Err == nil && r.reply.Status == 200
			if ok && r.kind == "GET _doc" && !strings.Contains(string(r.reply.Body), `"found":true`) {
				ok = false
			}
			if !ok && r.reply.Err == nil && clusterDepartureError(r.reply.Body) {
				readsESFailed++
				t.Logf("%s answered by the cluster with its own error during the failover: %s", r.kind, describe(r.reply))
			} else if !ok {
				readsFailed++
				failedByKind[r.kind] = append(failedByKind[r.kind], describe(r.reply))
			}
			continue
		}
		writeReqs++
		if r.reply.Err != nil || r.reply.Status >= 300 {
			writeReqErr++
			if r.reply.Status == 409 {
				conflicts++
			}
		}
	}

	// Count what the surviving node holds.
	must(t, c, "GET", direct+"/_cluster/health/"+index+"?wait_for_status=yellow&timeout=60s", nil)
	must(t, c, "POST", direct+"/"+index+"/_refresh", nil)
	found := map[string][]string{} // marker -> ids
	dump := must(t, c, "POST", direct+"/"+index+"/_search?size=10000", []byte(`{"_source":["marker"],"query":{"match_all":{}}}`))
	var sr struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					Marker string `json:"marker"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(dump.Body, &sr); err != nil {
		t.Fatalf("cannot decode the dump: %v", err)
	}
	for _, h := range sr.Hits.Hits {
		found[h.Source.Marker] = append(found[h.Source.Marker], h.ID)
	}
	var docsTried, docsAcked, ackedFound, ackedLost, errPresent, dups int
	var problems []string
	for _, r := range results {
		for _, w := range r.writes {
			docsTried++
			ids := found[w.marker]
			if len(ids) > 1 {
				dups++
				problems = append(problems, fmt.Sprintf("%s %s: %d copies %v (status %s)", r.kind, w.marker, len(ids), ids, describe(r.reply)))
			}
			if w.acked {
				docsAcked++
				if len(ids) == 1 && ids[0] == w.id {
					ackedFound++
				} else {
					ackedLost++
					problems = append(problems, fmt.Sprintf("%s %s: acknowledged as _id %s, found %v", r.kind, w.marker, w.id, ids))
				}
			} else if len(ids) > 0 {
				errPresent++
			}
		}
	}
	retries := scrapeCounter(c, p.URL, "vlproxy_upstream_retries_total")

	t.Logf("load: %d requests in %s at %s intervals, node-1 killed (kill -9) %s after the start; statuses %s",
		n, loadTime.Round(time.Millisecond), interval, killTime.Sub(began).Round(time.Millisecond), countByStatus(all))
	t.Logf("reads: %d sent, %d failed by vlproxy, %d answered by the cluster with a node-departure error; vlproxy retries: %s",
		reads, readsFailed, readsESFailed, retries)
	t.Logf("writes: %d requests (%d answered with an error, %d of them 409), %d documents tried, %d acknowledged, %d acknowledged and found, %d acknowledged and lost, %d unacknowledged but present, %d duplicated; transport errors %d; documents in the index %d",
		writeReqs, writeReqErr, conflicts, docsTried, docsAcked, ackedFound, ackedLost, errPresent, dups, transportErr, len(sr.Hits.Hits))
	for k, v := range failedByKind {
		t.Errorf("%d failed %s reads, e.g. %s", len(v), k, strings.Join(v[:min(3, len(v))], "; "))
	}
	if transportErr > 0 {
		t.Errorf("%d requests got no HTTP answer from vlproxy", transportErr)
	}
	for _, p := range problems[:min(10, len(problems))] {
		t.Error(p)
	}
	if docsAcked == 0 || ackedFound < docsTried/2 {
		t.Errorf("only %d of %d documents acknowledged: the load did not exercise writes", docsAcked, docsTried)
	}
	if len(sr.Hits.Hits) != 20+ackedFound+errPresent {
		t.Errorf("index holds %d documents, want 20 seeds + %d acknowledged + %d unacknowledged present", len(sr.Hits.Hits), ackedFound, errPresent)
	}
}

// vlproxyErrorTypes are the error types vlproxy itself produces (proxy/errors.go).
var vlproxyErrorTypes = []string{"no_healthy_upstream_exception", "bad_gateway_exception", "timeout_exception",
	"upstream_connect_exception", "internal_proxy_exception"}

// clusterDepartureError reports whether body is an error of the cluster itself (not of vlproxy)
// caused by a node leaving: the search or get ran into the killed node between two phases.
func clusterDepartureError(body []byte) bool {
	s := string(body)
	for _, typ := range vlproxyErrorTypes {
		if strings.Contains(s, `"type":"`+typ+`"`) {
			return false
		}
	}
	for _, typ := range []string{"node_not_connected_exception", "node_disconnected_exception", "connect_transport_exception",
		"node_closed_exception", "no_shard_available_action_exception"} {
		if strings.Contains(s, `"type":"`+typ+`"`) {
			return true
		}
	}
	return false
}

func describe(r reply) string {
	if r.Err != nil {
		return "error " + r.Err.Error()
	}
	return fmt.Sprintf("%d %s", r.Status, tail(string(r.Body), 300))
}

// scrapeCounter reads one unlabelled series from vlproxy's Prometheus metrics ("?" when it
// cannot).
func scrapeCounter(c *http.Client, base, name string) string {
	r := call(c, "GET", base+"/_vlproxy/metrics", nil)
	if r.Err != nil || r.Status != 200 {
		return "?"
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(r.Body)
	if m == nil {
		return "0"
	}
	return string(m[1])
}
