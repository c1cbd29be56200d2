package ui

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// variantStats are one variant's experiment metrics, summed from the Prometheus text that
// proxy/experiment writes (vlproxy_experiment_*).
type variantStats struct {
	Requests         float64            `json:"requests"`
	LatencyMeanMS    float64            `json:"latency_mean_ms"`
	Compared         float64            `json:"compared"`
	Top1Changed      float64            `json:"top1_changed"`
	Top1ChangeRate   float64            `json:"top1_change_rate"`
	OverlapMean      float64            `json:"overlap_mean"`
	DisplacementMean float64            `json:"displacement_mean"`
	RerankStatus     map[string]float64 `json:"rerank_status"`

	latencySum, overlapSum, overlapN, displSum, displN float64
}

// experimentMetrics reads the vlproxy_experiment_* series out of Prometheus text:
// experiment → variant → stats. Lines it does not understand are skipped.
func experimentMetrics(text []byte) map[string]map[string]*variantStats {
	out := map[string]map[string]*variantStats{}
	for len(text) > 0 {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte("\n"))
		if !bytes.HasPrefix(line, []byte("vlproxy_experiment_")) {
			continue
		}
		name, labels, value, ok := parseSample(string(line))
		if !ok {
			continue
		}
		exp, variant := labels["experiment"], labels["variant"]
		if exp == "" || variant == "" {
			continue
		}
		if out[exp] == nil {
			out[exp] = map[string]*variantStats{}
		}
		s := out[exp][variant]
		if s == nil {
			s = &variantStats{RerankStatus: map[string]float64{}}
			out[exp][variant] = s
		}
		switch name {
		case "vlproxy_experiment_request_duration_seconds_count":
			s.Requests = value
		case "vlproxy_experiment_request_duration_seconds_sum":
			s.latencySum = value
		case "vlproxy_experiment_rerank_compared_total":
			s.Compared = value
		case "vlproxy_experiment_rerank_top1_changed_total":
			s.Top1Changed = value
		case "vlproxy_experiment_rerank_topk_overlap_ratio_sum":
			s.overlapSum = value
		case "vlproxy_experiment_rerank_topk_overlap_ratio_count":
			s.overlapN = value
		case "vlproxy_experiment_rerank_rank_displacement_sum":
			s.displSum = value
		case "vlproxy_experiment_rerank_rank_displacement_count":
			s.displN = value
		case "vlproxy_experiment_rerank_status_total":
			s.RerankStatus[labels["status"]] += value
		}
	}
	for _, vs := range out {
		for _, s := range vs {
			if s.Requests > 0 {
				s.LatencyMeanMS = s.latencySum / s.Requests * 1000
			}
			if s.Compared > 0 {
				s.Top1ChangeRate = s.Top1Changed / s.Compared
			}
			if s.overlapN > 0 {
				s.OverlapMean = s.overlapSum / s.overlapN
			}
			if s.displN > 0 {
				s.DisplacementMean = s.displSum / s.displN
			}
		}
	}
	return out
}

// parseSample splits one sample line, `name{k="v",...} value [timestamp]`, with Prometheus
// label escapes (\\, \", \n).
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	labels = map[string]string{}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return "", nil, 0, false
	}
	name, rest := line[:i], line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if rest == "" {
				return "", nil, 0, false
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq <= 0 {
				return "", nil, 0, false
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest, closed = rest[j+1:], true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return "", nil, 0, false
			}
			labels[key] = v.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", nil, 0, false
	}
	f, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) { // JSON has no NaN; no counter is one
		return "", nil, 0, false
	}
	return name, labels, f, true
}
