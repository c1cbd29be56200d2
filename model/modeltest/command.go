package modeltest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// RunCommand runs the simulator standalone until SIGINT/SIGTERM
// (`vlbench fake-model -listen 127.0.0.1:8000 -latency 20ms`).
func RunCommand(args []string) error {
	fs := flag.NewFlagSet("fake-model", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on (env VLBENCH_FAKE_MODEL_LISTEN)")
	model := fs.String("model", "", "served model name; requests naming another model get 404 (default "+DefaultModel+")")
	latency := fs.Duration("latency", 0, "simulated model time per inference request: fixed value, uniform minimum or lognormal median")
	jitter := fs.Duration("latency-jitter", 0, "width of the uniform latency distribution")
	dist := fs.String("latency-dist", "fixed", "latency distribution: fixed, uniform or lognormal")
	sigma := fs.Float64("latency-sigma", 0.5, "shape of the lognormal latency distribution")
	errRate := fs.Float64("error-rate", 0, "fraction of inference requests answered with a 500 in vLLM's error shape")
	rules := fs.String("rules", "", "JSON or YAML file with a modeltest.Config (rules, images, score_rules, faults, …); flags override it")
	keyEnv := fs.String("api-key-env", "", "name of an environment variable holding an API key to require on /v1/* (like vllm --api-key)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if v := os.Getenv("VLBENCH_FAKE_MODEL_LISTEN"); v != "" && !flagSet(fs, "listen") {
		*listen = v
	}
	var cfg Config
	if *rules != "" {
		var err error
		if cfg, err = LoadConfig(*rules); err != nil {
			return err
		}
	}
	if *model != "" {
		cfg.Model = *model
	}
	if flagSet(fs, "latency") || flagSet(fs, "latency-dist") {
		cfg.Latency = Latency{Dist: *dist, Base: Duration(*latency), Jitter: Duration(*jitter), Sigma: *sigma}
	}
	switch cfg.Latency.Dist {
	case "", "fixed", "uniform", "lognormal":
	default:
		return fmt.Errorf("-latency-dist: unknown distribution %q (want fixed, uniform or lognormal)", cfg.Latency.Dist)
	}
	if flagSet(fs, "error-rate") {
		cfg.ErrorRate = *errRate
	}
	if *keyEnv != "" {
		cfg.APIKey = os.Getenv(*keyEnv)
		if cfg.APIKey == "" {
			return fmt.Errorf("-api-key-env: environment variable %s is empty", *keyEnv)
		}
	}
	srv, err := Listen(*listen, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(os.Stderr, "fake model server %q listening on %s (latency %s %s, error rate %g)\n",
		srv.Config().Model, srv.URL, cfg.Latency.Dist, time.Duration(cfg.Latency.Base), cfg.ErrorRate)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// LoadConfig reads a Config from a JSON (.json) or YAML file.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("cannot read rules file: %w", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&cfg)
	} else {
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		err = dec.Decode(&cfg)
	}
	if err != nil {
		return cfg, fmt.Errorf("cannot parse rules file %s: %w", path, err)
	}
	return cfg, nil
}
