package rewrite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/model"
)

// Embedder is the part of the embed model client the rewriter uses.
type Embedder interface {
	EmbedOne(ctx context.Context, in model.EmbedInput) ([]float32, error)
	EmbedInfo() model.EmbedConfig
	Name() string
}

// SetEmbedder gives the rewriter an embed model and the cache of its vectors (nil: vectors are
// not cached): clauses may then run vector and hybrid retrieval. Call it before the first
// Rewrite.
func (r *Rewriter) SetEmbedder(e Embedder, c Cache) {
	r.embed = e
	r.embedCache = c
}

var embedCalls = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_embed_calls_total",
	Help: "Query embeddings requested from the embed model (cache misses that were not collapsed)."})

// retrieval is the decision for one clause.
type retrieval struct {
	mode   string // hybrid.Mode*
	status string // X-VLProxy-Retrieval: the mode, or fallback:<reason>
	plan   *hybrid.Plan
}

// chooseMode picks the clause's mode: its own, else the profile's where the profile names a
// vector field and the clause has something the embed model can embed. n is the number of
// clauses in the body (vector retrieval replaces the whole query, so it needs exactly one).
func (r *Rewriter) chooseMode(c *clause, prof *Profile, n int) (string, error) {
	embeddable := c.Image != "" || (r.embed != nil && r.embed.EmbedInfo().Text)
	if c.Mode == "" || c.Mode == hybrid.ModeKeywords {
		if c.Mode == "" && prof.Vector != nil && n == 1 && embeddable {
			return prof.Vector.Mode, nil
		}
		return hybrid.ModeKeywords, nil
	}
	switch {
	case prof.Vector == nil:
		return "", illegalArgument("[multimodal] [mode] [%s] needs a vector field, and the index profile of [%s] names none (rewrite.profiles[].vector.field)", c.Mode, prof.Index)
	case n > 1:
		return "", illegalArgument("[multimodal] [mode] [%s] needs the clause to be the only multimodal clause of the search (this one has %d)", c.Mode, n)
	case !embeddable:
		return "", illegalArgument("[multimodal] [mode] [%s] needs an [image]: the embed model has no text tower, so text is searched by keywords only", c.Mode)
	}
	return c.Mode, nil
}

// planFor builds the kNN plan of a vector or hybrid clause (vector filled in later).
func (r *Rewriter) planFor(c *clause, prof *Profile, mode string, body []byte) (*hybrid.Plan, error) {
	filter, err := hybrid.Locate(body, c.start, c.end)
	if err != nil {
		return nil, illegalArgument("[multimodal] [mode] [%s]: %v", mode, err)
	}
	v := prof.Vector
	p := &hybrid.Plan{Mode: mode, Engine: r.cfg.Engine, Field: v.Field, K: v.K, NumCandidates: v.NumCandidates,
		Filter: filter, Fusion: v.Fusion}
	if c.K > 0 {
		p.K = c.K
	}
	if c.NumCandidates > 0 {
		p.NumCandidates = c.NumCandidates
	}
	if c.Fusion != nil {
		p.Fusion = c.Fusion.WithDefaults()
	}
	return p, nil
}

