package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// FakeESConfig configures FakeES, a canned Elasticsearch backend that is cheaper per request than
// the proxy in front of it, so a benchmark measures the proxy and not the backend.
type FakeESConfig struct {
	// Hits is the number of hits in every _search response (and in each _msearch response).
	// Default: 10.
	Hits int `yaml:"hits"`
	// SourceBytes is the size in bytes of each hit's _source object. Default: 200.
	SourceBytes int `yaml:"source_bytes"`
	// Index is the index name written into hits and bulk items. Default: "bench".
	Index string `yaml:"index"`
	// Delay is slept before every response (it costs no CPU). Default: 0.
	Delay time.Duration `yaml:"delay"`
	// SlowDelay replaces Delay on every SlowEvery-th request, which gives a known latency
	// distribution for testing percentiles. Default: 0 (off).
	SlowDelay time.Duration `yaml:"slow_delay"`
	// SlowEvery selects which requests get SlowDelay (1 in SlowEvery). Default: 0 (off).
	SlowEvery int `yaml:"slow_every"`
}

// DefaultFakeESConfig returns the defaults documented on FakeESConfig.
func DefaultFakeESConfig() FakeESConfig {
	return FakeESConfig{Hits: 10, SourceBytes: 200, Index: "bench"}
}

// FakeES serves precomputed Elasticsearch responses:
//   - GET/HEAD /                       root info
//   - /_cluster/health, /_vlproxy/health  health
//   - …/_search                        Hits hits of SourceBytes-byte _source
//   - …/_count                         count
//   - …/_msearch                       one search response per header/body pair
//   - …/_bulk                          drains the body without buffering it, one item per action
//   - GET/HEAD …/_doc/…                a stored document
//   - anything else                    {"acknowledged":true}
//
// Apart from _msearch and _bulk (whose answers grow with the request), a request allocates nothing.
type FakeES struct {
	cfg     FakeESConfig
	root    []byte
	health  []byte
	search  []byte
	msItem  []byte
	count   []byte
	ack     []byte
	doc     []byte
	bulkBeg []byte
	items   map[string][]byte
	n       atomic.Uint64
	srv     *fasthttp.Server
}

var bulkBufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// NewFakeES precomputes every response for cfg.
func NewFakeES(cfg FakeESConfig) (*FakeES, error) {
	if cfg.Hits < 0 {
		return nil, fmt.Errorf("hits must be >= 0, got %d", cfg.Hits)
	}
	if cfg.SourceBytes < 0 {
		return nil, fmt.Errorf("source-bytes must be >= 0, got %d", cfg.SourceBytes)
	}
	if cfg.Index == "" {
		cfg.Index = "bench"
	}
	f := &FakeES{cfg: cfg}
	f.root = []byte(`{"name":"fake-es","cluster_name":"vlbench","cluster_uuid":"vlbench-fake-0000","version":{"number":"7.10.2","build_flavor":"default","build_type":"tar","lucene_version":"8.7.0","minimum_wire_compatibility_version":"6.8.0","minimum_index_compatibility_version":"6.0.0-beta1"},"tagline":"You Know, for Search"}`)
	f.health = []byte(`{"cluster_name":"vlbench","status":"green","timed_out":false,"number_of_nodes":1,"number_of_data_nodes":1,"active_primary_shards":1,"active_shards":1,"relocating_shards":0,"initializing_shards":0,"unassigned_shards":0}`)
	f.count = []byte(`{"count":` + strconv.Itoa(cfg.Hits) + `,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0}}`)
	f.ack = []byte(`{"acknowledged":true}`)
	// A small stored document, about the size of a catalogue entry's metadata.
	f.doc = []byte(`{"_index":"` + cfg.Index + `","_id":"1","_version":1,"_seq_no":0,"_primary_term":1,"found":true,"_source":` +
		string(FakeSource(1, max(cfg.SourceBytes, 40))) + `}`)
	inner := f.searchBody()
	f.search = append(append(append([]byte(nil), `{"took":1,`...), inner...), '}')
	f.msItem = append(append(append([]byte(nil), `{"took":1,`...), inner...), `,"status":200}`...)
	f.bulkBeg = []byte(`{"took":1,"errors":false,"items":[`)
	f.items = map[string][]byte{}
	for _, k := range []string{"index", "create", "update", "delete"} {
		result, status := "created", 201
		switch k {
		case "update":
			result, status = "updated", 200
		case "delete":
			result, status = "deleted", 200
		}
		f.items[k] = []byte(`{"` + k + `":{"_index":"` + cfg.Index + `","_id":"1","_version":1,"result":"` + result +
			`","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":` + strconv.Itoa(status) + `}}`)
	}
	f.srv = &fasthttp.Server{
		Handler:                       f.Handler,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		DisableHeaderNamesNormalizing: true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            1 << 30,
		ReadBufferSize:                16 << 10,
		IdleTimeout:                   2 * time.Minute,
	}
	return f, nil
}

