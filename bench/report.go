package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// FormatMicros renders a duration given in microseconds: 254µs, 1.21ms, 3.40s.
func FormatMicros(us float64) string {
	switch {
	case us <= 0:
		return "0"
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1000)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// OwnCPU returns the CPU µs per request of the process named like the target, or NaN.
func (t *TargetResult) OwnCPU() float64 {
	if v, ok := t.CPUPerReq[t.Name]; ok {
		return v
	}
	return math.NaN()
}

func cpuString(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func validity(t *TargetResult) string {
	if t.TargetRate == 0 {
		return "closed"
	}
	if t.Invalid {
		return "INVALID"
	}
	return "ok"
}

func errorsString(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	var total int64
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		total += m[k]
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// joinSorted formats every entry of m with f, in key order, joined by sep.
func joinSorted[V any](m map[string]V, sep string, f func(k string, v V) string) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, f(k, m[k]))
	}
	return strings.Join(parts, sep)
}

// WriteText writes the terminal table.
func WriteText(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "mode=%s", rep.Mode)
	if rep.Mode == "open" {
		fmt.Fprintf(w, " rate=%g/s workers=%d", rep.Rate, rep.Workers)
	} else {
		fmt.Fprintf(w, " connections=%d", rep.Workers)
	}
	fmt.Fprintf(w, " warmup=%s duration=%s rounds=%d mix=%s\n", rep.Warmup, rep.Duration, rep.Rounds, mixSummary(rep.Mix))
	fmt.Fprintln(w, "latency is measured from each request's scheduled send time (open loop) or send time (closed loop)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\ttarget/s\tachieved/s\tvalid\tn\terrors\tp50\tp90\tp99\tp99.9\tmax\tsvc p50\tCPU µs/req\tx p50\tx p99\tx CPU\t")
	first := rep.Targets[0]
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Name, t.TargetRate, t.Achieved,
			validity(t), t.Requests, t.Requests-t.OK, FormatMicros(t.Latency.P50), FormatMicros(t.Latency.P90),
			FormatMicros(t.Latency.P99), FormatMicros(t.Latency.P999), FormatMicros(t.Latency.Max),
			FormatMicros(t.Service.P50), cpuString(t.OwnCPU()), ratio(t.Latency.P50, first.Latency.P50),
			ratio(t.Latency.P99, first.Latency.P99), ratio(t.OwnCPU(), first.OwnCPU()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range rep.Targets {
		var extra []string
		if len(t.Errors) > 0 || t.Dropped > 0 {
			extra = append(extra, "errors: "+errorsString(t.Errors)+fmt.Sprintf(" dropped=%d", t.Dropped))
		}
		for _, k := range sortedKeys(t.ErrorSamples) {
			extra = append(extra, fmt.Sprintf("first %s error: %s", k, t.ErrorSamples[k]))
		}
		if len(t.CPUPerReq) > 0 {
			extra = append(extra, "CPU µs/req: "+joinSorted(t.CPUPerReq, " ", func(k string, v float64) string { return fmt.Sprintf("%s=%.1f", k, v) }))
		}
		if len(t.Headers) > 0 {
			h := joinSorted(t.Headers, " ", func(k string, v int64) string { return fmt.Sprintf("%s:%d", k, v) })
			extra = append(extra, fmt.Sprintf("headers: %s cache_hits=%d", h, t.CacheHits))
		}
		if len(t.Stages) > 0 {
			extra = append(extra, "Server-Timing: "+joinSorted(t.Stages, "; ", func(k string, s Percentiles) string {
				return fmt.Sprintf("%s p50=%s p99=%s", k, FormatMicros(s.P50), FormatMicros(s.P99))
			}))
		}
		if len(extra) > 0 {
			fmt.Fprintf(w, "%s: %s\n", t.Name, strings.Join(extra, " | "))
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteMarkdown writes the report as a Markdown table plus details.
func WriteMarkdown(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "Mode %s", rep.Mode)
	if rep.Mode == "open" {
		fmt.Fprintf(w, " at %g req/s per target (%d workers)", rep.Rate, rep.Workers)
	} else {
		fmt.Fprintf(w, " with %d connections", rep.Workers)
	}
	fmt.Fprintf(w, ", warm-up %s, duration %s, %d round(s), mix: %s.\n\n", rep.Warmup, rep.Duration, rep.Rounds, mixSummary(rep.Mix))
	fmt.Fprintln(w, "| target | target/s | achieved/s | valid | requests | errors | p50 | p90 | p99 | p99.9 | max | CPU µs/req | ×p50 | ×p99 | ×CPU |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	first := rep.Targets[0]
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t.Name, t.TargetRate,
			t.Achieved, validity(t), t.Requests, errorsString(t.Errors), FormatMicros(t.Latency.P50),
			FormatMicros(t.Latency.P90), FormatMicros(t.Latency.P99), FormatMicros(t.Latency.P999),
			FormatMicros(t.Latency.Max), cpuString(t.OwnCPU()), ratio(t.Latency.P50, first.Latency.P50),
			ratio(t.Latency.P99, first.Latency.P99), ratio(t.OwnCPU(), first.OwnCPU()))
	}
	fmt.Fprintf(w, "\nRatios (×) are against %s. Latency is measured from each request's scheduled send time.\n", first.Name)
	for _, t := range rep.Targets {
		var parts []string
		for _, k := range sortedKeys(t.ErrorSamples) {
			parts = append(parts, fmt.Sprintf("first %s error: `%s`", k, t.ErrorSamples[k]))
		}
		if t.Service.N > 0 {
			parts = append(parts, fmt.Sprintf("service time (sent→done) p50 %s p99 %s", FormatMicros(t.Service.P50), FormatMicros(t.Service.P99)))
		}
		oneDecimal := func(k string, v float64) string { return fmt.Sprintf("%s %.1f", k, v) }
		if len(t.CPUPerReq) > 0 {
			parts = append(parts, "CPU µs/req: "+joinSorted(t.CPUPerReq, ", ", oneDecimal))
		}
		if len(t.PeakRSSMiB) > 0 {
			parts = append(parts, "peak RSS MiB: "+joinSorted(t.PeakRSSMiB, ", ", oneDecimal))
		}
		if len(t.Headers) > 0 {
			parts = append(parts, "headers: "+joinSorted(t.Headers, ", ", func(k string, v int64) string { return fmt.Sprintf("`%s` ×%d", k, v) }))
		}
		if len(t.Stages) > 0 {
			parts = append(parts, "Server-Timing: "+joinSorted(t.Stages, "; ", func(k string, s Percentiles) string {
				return fmt.Sprintf("%s p50 %s p99 %s", k, FormatMicros(s.P50), FormatMicros(s.P99))
			}))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "- **%s**: %s\n", t.Name, strings.Join(parts, " · "))
		}
	}
	return nil
}

