package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// The suite wiring: capacity of every target, levels at fractions of the weakest, headline ratios.
func TestRunPassthroughWiring(t *testing.T) {
	cfg := DefaultPassthroughConfig()
	for _, name := range []string{"direct", "vlproxy", "nginx"} {
		cfg.Load.Targets = append(cfg.Load.Targets, Target{Name: name, URL: "http://" + startFake(t, DefaultFakeESConfig())})
	}
	// Every target is this process here; the CPU columns must still be filled in.
	cfg.Load.Pids = map[string]int{"vlproxy": os.Getpid(), "nginx": os.Getpid()}
	cfg.Load.Warmup = 50 * time.Millisecond
	cfg.Concurrency, cfg.Rounds = 4, 1
	cfg.CapacityDuration, cfg.LevelDuration = 300*time.Millisecond, 300*time.Millisecond
	cfg.Levels = []float64{10, 20}
	var log bytes.Buffer
	cfg.Log = &log
	res, err := RunPassthrough(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	weakest := math.Inf(1)
	for _, tr := range res.Capacity.Targets {
		weakest = math.Min(weakest, tr.Achieved)
	}
	if res.Weakest != weakest || weakest <= 0 {
		t.Fatalf("weakest %g, capacities give %g", res.Weakest, weakest)
	}
	if len(res.Levels) != 2 || res.Levels[0].Rate != math.Round(weakest*0.1) || res.Levels[1].Rate != math.Round(weakest*0.2) {
		t.Fatalf("levels %+v for weakest %g", res.Levels, weakest)
	}
	for _, l := range res.Levels {
		if len(l.Report.Targets) != 3 || l.Report.Mode != "open" {
			t.Fatalf("level report %+v", l.Report)
		}
		for _, tr := range l.Report.Targets {
			if tr.Requests == 0 || tr.OK != tr.Requests {
				t.Fatalf("level %g%% target %s: %d requests, %d ok", l.Percent, tr.Name, tr.Requests, tr.OK)
			}
		}
	}
	hs := res.Headlines()
	if len(hs) != 1 || hs[0].Proxy != "vlproxy" || !(hs[0].CapacityRatio > 0) || math.IsNaN(hs[0].CPURatio) {
		t.Fatalf("headlines %+v", hs)
	}
	if !strings.Contains(log.String(), "capacity vlproxy") {
		t.Fatalf("log %q", log.String())
	}
	var md bytes.Buffer
	res.WriteMarkdown(&md, ThisMachine(), nil, "")
	for _, want := range []string{"| vlproxy | ", "### Capacity", "| 10% | "} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestRunPassthroughDeadTarget(t *testing.T) {
	cfg := DefaultPassthroughConfig()
	cfg.Load.Targets = []Target{{Name: "direct", URL: "http://" + startFake(t, DefaultFakeESConfig())}, {Name: "nginx", URL: "http://127.0.0.1:1"}}
	cfg.Load.Warmup, cfg.Concurrency, cfg.Rounds, cfg.CapacityDuration = 0, 2, 1, 200*time.Millisecond
	_, err := RunPassthrough(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "target nginx answered no request successfully (errors: ") {
		t.Fatalf("err %v", err)
	}
}