// searchBody returns the shared part of a search response (without "took" and the braces).
func (f *FakeES) searchBody() []byte {
	b := []byte(`"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":`)
	b = strconv.AppendInt(b, int64(f.cfg.Hits), 10)
	b = append(b, `,"relation":"eq"},"max_score":`...)
	if f.cfg.Hits == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, "1.0"...)
	}
	b = append(b, `,"hits":[`...)
	for i := 0; i < f.cfg.Hits; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"_index":"`...)
		b = append(b, f.cfg.Index...)
		b = append(b, `","_type":"_doc","_id":"`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `","_score":`...)
		b = strconv.AppendFloat(b, 1.0-float64(i)/float64(2*f.cfg.Hits), 'f', 4, 64)
		b = append(b, `,"_source":`...)
		b = append(b, FakeSource(i+1, f.cfg.SourceBytes)...)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// FakeSource returns a JSON object of exactly n bytes (or the smallest object possible when n is
// too small) describing product id.
func FakeSource(id, n int) []byte {
	head := `{"id":` + strconv.Itoa(id) + `,"title":"product ` + strconv.Itoa(id) + `","pad":"`
	const tail = `"}`
	if len(head)+len(tail) >= n {
		if n < 2+len(strconv.Itoa(id))+5 {
			return []byte(`{"id":` + strconv.Itoa(id) + `}`)
		}
		return []byte(head + tail)
	}
	pad := bytes.Repeat([]byte("x"), n-len(head)-len(tail))
	return []byte(head + string(pad) + tail)
}

var (
	ctJSON       = []byte("application/json; charset=UTF-8")
	hdrProduct   = []byte("X-Elastic-Product")
	valProduct   = []byte("Elasticsearch")
	sfxSearch    = []byte("/_search")
	sfxCount     = []byte("/_count")
	sfxMsearch   = []byte("/_msearch")
	sfxBulk      = []byte("/_bulk")
	segDoc       = []byte("/_doc/")
	pathHealth   = []byte("/_cluster/health")
	pathVLHealth = []byte("/_vlproxy/health")
)

