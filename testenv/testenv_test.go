package testenv

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// call sends one request and returns the status and body; a transport error fails the test.
func call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, URL(t)+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		ct := "application/json"
		if strings.HasSuffix(path, "_bulk") || strings.Contains(path, "_bulk?") {
			ct = "application/x-ndjson"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// mustCall is call that also wants a 2xx status.
func mustCall(t *testing.T, method, path, body string) []byte {
	t.Helper()
	st, b := call(t, method, path, body)
	if st/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, st, b)
	}
	return b
}

// createIndex creates an index that is deleted when the test ends.
func createIndex(t *testing.T, name, body string) {
	t.Helper()
	mustCall(t, http.MethodPut, "/"+name, body)
	t.Cleanup(func() { call(t, http.MethodDelete, "/"+name, "") })
}

// ownNode reports whether the tests run against a node of this package's launcher (started
// here or by with-opensearch.sh), rather than some external cluster.
func ownNode(t *testing.T) bool {
	t.Helper()
	return gjson.GetBytes(mustCall(t, http.MethodGet, "/", ""), "cluster_name").String() == ClusterName
}

func texts(r gjson.Result) []string {
	var out []string
	for _, v := range r.Array() {
		out = append(out, v.String())
	}
	return out
}

func TestVersion(t *testing.T) {
	b := mustCall(t, http.MethodGet, "/", "")
	num := gjson.GetBytes(b, "version.number").String()
	if num == "" {
		t.Fatalf("GET / has no version.number: %s", b)
	}
	if !ownNode(t) {
		t.Skipf("external cluster %s runs version %s: not checking it", URL(t), num)
	}
	if dist := gjson.GetBytes(b, "version.distribution").String(); dist != "opensearch" || !strings.HasPrefix(num, "2.19.") {
		t.Fatalf("want OpenSearch 2.19.x, got %s %s", dist, num)
	}
}

func pluginNames(t *testing.T) []string {
	t.Helper()
	return texts(gjson.GetBytes(mustCall(t, http.MethodGet, "/_cat/plugins?format=json&s=component", ""), "#.component"))
}

func hasKNN(t *testing.T) bool {
	t.Helper()
	for _, p := range pluginNames(t) {
		// Our node lists classpath plugins by class name; a distribution says opensearch-knn.
		if p == "org.opensearch.knn.plugin.KNNPlugin" || p == "opensearch-knn" {
			return true
		}
	}
	return false
}

func TestPlugins(t *testing.T) {
	if !ownNode(t) {
		t.Skip("external cluster: its plugins are its own business")
	}
	got := pluginNames(t)
	for _, want := range []string{
		"org.opensearch.analysis.common.CommonAnalysisPlugin",
		"org.opensearch.index.mapper.MapperExtrasPlugin",
		"org.opensearch.index.reindex.ReindexPlugin",
		"org.opensearch.painless.PainlessPlugin",
		"org.opensearch.transport.Netty4Plugin",
	} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("plugin %s is not loaded; loaded: %v", want, got)
		}
	}
}

func TestAnalyzers(t *testing.T) {
	f := func(body string, want []string) {
		t.Helper()
		b := mustCall(t, http.MethodPost, "/_analyze", body)
		if got := texts(gjson.GetBytes(b, "tokens.#.token")); !reflect.DeepEqual(got, want) {
			t.Errorf("_analyze %s: got %q, want %q", body, got, want)
		}
	}
	f(`{"analyzer":"cjk","text":"東京都"}`, []string{"東京", "京都"})
	f(`{"analyzer":"cjk","text":"ワンピース"}`, []string{"ワン", "ンピ", "ピー", "ース"})
	// Tokenizers and filters from analysis-common, defined inline.
	f(`{"tokenizer":{"type":"ngram","min_gram":2,"max_gram":3},"text":"abcd"}`, []string{"ab", "abc", "bc", "bcd", "cd"})
	f(`{"tokenizer":"standard","filter":["lowercase",{"type":"edge_ngram","min_gram":1,"max_gram":3}],"text":"Dress"}`, []string{"d", "dr", "dre"})
}

