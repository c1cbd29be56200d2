package proxy

import (
	"strconv"
	"time"
)

// serverTiming collects the stages of one request for the Server-Timing header. Pass-through requests
// have one stage, "upstream"; searches add the pipeline's stages (rewrite, model, rerank). Stages are
// disjoint: model is not inside rewrite or rerank, and upstream is the only upstream figure, so the
// stages sum to at most total. The header always names upstream (0 when no node was contacted, as on
// a result-cache hit) and ends with total.
type serverTiming struct {
	names [6]string
	durs  [6]time.Duration
	n     int
}

// add accumulates d into the stage name (retries add up); stages beyond six are dropped.
func (t *serverTiming) add(name string, d time.Duration) {
	for i := 0; i < t.n; i++ {
		if t.names[i] == name {
			t.durs[i] += d
			return
		}
	}
	if t.n < len(t.names) {
		t.names[t.n], t.durs[t.n] = name, d
		t.n++
	}
}

// appendHeader appends "upstream;dur=U, <stage>;dur=D, …, total;dur=T" with durations in milliseconds
// and three decimals. total ends when the handler returns, so a streamed body is in no figure.
func (t *serverTiming) appendHeader(dst []byte, total time.Duration) []byte {
	if t.n == 0 || t.names[0] != "upstream" {
		dst = append(dst, "upstream;dur=0.000, "...)
	}
	for i := 0; i < t.n; i++ {
		dst = append(dst, t.names[i]...)
		dst = append(dst, ";dur="...)
		dst = appendMillis(dst, t.durs[i])
		dst = append(dst, ", "...)
	}
	dst = append(dst, "total;dur="...)
	return appendMillis(dst, total)
}

func appendMillis(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	us := int64(d / time.Microsecond)
	dst = strconv.AppendInt(dst, us/1000, 10)
	frac := us % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
