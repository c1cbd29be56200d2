// Package bench is the library behind vlbench: an open-loop load generator that measures latency
// from each request's scheduled send time into HDR histograms (load.go), request mixes (mix.go),
// per-process CPU accounting (cpu.go), reports in text, JSON, Markdown and SVG (report.go), the
// pass-through comparison against nginx (passthrough.go), relevance metrics with trec_eval
// semantics and a paired randomization test (metrics.go, eval.go, qrels.go), the catalogue loader
// built on olivere/elastic (catalogue.go, fashion.go) and a fake ES backend that costs less than
// the proxy it measures (fakees.go). It is never on the server's request path.
package bench
