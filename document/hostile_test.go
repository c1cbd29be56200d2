package document

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/document/pdftest"
	"github.com/vlproxy/vlproxy/internal/eserr"
)

var (
	corpusOnce sync.Once
	corpus     []pdftest.Hostile
	corpusErr  error
)

func hostileCorpus(t testing.TB) []pdftest.Hostile {
	corpusOnce.Do(func() { corpus, corpusErr = pdftest.HostileCorpus() })
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	return corpus
}

// peakHeap samples the live heap every 200µs while fn runs and returns the
// highest value above the level before it.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(200 * time.Microsecond)
		defer tk.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if v := read(); v > peak.Load() {
		peak.Store(v)
	}
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// TestHostileCorpus: every hostile PDF is a 400 (never a panic or a hang),
// within a time and a memory bound, with the default limits.
func TestHostileCorpus(t *testing.T) {
	r := newReader(t, Limits{})
	for _, h := range hostileCorpus(t) {
		t.Run(h.Name, func(t *testing.T) {
			var err error
			var cpu time.Duration
			start := time.Now()
			peak := peakHeap(func() {
				c0 := cpuTime()
				_, err = r.Read(context.Background(), h.PDF)
				cpu = cpuTime() - c0
			})
			wall := time.Since(start)
			e, ok := err.(*eserr.Error)
			if !ok || e.Status != 400 {
				t.Fatalf("want a 400, got %T %v", err, err)
			}
			t.Logf("%-26s %8d bytes  %7.1f ms wall  %7.1f ms cpu  peak heap %6.1f MiB  %s", h.Name, len(h.PDF),
				float64(wall.Microseconds())/1000, float64(cpu.Microseconds())/1000, float64(peak)/(1<<20), e.Reason)
			if wall > 3*time.Second {
				t.Errorf("took %s, want under 3s", wall)
			}
			// A bomb is measured while it streams, so it never holds its decoded budget:
			// pdfcpu's own decoder, buffering each filter, peaked at 227 MiB on the
			// ASCIIHex+Flate bomb.
			if budget := uint64(DefaultLimits().MaxDecodedBytes); peak > budget {
				t.Errorf("peak heap %d MiB, want under document.max_decoded_bytes (%d MiB)", peak>>20, budget>>20)
			}
		})
	}
}

// BenchmarkHostile measures each hostile document: time, allocations and the
// peak live heap (peak-MiB) of one read.
func BenchmarkHostile(b *testing.B) {
	r := newReader(b, Limits{})
	for _, h := range hostileCorpus(b) {
		b.Run(h.Name, func(b *testing.B) {
			b.ReportAllocs()
			var peak uint64
			for b.Loop() {
				p := peakHeap(func() { r.Read(context.Background(), h.PDF) })
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
		})
	}
}

// BenchmarkRead measures reading ordinary documents: a one-page text price
// list and a one-page scan (the table rendered as a 1500-pixel-wide JPEG).
func BenchmarkRead(b *testing.B) {
	jpg, w, h, err := pdftest.RenderTable("Order", priceList)
	if err != nil {
		b.Fatal(err)
	}
	docs := []struct {
		name string
		raw  []byte
	}{
		{"text_page", pdftest.TextTable("Order", priceList)},
		{"scan_page", pdftest.Scan([][]byte{jpg}, [][2]int{{w, h}}, true)},
		{"photo", jpg},
	}
	r := newReader(b, Limits{})
	for _, d := range docs {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(d.raw)))
			for b.Loop() {
				if _, err := r.Read(context.Background(), d.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
