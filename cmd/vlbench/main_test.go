package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	badMix := filepath.Join(dir, "mix.ndjson")
	if err := os.WriteFile(badMix, []byte("{\"path\":\"/\"}\n{\"path\":\"/x\",\"weight\":\"heavy\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badQrels := filepath.Join(dir, "q.qrels")
	if err := os.WriteFile(badQrels, []byte("q1 0 d1 1\nq1 0 d2 x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	queries := filepath.Join(dir, "q.ndjson")
	if err := os.WriteFile(queries, []byte(`{"id":"q1","text":"x"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := func(run func([]string) error, args []string, want string) {
		t.Helper()
		err := run(args)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v: err %v, want %q", args, err, want)
		}
	}
	f(runLoad, nil, "no targets")
	t.Setenv("VLPROXY_MODEL_URL", "")
	t.Setenv("VLPROXY_EMBED_URL", "")
	f(runEnrich, []string{"-index", "p", "-keywords=false", "-pdf-field", "spec", "-video-field", "video"}, "-video-field needs -model-url or -embed-url")
	f(runEnrich, []string{"-index", "p", "-model-url", "http://127.0.0.1:1", "-video-field", "video", "-video-fps", "60"}, "cannot sample 60 frames per second")
	f(runLoad, []string{"-target", "nginx"}, `target "nginx": cannot parse URL`)
	f(runLoad, []string{"-target", "es=http://192.0.2.1:9200"}, "not a loopback address (pass -allow-remote")
	f(runLoad, []string{"-target", "a=http://127.0.0.1:1", "-mix", badMix}, badMix+":2: cannot parse mix entry")
	f(runLoad, []string{"-target", "a=http://127.0.0.1:1", "-pid", "a"}, `want name=PID, got "a"`)
	f(runLoad, []string{"-target", "a=http://127.0.0.1:1", "extra"}, `unexpected argument "extra"`)
	f(runEval, []string{"-queries", queries, "-qrels", badQrels}, badQrels+`:2: relevance "x" is not an integer`)
	f(runEval, []string{"-queries", queries}, "-queries and -qrels are required")
	f(runEval, []string{"-queries", queries, "-qrels", badQrels, "-url", "http://10.1.1.1:9200"}, "not a loopback address")
	f(runPassthrough, []string{"-target", "a=http://127.0.0.1:1", "-levels", "10,abc"}, `-levels: "abc" is not a percentage`)
	f(runIndex, nil, "give -file CATALOGUE or -fashion")
	f(runFakeES, []string{"-hits", "-1"}, "hits must be >= 0")
	f(runSection, []string{"-name", "x"}, "-name and -file are required")
}
