package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runHostile sends a stream of hostile requests (gzip bombs, 16-bit PNGs, 1000-clause bodies) to
// a vlproxy at the same time as normal searches, bounded in count and time, and reports the
// proxy's peak RSS (VmHWM of -pid) and how the normal searches fared.
func runHostile(args []string) error {
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	target := fs.String("target", "", "vlproxy base URL, e.g. http://127.0.0.1:8080 (loopback only)")
	pid := fs.Int("pid", 0, "vlproxy's process id, for its RSS from /proc")
	index := fs.String("index", "products", "index searched")
	dur := fs.Duration("duration", 20*time.Second, "how long the attack lasts")
	workers := fs.Int("workers", 4, "concurrent senders per kind of hostile request")
	normal := fs.Int("normal-workers", 2, "concurrent senders of normal searches")
	maxReq := fs.Int("max-requests", 100000, "bound on the requests sent in all")
	bombMiB := fs.Int("bomb-mib", 200, "decompressed size of a gzip bomb")
	kinds := fs.String("kinds", "gzip-bomb,png16,clauses", "comma-separated hostile kinds to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*target, "http://127.0.0.1:") && !strings.HasPrefix(*target, "http://localhost:") {
		return fmt.Errorf("-target must be a loopback http URL, got %q", *target)
	}
	if *pid <= 0 {
		return fmt.Errorf("-pid is required")
	}

	// The payloads, built once.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	zw.Write([]byte(`{"query":{"match_all":{}},"pad":"`)) //nolint:errcheck
	for i := 0; i < *bombMiB; i++ {
		zw.Write(chunk) //nolint:errcheck
	}
	zw.Write([]byte(`"}`)) //nolint:errcheck
	zw.Close()
	bomb := gz.Bytes()
	// The same bomb with a trailer that understates its size, so that the proxy must inflate
	// it up to its limit instead of refusing it from the trailer.
	liar := append([]byte(nil), bomb...)
	copy(liar[len(liar)-4:], []byte{100, 0, 0, 0})
	bombs := [][]byte{bomb, liar}
	png16 := func(w, h int) []byte {
		img := image.NewNRGBA64(image.Rect(0, 0, w, h))
		for y := 0; y < h; y += 7 {
			for x := 0; x < w; x += 5 {
				img.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 31), uint16(y * 17), 0x8000, 0xffff})
			}
		}
		var b bytes.Buffer
		png.Encode(&b, img) //nolint:errcheck
		return b.Bytes()
	}
	imageBody := func(raw []byte) []byte {
		return []byte(`{"query":{"multimodal":{"text":"dress","image":"data:image/png;base64,` + base64.StdEncoding.EncodeToString(raw) + `"}}}`)
	}
	pngs := [][]byte{imageBody(png16(2000, 2000)), imageBody(png16(6000, 6000))} // 32 MB decoded (within limits), 288 MB (refused)
	var clauses strings.Builder
	clauses.WriteString(`{"query":{"bool":{"should":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			clauses.WriteByte(',')
		}
		fmt.Fprintf(&clauses, `{"multimodal":{"text":"red dress number %d"}}`, i)
	}
	clauses.WriteString(`]}}}`)
	many := []byte(clauses.String())
	fmt.Fprintf(os.Stderr, "hostile: gzip bombs (half with a lying trailer) %d KiB -> %d MiB, 16-bit PNG bodies %d KiB and %d KiB, 1000-clause body %d KiB\n",
		len(bomb)>>10, *bombMiB, len(pngs[0])>>10, len(pngs[1])>>10, len(many)>>10)

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	url := *target + "/" + *index + "/_search"
	var sent atomic.Int64
	type tally struct {
		mu       sync.Mutex
		statuses map[string]int
		lat      []time.Duration
	}
	tallies := map[string]*tally{}
	for _, k := range []string{"gzip-bomb", "png16", "clauses", "normal"} {
		tallies[k] = &tally{statuses: map[string]int{}}
	}
	send := func(kind string, body []byte, hdr map[string]string) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := client.Do(req)
		st := "error"
		if err == nil {
			var buf [4096]byte
			for {
				if _, rerr := resp.Body.Read(buf[:]); rerr != nil {
					break
				}
			}
			resp.Body.Close()
			st = strconv.Itoa(resp.StatusCode)
		}
		t := tallies[kind]
		t.mu.Lock()
		t.statuses[st]++
		t.lat = append(t.lat, time.Since(start))
		t.mu.Unlock()
	}
	var peakRSS atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample RSS, for the curve's maximum besides the kernel's VmHWM
		defer wg.Done()
		for {
			if kb := procStatusKB(*pid, "VmRSS"); kb > peakRSS.Load() {
				peakRSS.Store(kb)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	end := time.Now().Add(*dur)
	loop := func(kind string, next func(i int) ([]byte, map[string]string)) {
		defer wg.Done()
		for i := 0; time.Now().Before(end) && sent.Add(1) <= int64(*maxReq); i++ {
			b, h := next(i)
			send(kind, b, h)
		}
	}
	on := map[string]bool{}
	for _, k := range strings.Split(*kinds, ",") {
		on[strings.TrimSpace(k)] = true
	}
	for w := 0; w < *workers; w++ {
		if on["gzip-bomb"] {
			wg.Add(1)
			go loop("gzip-bomb", func(i int) ([]byte, map[string]string) {
				return bombs[i%2], map[string]string{"Content-Encoding": "gzip"}
			})
		}
		if on["png16"] {
			wg.Add(1)
			go loop("png16", func(i int) ([]byte, map[string]string) { return pngs[i%2], nil })
		}
		if on["clauses"] {
			wg.Add(1)
			go loop("clauses", func(int) ([]byte, map[string]string) { return many, nil })
		}
	}
	normalBody := []byte(`{"query":{"match":{"title":"shirt"}},"size":10}`)
	for w := 0; w < *normal; w++ {
		wg.Add(1)
		go loop("normal", func(int) ([]byte, map[string]string) { return normalBody, nil })
	}
	time.Sleep(time.Until(end))
	close(stop)
	wg.Wait()

	hwm := procStatusKB(*pid, "VmHWM")
	fmt.Printf("peak RSS of vlproxy (VmHWM): %.1f MiB; highest sampled VmRSS: %.1f MiB; requests sent: %d in %s\n",
		float64(hwm)/1024, float64(peakRSS.Load())/1024, min(sent.Load(), int64(*maxReq)), *dur)
	kindOrder := []string{"normal", "gzip-bomb", "png16", "clauses"}
	for _, k := range kindOrder {
		t := tallies[k]
		sort.Slice(t.lat, func(i, j int) bool { return t.lat[i] < t.lat[j] })
		var p50, p99 time.Duration
		if n := len(t.lat); n > 0 {
			p50, p99 = t.lat[n/2], t.lat[min(n-1, n*99/100)]
		}
		keys := make([]string, 0, len(t.statuses))
		for s := range t.statuses {
			keys = append(keys, s)
		}
		sort.Strings(keys)
		var sts []string
		for _, s := range keys {
			sts = append(sts, fmt.Sprintf("%s×%d", s, t.statuses[s]))
		}
		fmt.Printf("  %-10s %5d requests  statuses %-40s p50 %8s  p99 %8s\n", k, len(t.lat), strings.Join(sts, " "), p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	}
	if n := tallies["normal"]; n.statuses["200"] != len(n.lat) || len(n.lat) == 0 {
		return fmt.Errorf("normal searches did not all succeed: %v", n.statuses)
	}
	return nil
}

// procStatusKB reads one "Name:   N kB" field of /proc/PID/status, 0 when unavailable.
func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