func TestNgramIndex(t *testing.T) {
	createIndex(t, "testenv-ngram", `{
		"settings": {
			"index": {"max_ngram_diff": 1},
			"analysis": {
				"tokenizer": {"tri": {"type": "ngram", "min_gram": 2, "max_gram": 3}},
				"analyzer": {"grams": {"type": "custom", "tokenizer": "tri", "filter": ["lowercase"]}}
			}
		},
		"mappings": {"properties": {"title": {"type": "text", "analyzer": "grams"}}}
	}`)
	b := mustCall(t, http.MethodPost, "/testenv-ngram/_analyze", `{"analyzer":"grams","text":"Skirt"}`)
	want := []string{"sk", "ski", "ki", "kir", "ir", "irt", "rt"}
	if got := texts(gjson.GetBytes(b, "tokens.#.token")); !reflect.DeepEqual(got, want) {
		t.Fatalf("grams analyzer: got %q, want %q", got, want)
	}
	mustCall(t, http.MethodPost, "/testenv-ngram/_doc/1?refresh=true", `{"title":"Pleated skirt"}`)
	b = mustCall(t, http.MethodPost, "/testenv-ngram/_search", `{"query":{"match":{"title":"kirt"}}}`)
	if got := gjson.GetBytes(b, "hits.hits.#._id").String(); got != `["1"]` {
		t.Fatalf("ngram search for a partial word: got ids %s: %s", got, b)
	}
}

func TestPainlessExecute(t *testing.T) {
	b := mustCall(t, http.MethodPost, "/_scripts/painless/_execute", `{"script":{"source":"params.a + params.b","params":{"a":1,"b":1}}}`)
	if got := string(b); got != `{"result":"2"}` {
		t.Fatalf("painless 1+1: got %s", got)
	}
}

func TestUpdateAndDeleteByQuery(t *testing.T) {
	createIndex(t, "testenv-ubq", `{"mappings":{"properties":{"tag":{"type":"keyword"},"n":{"type":"integer"}}}}`)
	mustCall(t, http.MethodPost, "/testenv-ubq/_bulk?refresh=true",
		`{"index":{"_id":"1"}}`+"\n"+`{"tag":"x","n":1}`+"\n"+
			`{"index":{"_id":"2"}}`+"\n"+`{"tag":"x","n":2}`+"\n"+
			`{"index":{"_id":"3"}}`+"\n"+`{"tag":"y","n":3}`+"\n")
	b := mustCall(t, http.MethodPost, "/testenv-ubq/_update_by_query?refresh=true",
		`{"query":{"term":{"tag":"x"}},"script":{"lang":"painless","source":"ctx._source.n += params.d","params":{"d":10}}}`)
	if got := gjson.GetBytes(b, "updated").Int(); got != 2 {
		t.Fatalf("_update_by_query updated %d docs, want 2: %s", got, b)
	}
	b = mustCall(t, http.MethodPost, "/testenv-ubq/_search", `{"sort":[{"n":"asc"}],"_source":false,"docvalue_fields":["n"]}`)
	if got := gjson.GetBytes(b, "hits.hits.#.fields.n.0").String(); got != `[3,11,12]` {
		t.Fatalf("after _update_by_query, n sorted: got %s, want [3,11,12]", got)
	}
	b = mustCall(t, http.MethodPost, "/testenv-ubq/_delete_by_query?refresh=true", `{"query":{"term":{"tag":"y"}}}`)
	if got := gjson.GetBytes(b, "deleted").Int(); got != 1 {
		t.Fatalf("_delete_by_query deleted %d docs, want 1: %s", got, b)
	}
	b = mustCall(t, http.MethodGet, "/testenv-ubq/_count", "")
	if got := gjson.GetBytes(b, "count").Int(); got != 2 {
		t.Fatalf("count after _delete_by_query: got %d, want 2", got)
	}
}

func TestKNNLucene(t *testing.T) {
	if !hasKNN(t) {
		t.Skip("the k-NN plugin is not loaded (built without target/knn, or an external cluster without it)")
	}
	createIndex(t, "testenv-knn", `{
		"settings": {"index": {"knn": true}},
		"mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 2,
			"method": {"name": "hnsw", "engine": "lucene", "space_type": "l2"}}}}
	}`)
	mustCall(t, http.MethodPost, "/testenv-knn/_bulk?refresh=true",
		`{"index":{"_id":"a"}}`+"\n"+`{"v":[0,0]}`+"\n"+
			`{"index":{"_id":"b"}}`+"\n"+`{"v":[5,5]}`+"\n"+
			`{"index":{"_id":"c"}}`+"\n"+`{"v":[1,1]}`+"\n")
	b := mustCall(t, http.MethodPost, "/testenv-knn/_search", `{"size":2,"query":{"knn":{"v":{"vector":[0.9,0.9],"k":2}}}}`)
	if got := gjson.GetBytes(b, "hits.hits.#._id").String(); got != `["c","a"]` {
		t.Fatalf("knn k=2 near [0.9,0.9]: got ids %s, want [\"c\",\"a\"]: %s", got, b)
	}
}