// embedding returns the clause's vector through the cache (single-flight per key). The
// image drives it; the text joins only when the embed model has a text tower.
func (r *Rewriter) embedding(ctx context.Context, c *clause, img *media.Image, prof *Profile) ([]float32, bool, error) {
	if r.embed == nil {
		return nil, false, errNoEmbedModel
	}
	info := r.embed.EmbedInfo()
	in := model.EmbedInput{}
	if img != nil {
		in.Image = img.URI
	}
	if info.Text && c.Text != "" {
		in.Text = c.Text
	}
	if in.Image != "" && in.Text != "" && info.Form == model.EmbedFormInput {
		in.Text = "" // the input form embeds one thing per vector: the image leads
	}
	call := func(ctx context.Context) ([]float32, error) {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.EmbedTimeout)
		defer cancel()
		embedCalls.Inc()
		return r.embed.EmbedOne(ctx, in)
	}
	var vec []float32
	var err error
	hit := false
	if r.embedCache == nil {
		vec, err = call(ctx)
	} else {
		key := r.embeddingKey(in, img, info)
		var val []byte
		val, hit, err = r.embedCache.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
			v, err := call(ctx)
			if err != nil {
				return nil, err
			}
			return encodeVector(v), nil
		})
		switch {
		case err == nil:
			if vec = decodeVector(val); vec == nil {
				vec, err = call(ctx) // a damaged entry is a miss
			}
		default:
			var me *model.Error
			if !errors.As(err, &me) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				vec, err = call(ctx) // a cache fault is a miss
			}
		}
	}
	if err != nil {
		return nil, false, err
	}
	if prof.Vector == nil {
		return vec, hit, nil // a moments clause: the segment vectors' mapping is checked by the engine
	}
	if d := prof.Vector.Dims; d > 0 && len(vec) != d {
		return nil, false, illegalArgument("cannot search vector field [%s]: the embed model [%s] gives %d dimensions, the field has %d (rewrite.profiles[].vector.dims, model.embed.dimensions)",
			prof.Vector.Field, r.embed.Name(), len(vec), d)
	}
	return vec, hit, nil
}

var errNoEmbedModel = errors.New("no embed model configured")

// embeddingKey identifies an embedding: a version byte, model, dimensions, then the original
// image's sha256 and/or the text.
func (r *Rewriter) embeddingKey(in model.EmbedInput, img *media.Image, info model.EmbedConfig) []byte {
	name := r.embed.Name()
	key := make([]byte, 0, 48+len(name)+len(in.Text))
	key = append(key, 1, 'e', 'm', 0)
	key = append(key, name...)
	key = append(key, 0)
	key = strconv.AppendInt(key, int64(info.Dimensions), 10)
	key = append(key, 0)
	if in.Image != "" && img != nil {
		key = append(key, 'i')
		key = append(key, img.Sum[:]...)
	}
	if in.Text != "" {
		key = append(key, 't')
		key = append(key, in.Text...)
	}
	return key
}

// encodeVector stores a vector as a version byte and little-endian float32s.
func encodeVector(v []float32) []byte {
	b := make([]byte, 1+4*len(v))
	b[0] = 1
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[1+4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) []float32 {
	if len(b) < 5 || b[0] != 1 || (len(b)-1)%4 != 0 {
		return nil
	}
	v := make([]float32, (len(b)-1)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[1+4*i:]))
	}
	return v
}

// embedAsync starts the clause's embedding next to the keyword call; wait returns it.
func (r *Rewriter) embedAsync(ctx context.Context, c *clause, img *media.Image, prof *Profile) (wait func() ([]float32, bool, time.Duration, error)) {
	type res struct {
		v   []float32
		hit bool
		d   time.Duration
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s := time.Now()
		v, hit, err := r.embedding(ctx, c, img, prof)
		ch <- res{v, hit, time.Since(s), err}
	}()
	var got *res
	return func() ([]float32, bool, time.Duration, error) {
		if got == nil {
			x := <-ch
			got = &x
		}
		return got.v, got.hit, got.d, got.err
	}
}

// embedFallback is the X-VLProxy-Retrieval status of a clause whose embedding failed.
func (r *Rewriter) embedFallback(ctx context.Context, err error) string {
	reason := model.Reason(err)
	if errors.Is(err, errNoEmbedModel) {
		reason = "no_embed_model"
	}
	r.log.LogAttrs(ctx, slog.LevelWarn, "vector retrieval fell back to keywords", slog.String("reason", reason), slog.Any("err", err))
	return "fallback:" + reason
}

func (rt retrieval) String() string { return fmt.Sprintf("%s(%s)", rt.mode, rt.status) }
