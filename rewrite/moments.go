package rewrite

import (
	"context"
	"strconv"

	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/internal/esjson"
)

// momentsInnerHits is how many matching segments each hit returns.
const momentsInnerHits = 3

// momentsExplain is the explain entry of a moments clause: the nested path and fields searched,
// and the inner_hits name under which each hit's matching segments (start/end seconds) come back.
type momentsExplain struct {
	Path      string   `json:"path"`
	Fields    []string `json:"fields"`
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
	dst = append(dst, `{"nested":{"path":`...)
	dst = esjson.AppendString(dst, path)
	dst = append(dst, `,"score_mode":"max","query":`...)
	dst, o, err := r.rewriteClause(ctx, &cc, prof, mode, dst, n, body, keywordsOnly)
	if err != nil {
		return dst, o, err
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
	o.moments = &momentsExplain{Path: path, Fields: cc.Fields, InnerHits: path, Size: momentsInnerHits}
	return dst, o, nil
}