// TestKNNRefusesNativeEngines checks the launcher's guard: mappings that would need the absent
// FAISS/NMSLIB libraries get a 400 naming the field, and the node stays up.
func TestKNNRefusesNativeEngines(t *testing.T) {
	if !ownNode(t) || !hasKNN(t) {
		t.Skip("the guard belongs to this package's launcher with k-NN loaded")
	}
	f := func(path, body, wantReason string) {
		t.Helper()
		st, b := call(t, http.MethodPut, path, body)
		if st != http.StatusBadRequest {
			call(t, http.MethodDelete, path, "")
			t.Fatalf("PUT %s %s: status %d, want 400: %s", path, body, st, b)
		}
		if r := gjson.GetBytes(b, "error.reason").String(); !strings.HasPrefix(r, wantReason) {
			t.Errorf("PUT %s: reason %q, want it to start with %q", path, r, wantReason)
		}
	}
	vec := func(method string) string {
		return `{"type":"knn_vector","dimension":2` + method + `}`
	}
	f("/testenv-knn-faiss", `{"settings":{"index.knn":true},"mappings":{"properties":{"emb":`+
		vec(`,"method":{"name":"hnsw","engine":"faiss","space_type":"l2"}`)+`}}}`,
		"knn_vector field [emb] uses engine [faiss]")
	f("/testenv-knn-default", `{"settings":{"index":{"knn":true}},"mappings":{"properties":{"img":{"properties":{"emb":`+
		vec("")+`}}}}}`,
		"knn_vector field [img.emb] has no method in an index with index.knn=true")
	f("/testenv-knn-noengine", `{"mappings":{"properties":{"emb":`+vec(`,"method":{"name":"hnsw"}`)+`}}}`,
		"knn_vector field [emb] has a method without \"engine\"")
	f("/_index_template/testenv-knn-tmpl", `{"index_patterns":["testenv-knn-tmpl-*"],"template":{"mappings":{"properties":{"emb":`+
		vec(`,"method":{"name":"hnsw","engine":"nmslib"}`)+`}}}}`,
		"knn_vector field [emb] uses engine [nmslib]")

	// Allowed: a flat field in an index without index.knn, and lucene in a knn index, also
	// when added by put mapping.
	createIndex(t, "testenv-knn-flat", `{"mappings":{"properties":{"emb":`+vec("")+`}}}`)
	createIndex(t, "testenv-knn-put", `{"settings":{"index.knn":true},"mappings":{"properties":{"emb":`+
		vec(`,"method":{"name":"hnsw","engine":"lucene"}`)+`}}}`)
	f("/testenv-knn-put/_mapping", `{"properties":{"emb2":`+vec(`,"method":{"name":"hnsw","engine":"faiss"}`)+`}}`,
		"knn_vector field [emb2] uses engine [faiss]")
	mustCall(t, http.MethodPut, "/testenv-knn-put/_mapping", `{"properties":{"emb3":`+
		vec(`,"method":{"name":"hnsw","engine":"lucene"}`)+`}}`)
	mustCall(t, http.MethodGet, "/_cluster/health?wait_for_status=yellow&timeout=5s", "")
}

// TestDeprecationWarningHeader: deprecations reach clients as Warning headers, as on a real node
// (the launcher routes the deprecation logger to HeaderWarningAppender).
func TestDeprecationWarningHeader(t *testing.T) {
	resp, err := http.Get(URL(t) + "/_cat/master")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	const want = `"[GET /_cat/master] is deprecated! Use [GET /_cat/cluster_manager] instead."`
	if w := resp.Header.Get("Warning"); !strings.HasPrefix(w, "299 OpenSearch-") || !strings.HasSuffix(w, want) {
		if !ownNode(t) {
			t.Skipf("external cluster: Warning %q", w)
		}
		t.Fatalf("GET /_cat/master: Warning header %q, want 299 OpenSearch-... %s", w, want)
	}
}

