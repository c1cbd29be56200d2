package media

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// Gate bounds the image decodes in flight (a decoded image is the largest allocation of a
// request) and the decodes waiting for a slot: one past the queue is refused at once, so a
// burst of images costs a bounded amount of memory however many requests carry them.
type Gate struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
}

var (
	decodesRejected = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_image_decodes_rejected_total",
		Help: "Image decodes refused with a 429 because the decode queue (-image-decode-queue) was full."})
	decodesWaiting  atomic.Int64
	decodesInFlight atomic.Int64
	_               = promauto.NewGaugeFunc(prometheus.GaugeOpts{Name: "vlproxy_image_decodes_waiting",
		Help: "Image decodes waiting for a slot (-image-decodes)."}, func() float64 { return float64(decodesWaiting.Load()) })
	_ = promauto.NewGaugeFunc(prometheus.GaugeOpts{Name: "vlproxy_image_decodes_in_flight",
		Help: "Image decodes running now."}, func() float64 { return float64(decodesInFlight.Load()) })
)

// NewGate returns a Gate of cfg.MaxDecodes slots and cfg.MaxDecodeQueue waiting places
// (cfg with defaults applied).
func NewGate(cfg *Config) *Gate {
	return &Gate{slots: make(chan struct{}, max(1, cfg.MaxDecodes)), queue: int64(cfg.MaxDecodeQueue)}
}

// Acquire takes a decode slot, waiting while ctx allows when the queue has room. A full queue
// is an ES-shaped 429 naming the limit. Call Release after decoding.
func (g *Gate) Acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		decodesInFlight.Add(1)
		return nil
	default:
	}
	if g.waiting.Add(1) > g.queue {
		g.waiting.Add(-1)
		decodesRejected.Inc()
		return eserr.New(429, "es_rejected_execution_exception",
			"cannot decode [multimodal] [image] now: image.max_decodes images are decoding and image.max_decode_queue are waiting; retry later or raise -image-decode-queue")
	}
	decodesWaiting.Add(1)
	defer func() { g.waiting.Add(-1); decodesWaiting.Add(-1) }()
	select {
	case g.slots <- struct{}{}:
		decodesInFlight.Add(1)
		return nil
	case <-ctx.Done():
		return &eserr.Error{Status: 429, Type: "es_rejected_execution_exception",
			Reason: "cannot decode [multimodal] [image]: the request ended while waiting for a decode slot (image.max_decodes)", Err: ctx.Err()}
	}
}

// Waiting reports the decodes waiting for a slot now.
func (g *Gate) Waiting() int { return int(g.waiting.Load()) }

// Release gives back the slot Acquire took.
func (g *Gate) Release() {
	decodesInFlight.Add(-1)
	<-g.slots
}