// SVGSeries is one latency-percentile curve.
type SVGSeries struct {
	Name  string
	Curve []CurvePoint
}

var svgColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// WriteSVG draws latency (log y) against percentile (x = log10(1/(1-q))) for each series.
func WriteSVG(w io.Writer, title string, series []SVGSeries) error {
	const W, H, L, R, T, B = 760.0, 440.0, 70.0, 160.0, 40.0, 50.0
	pw, ph := W-L-R, H-T-B
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Curve {
			if p.Micros > 0 {
				lo, hi = math.Min(lo, p.Micros), math.Max(hi, p.Micros)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	const xmax = 5.0
	xOf := func(q float64) float64 {
		x := xmax
		if q < 100 {
			x = math.Min(xmax, -math.Log10(1-q/100))
		}
		return L + x/xmax*pw
	}
	yOf := func(us float64) float64 {
		return T + ph - (math.Log10(math.Max(us, lo))-ylo)/(yhi-ylo)*ph
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15">%s</text>`+"\n", L, xmlEscape(title))
	for i, lbl := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		x := L + float64(i)/xmax*pw
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, T, x, T+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, T+ph+18, lbl)
	}
	for e := ylo; e <= yhi; e++ {
		y := yOf(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", L, y, L+pw, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", L-6, y+4, tickLabel(e))
	}
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", L, T, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">percentile</text>`+"\n", L+pw/2, H-10)
	fmt.Fprintf(&b, `<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">latency (log)</text>`+"\n", T+ph/2, T+ph/2)
	for i, s := range series {
		c := svgColors[i%len(svgColors)]
		var pts []string
		for _, p := range s.Curve {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(p.Percentile), yOf(p.Micros)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		ly := T + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", L+pw+12, ly, L+pw+32, ly, c)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f">%s</text>`+"\n", L+pw+38, ly+4, xmlEscape(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SeriesOf returns one SVG series per target of rep.
func SeriesOf(rep *Report, suffix string) []SVGSeries {
	var out []SVGSeries
	for _, t := range rep.Targets {
		out = append(out, SVGSeries{Name: t.Name + suffix, Curve: t.Curve})
	}
	return out
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// WriteJSONValue writes any result as indented JSON.
func WriteJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// tickLabel names the power of ten 10^e µs compactly: 10µs, 1ms, 100ms, 1s.
func tickLabel(e float64) string {
	switch {
	case e < 3:
		return fmt.Sprintf("%.0fµs", math.Pow(10, e))
	case e < 6:
		return fmt.Sprintf("%.0fms", math.Pow(10, e-3))
	default:
		return fmt.Sprintf("%.0fs", math.Pow(10, e-6))
	}
}

// mixSummary names the mix entries, or the first few of a long mix.
func mixSummary(names []string) string {
	if len(names) <= 8 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%d entries (%s, …)", len(names), strings.Join(names[:3], ", "))
}