func TestNewIndexIsGreen(t *testing.T) {
	if !ownNode(t) {
		t.Skip("external cluster: replica defaults are its own")
	}
	createIndex(t, "testenv-green", `{}`)
	b := mustCall(t, http.MethodGet, "/_cluster/health/testenv-green?wait_for_status=green&timeout=10s", "")
	if got := gjson.GetBytes(b, "status").String(); got != "green" {
		t.Fatalf("a new index on the one-node cluster: status %s, want green: %s", got, b)
	}
}

func TestJavaArgs(t *testing.T) {
	f := func(o Options, want ...string) {
		t.Helper()
		o.Dir = "/d" // no target/cds-test.jsa there
		if got := javaArgs(o, "/h"); !reflect.DeepEqual(got, want) {
			t.Errorf("javaArgs(%+v):\n got %q\nwant %q", o, got, want)
		}
	}
	const cp = "/d/target/launcher.jar:/d/target/lib/*:/d/target/knn/*"
	f(Options{Profile: ProfileTest},
		"@/d/jvm/common.options", "@/d/jvm/test.options", "-cp", cp, launcherClass,
		"--home", "/h", "--cluster-name", ClusterName, "--http-port", "0", "--transport-port", "0", "--stdin-watchdog")
	f(Options{Profile: ProfileBench, NoKNN: true, JVMArgs: []string{"-Xmx2g"}},
		"@/d/jvm/common.options", "@/d/jvm/bench.options", "-Xmx2g", "-cp", cp, launcherClass,
		"--home", "/h", "--cluster-name", ClusterName, "--http-port", "0", "--transport-port", "0", "--stdin-watchdog", "--no-knn")
	f(Options{Profile: ProfileTest, HTTPPort: 9200, Settings: map[string]string{"b": "2", "a": "1"}},
		"@/d/jvm/common.options", "@/d/jvm/test.options", "-cp", cp, launcherClass,
		"--home", "/h", "--cluster-name", ClusterName, "--http-port", "9200", "--transport-port", "0", "--stdin-watchdog", "-E", "a=1", "-E", "b=2")
}

func TestOptionErrors(t *testing.T) {
	f := func(o Options, want string) {
		t.Helper()
		_, err := o.withDefaults()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: got error %v, want one containing %q", o, err, want)
		}
	}
	f(Options{Dir: "/d", Profile: "fast"}, `unknown profile "fast"`)
	f(Options{Dir: "/d", HTTPPort: 70000}, "HTTPPort 70000 is out of range")
	if _, err := Start(context.Background(), Options{Dir: t.TempDir()}); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Start on an empty dir: got %v, want ErrNotBuilt", err)
	}
}

// TestStartFailureShowsLog starts a node with a bad setting: Start must fail quickly, say why
// (from the node log) and leave neither the JVM nor the home directory behind.
func TestStartFailureShowsLog(t *testing.T) {
	if err := checkBuilt(mustDefaults(t).Dir); err != nil {
		t.Skip(err)
	}
	_, err := Start(context.Background(), Options{NoKNN: true, Settings: map[string]string{"vlproxy.no.such.setting": "1"}})
	if err == nil {
		t.Fatal("Start with an unknown setting succeeded")
	}
	if !strings.Contains(err.Error(), "unknown setting [vlproxy.no.such.setting]") {
		t.Fatalf("the error lacks the node's reason: %v", err)
	}
}

// TestStartStop starts a second node and checks that Stop leaves nothing behind.
func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second JVM")
	}
	if err := checkBuilt(mustDefaults(t).Dir); err != nil {
		t.Skip(err)
	}
	n, err := Start(context.Background(), Options{NoKNN: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second node at %s, yellow after %v", n.URL, n.StartupTime)
	pid, home := n.PID(), n.Home
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("JVM %d still exists after Stop (kill -0: %v)", pid, err)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("home %s still exists after Stop (stat: %v)", home, err)
	}
	if err := n.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func mustDefaults(t *testing.T) Options {
	t.Helper()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestRedisKillRestart(t *testing.T) {
	r := StartRedisT(t)
	ctx := context.Background()
	if err := Ping(ctx, r.Addr); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if err := Ping(ctx, r.Addr); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, r.Addr); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}