// Handler answers one request.
func (f *FakeES) Handler(ctx *fasthttp.RequestCtx) {
	if f.cfg.Delay > 0 || f.cfg.SlowEvery > 0 {
		d := f.cfg.Delay
		if f.cfg.SlowEvery > 0 && f.n.Add(1)%uint64(f.cfg.SlowEvery) == 0 {
			d = f.cfg.SlowDelay
		}
		if d > 0 {
			time.Sleep(d)
		}
	}
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.Response.Header.SetBytesKV(hdrProduct, valProduct)
	p := ctx.Path()
	switch {
	case len(p) <= 1:
		ctx.Response.SetBodyRaw(f.root)
	case bytes.HasSuffix(p, sfxSearch) || bytes.Contains(p, []byte("/_search/")):
		ctx.Response.SetBodyRaw(f.search)
	case bytes.HasSuffix(p, sfxCount):
		ctx.Response.SetBodyRaw(f.count)
	case bytes.HasSuffix(p, sfxMsearch):
		f.msearch(ctx)
	case bytes.HasSuffix(p, sfxBulk):
		f.bulk(ctx)
	case bytes.HasPrefix(p, pathHealth) || bytes.Equal(p, pathVLHealth):
		ctx.Response.SetBodyRaw(f.health)
	case ctx.IsGet() && string(p) == "/_alias":
		ctx.Response.SetBodyString("{}") // no aliases (vlproxy's result cache asks for its topology)
	case (ctx.IsGet() || ctx.IsHead()) && bytes.Contains(p, segDoc):
		ctx.Response.SetBodyRaw(f.doc)
	default:
		ctx.Response.SetBodyRaw(f.ack)
	}
}

func (f *FakeES) msearch(ctx *fasthttp.RequestCtx) {
	lines := 0
	for rest := ctx.PostBody(); len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			lines++
		}
	}
	ctx.Response.AppendBodyString(`{"took":1,"responses":[`)
	for i := 0; i < lines/2; i++ {
		if i > 0 {
			ctx.Response.AppendBodyString(",")
		}
		ctx.Response.AppendBody(f.msItem)
	}
	ctx.Response.AppendBodyString("]}")
}

// bulk reads the body in chunks (it never holds it whole) and answers one item per action line.
func (f *FakeES) bulk(ctx *fasthttp.RequestCtx) {
	var r io.Reader
	if ctx.Request.IsBodyStream() {
		r = ctx.RequestBodyStream()
	} else {
		r = bytes.NewReader(ctx.PostBody())
	}
	bp := bulkBufPool.Get().(*[]byte)
	defer bulkBufPool.Put(bp)
	buf := *bp
	ctx.Response.AppendBody(f.bulkBeg)
	var sc bulkScanner
	first := true
	emit := func(action string) {
		item, ok := f.items[action]
		if !ok {
			item = f.items["index"]
		}
		if !first {
			ctx.Response.AppendBodyString(",")
		}
		first = false
		ctx.Response.AppendBody(item)
	}
	for {
		n, err := r.Read(buf)
		sc.feed(buf[:n], emit)
		if err != nil {
			break
		}
	}
	sc.end(emit)
	ctx.Response.AppendBodyString("]}")
}

// bulkScanner classifies NDJSON _bulk lines across chunk boundaries, keeping only a short prefix of
// each line.
type bulkScanner struct {
	prefix    [48]byte
	plen      int
	inLine    bool
	expectDoc bool
}

func (s *bulkScanner) feed(b []byte, emit func(string)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if s.plen < len(s.prefix) {
			s.plen += copy(s.prefix[s.plen:], part)
		}
		if len(part) > 0 {
			s.inLine = true
		}
		if i < 0 {
			return
		}
		s.endLine(emit)
		b = b[i+1:]
	}
}

func (s *bulkScanner) end(emit func(string)) {
	if s.inLine {
		s.endLine(emit)
	}
}

func (s *bulkScanner) endLine(emit func(string)) {
	line := bytes.TrimSpace(s.prefix[:s.plen])
	s.plen, s.inLine = 0, false
	if len(line) == 0 {
		return
	}
	if s.expectDoc {
		s.expectDoc = false
		return
	}
	action := "index"
	if q := bytes.IndexByte(line, '"'); q >= 0 {
		if e := bytes.IndexByte(line[q+1:], '"'); e >= 0 {
			action = string(line[q+1 : q+1+e])
		}
	}
	s.expectDoc = action != "delete"
	emit(action)
}

// Serve serves ln until Shutdown.
func (f *FakeES) Serve(ln net.Listener) error { return f.srv.Serve(ln) }

// Shutdown stops the server started by Serve.
func (f *FakeES) Shutdown() error { return f.srv.Shutdown() }
