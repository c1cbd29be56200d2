package video

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Label is what a model says about one frame: keyword phrases (most important first) and,
// when an embed model is used, the frame's vector (any length; nil without one).
type Label struct {
	Keywords []string
	Vector   []float32
}

// FrameLabeler labels one sampled frame (a JPEG).
type FrameLabeler interface {
	LabelFrame(ctx context.Context, jpeg []byte) (Label, error)
}

// Segment is a run of consecutive frames that look alike: its time span in seconds, its
// keywords (by how many of its frames carry them), a description made of the leading
// keywords, and the mean of its frames' vectors (L2-normalised; nil without vectors).
type Segment struct {
	Start       float64   `json:"start"`
	End         float64   `json:"end"`
	Description string    `json:"description"`
	Keywords    []string  `json:"keywords"`
	Vector      []float32 `json:"vector,omitempty"`
}

// SegmentOptions tune merging.
type SegmentOptions struct {
	// KeywordSimilarity is the least Jaccard similarity of the leading keywords of two
	// consecutive frames (or of a frame and its open segment) that keeps them together. Default 0.5.
	KeywordSimilarity float64
	// VectorSimilarity is the least cosine similarity of a frame's vector and its open
	// segment's mean that keeps them together (when both have vectors). Default 0.85.
	VectorSimilarity float64
	// TopKeywords are the leading keywords of a frame compared, and kept per segment ×2. Default 5.
	TopKeywords int
	// FrameSpan is the time one frame stands for (1/fps): a segment ends FrameSpan after its
	// last frame, capped at Duration. Default 1.
	FrameSpan float64
	// Duration is the video's length in seconds (0: no cap).
	Duration float64
}

func (o SegmentOptions) withDefaults() SegmentOptions {
	if o.KeywordSimilarity <= 0 {
		o.KeywordSimilarity = 0.5
	}
	if o.VectorSimilarity <= 0 {
		o.VectorSimilarity = 0.85
	}
	if o.TopKeywords <= 0 {
		o.TopKeywords = 5
	}
	if o.FrameSpan <= 0 {
		o.FrameSpan = 1
	}
	return o
}

// Labeled is one frame with its label.
type Labeled struct {
	At    float64
	Label Label
}

// LabelFrames labels every frame in order; the first error stops it.
func LabelFrames(ctx context.Context, frames []Frame, l FrameLabeler) ([]Labeled, error) {
	out := make([]Labeled, 0, len(frames))
	for _, f := range frames {
		lb, err := l.LabelFrame(ctx, f.JPEG)
		if err != nil {
			return nil, fmt.Errorf("cannot label the frame at %.1fs: %w", f.At, err)
		}
		out = append(out, Labeled{At: f.At, Label: lb})
	}
	return out, nil
}

// Segments merges consecutive labelled frames into segments. A frame joins the open segment
// when it is like it: by vector when both have one (cosine to the segment's mean), else by
// keywords (Jaccard of the leading keywords against the segment's last frame).
func Segments(frames []Labeled, o SegmentOptions) []Segment {
	o = o.withDefaults()
	var out []Segment
	var cur *segAcc
	for _, f := range frames {
		if cur != nil && cur.like(f, o) {
			cur.add(f)
			continue
		}
		if cur != nil {
			out = append(out, cur.segment(o))
		}
		cur = &segAcc{start: f.At, counts: map[string]int{}}
		cur.add(f)
	}
	if cur != nil {
		out = append(out, cur.segment(o))
	}
	return out
}

type segAcc struct {
	start, last float64
	n           int
	sum         []float64
	counts      map[string]int
	order       []string // first appearance, for stable ties
	lastKw      []string
}

func (s *segAcc) like(f Labeled, o SegmentOptions) bool {
	if s.sum != nil && len(f.Label.Vector) == len(s.sum) {
		return cosine(s.sum, f.Label.Vector) >= o.VectorSimilarity
	}
	return jaccard(top(s.lastKw, o.TopKeywords), top(f.Label.Keywords, o.TopKeywords)) >= o.KeywordSimilarity
}

func (s *segAcc) add(f Labeled) {
	s.n++
	s.last = f.At
	s.lastKw = f.Label.Keywords
	for _, k := range f.Label.Keywords {
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		if s.counts[k] == 0 {
			s.order = append(s.order, k)
		}
		s.counts[k]++
	}
	if v := f.Label.Vector; len(v) > 0 {
		if s.sum == nil && s.n == 1 {
			s.sum = make([]float64, len(v))
		}
		if len(v) == len(s.sum) {
			for i, x := range v {
				s.sum[i] += float64(x)
			}
		}
	}
}

func (s *segAcc) segment(o SegmentOptions) Segment {
	end := s.last + o.FrameSpan
	if o.Duration > 0 && end > o.Duration {
		end = o.Duration
	}
	kw := append([]string(nil), s.order...)
	sort.SliceStable(kw, func(i, j int) bool { return s.counts[kw[i]] > s.counts[kw[j]] })
	kw = top(kw, 2*o.TopKeywords)
	seg := Segment{Start: round(s.start), End: round(end), Keywords: kw,
		Description: strings.Join(top(kw, 3), ", ")}
	if s.sum != nil {
		seg.Vector = normalise(s.sum)
	}
	return seg
}

func round(x float64) float64 { return math.Round(x*1000) / 1000 }

func top(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func jaccard(a, b []string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	set := map[string]bool{}
	for _, x := range a {
		set[strings.ToLower(x)] = true
	}
	inter, union := 0, len(set)
	seen := map[string]bool{}
	for _, x := range b {
		x = strings.ToLower(x)
		if seen[x] {
			continue
		}
		seen[x] = true
		if set[x] {
			inter++
		} else {
			union++
		}
	}
	return float64(inter) / float64(union)
}

func cosine(sum []float64, v []float32) float64 {
	var dot, na, nb float64
	for i, x := range v {
		dot += sum[i] * float64(x)
		na += sum[i] * sum[i]
		nb += float64(x) * float64(x)
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

func normalise(sum []float64) []float32 {
	var n float64
	for _, x := range sum {
		n += x * x
	}
	n = math.Sqrt(n)
	out := make([]float32, len(sum))
	if n == 0 {
		return out
	}
	for i, x := range sum {
		out[i] = float32(x / n)
	}
	return out
}
