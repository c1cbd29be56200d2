package rewrite

import (
	"context"
	"errors"
	"strconv"

	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/esjson"
)

// momentsInnerHits is how many matching segments each hit returns.
const momentsInnerHits = 3

// momentsK is the number of nearest segments a kNN moments clause asks for when it names no [k].
const momentsK = 10

// momentsExplain is the explain entry of a moments clause: the nested path and fields searched,
// whether the segment vectors were searched too, and the inner_hits name under which each
// hit's matching segments (start/end seconds) come back.
type momentsExplain struct {
	Path      string   `json:"path"`
	Fields    []string `json:"fields"`
	Vector    string   `json:"vector,omitempty"`
	InnerHits string   `json:"inner_hits"`
	Size      int      `json:"size"`
}

// MomentsFields are the segment fields a moments clause searches when it names none.
func MomentsFields(path string) []string {
	return []string{path + ".description^2", path + ".keywords"}
}

// rewriteMoments rewrites a `"moments"` clause: the keyword query (from the text, or the
// image's keywords) runs over the segments' description and keywords inside a nested query
// whose inner_hits return the best segments of each hit with their start and end seconds.
// With [mode] vector or hybrid and an [image], the image's embedding searches the segment
// vectors (path.vector) by kNN inside the same nested query: alone, or next to the keywords.
func (r *Rewriter) rewriteMoments(ctx context.Context, c *clause, prof *Profile, mode Mode, dst []byte, n int, body []byte, keywordsOnly bool) ([]byte, clauseOutcome, error) {
	cc := *c
	path := c.Moments
	cc.Moments = ""
	cc.Mode = hybrid.ModeKeywords
	if !cc.hasFields {
		cc.Fields, cc.hasFields = MomentsFields(path), true
	}
	boost := cc.Boost
	cc.Boost = 0
	ex := &momentsExplain{Path: path, Fields: cc.Fields, InnerHits: path, Size: momentsInnerHits}

	var knn []byte
	retrieval := hybrid.ModeKeywords
	if (c.Mode == hybrid.ModeVector || c.Mode == hybrid.ModeHybrid) && mode != ModeOff && !keywordsOnly {
		img, err := r.image(ctx, c.Image)
		if err != nil {
			return dst, clauseOutcome{status: "error"}, err
		}
		vec, _, err := r.embedding(ctx, c, &img, prof)
		var e *eserr.Error
		switch {
		case errors.As(err, &e):
			return dst, clauseOutcome{status: "error"}, err
		case err != nil:
			retrieval = r.embedFallback(ctx, err)
		default:
			k := c.K
			if k == 0 {
				k = momentsK
			}
			p := hybrid.Plan{Engine: r.cfg.Engine, Field: path + ".vector", Vector: vec, NumCandidates: c.NumCandidates}
			knn = p.AppendQuery(nil, k)
			ex.Vector = p.Field
			retrieval = c.Mode
		}
	}

	dst = append(dst, `{"nested":{"path":`...)
	dst = esjson.AppendString(dst, path)
	dst = append(dst, `,"score_mode":"max","query":`...)
	var o clauseOutcome
	switch {
	case knn != nil && c.Mode == hybrid.ModeVector:
		o = clauseOutcome{status: "applied", query: makeQuery(c.Text, nil)}
		dst = append(dst, knn...)
	case knn != nil:
		dst = append(dst, `{"bool":{"should":[`...)
		mark := len(dst)
		var err error
		dst, o, err = r.rewriteClause(ctx, &cc, prof, mode, dst, n, body, keywordsOnly)
		if err != nil {
			// No keywords for the image: its vector alone finds the segments.
			dst = dst[:mark]
			o.status = "fallback:" + o.reason
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, knn...)
		dst = append(dst, `]}}`...)
	default:
		var err error
		dst, o, err = r.rewriteClause(ctx, &cc, prof, mode, dst, n, body, keywordsOnly)
		if err != nil {
			return dst, o, err
		}
	}
	dst = append(dst, `,"inner_hits":{"name":`...)
	dst = esjson.AppendString(dst, path)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, momentsInnerHits, 10)
	dst = append(dst, `,"_source":{"excludes":[`...)
	dst = esjson.AppendString(dst, path+".vector")
	dst = append(dst, `]}}`...)
	if boost != 0 {
		dst = append(dst, `,"boost":`...)
		dst = strconv.AppendFloat(dst, boost, 'g', -1, 64)
	}
	dst = append(dst, `}}`...)
	o.retrieval = retrieval
	o.moments = ex
	return dst, o, nil
}
