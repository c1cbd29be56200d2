package enrich

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/olivere/elastic/v7"
	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/video"
)

var errNoVideo = errors.New("document has no video")

// frameLabeler labels sampled frames with the run's models: keywords from the chat model
// (unless vectorOnly), the vector from the embed model, each call paced and bounded like a
// photo's.
type frameLabeler struct {
	e          *enricher
	vectorOnly bool
}

func (l frameLabeler) LabelFrame(ctx context.Context, jpg []byte) (video.Label, error) {
	e := l.e
	var lb video.Label
	if e.emb != nil {
		if err := e.wait(ctx); err != nil {
			return lb, err
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		vec, err := e.emb.EmbedOne(cctx, model.EmbedInput{Image: "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpg)})
		cancel()
		if err != nil {
			return lb, fmt.Errorf("cannot embed the frame: %w", err)
		}
		lb.Vector = vec
	}
	if e.m != nil && !l.vectorOnly {
		if err := e.wait(ctx); err != nil {
			return lb, err
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		resp, err := e.m.Chat(cctx, chatRequest(jpg, e.cfg.MaxKeywords))
		cancel()
		if err != nil {
			return lb, fmt.Errorf("cannot get keywords: %w", err)
		}
		kw, err := rewrite.ParseKeywords(resp.Content, e.cfg.MaxKeywords)
		if err != nil {
			return lb, fmt.Errorf("cannot parse keywords from %.80q: %w", resp.Content, err)
		}
		lb.Keywords = phrases(kw)
	}
	return lb, nil
}

// moments samples a hit's video and returns its segments, what probing found and the
// vectors' dimension.
func (e *enricher) moments(ctx context.Context, h *elastic.SearchHit) ([]video.Segment, video.Info, int, error) {
	var info video.Info
	var src map[string]any
	if err := json.Unmarshal(h.Source, &src); err != nil {
		return nil, info, 0, fmt.Errorf("cannot read _source: %w", err)
	}
	if e.cfg.Resume && lookup(src, e.cfg.MomentsField) != nil {
		return nil, info, 0, errNoVideo // done already
	}
	v, _ := lookup(src, e.cfg.VideoField).(string)
	if v = strings.TrimSpace(v); v == "" {
		return nil, info, 0, errNoVideo
	}
	path, cleanup, err := e.videoFile(ctx, v)
	if err != nil {
		return nil, info, 0, err
	}
	defer cleanup()
	if e.useClip() {
		segs, info, dim, err := e.clipMoments(ctx, path)
		if err == nil || !e.refused(err) {
			if err != nil {
				err = fmt.Errorf("video %.60q: %w", v, err)
			}
			return segs, info, dim, err
		}
		// The server takes no video: this video and the rest of the run go by frames.
	}
	frames, info, err := video.Sample(ctx, path, e.cfg.Video)
	if err != nil {
		return nil, info, 0, fmt.Errorf("cannot sample the video %.60q: %w", v, err)
	}
	labeled, err := video.LabelFrames(ctx, frames, frameLabeler{e: e})
	if err != nil {
		return nil, info, 0, fmt.Errorf("video %.60q: %w", v, err)
	}
	span := 1.0
	if len(frames) > 1 {
		span = frames[1].At - frames[0].At
	}
	segs := video.Segments(labeled, video.SegmentOptions{FrameSpan: span, Duration: info.Duration.Seconds()})
	dim := 0
	if len(segs) > 0 {
		dim = len(segs[0].Vector)
	}
	return segs, info, dim, nil
}

// newVideoFetcher downloads video URLs under the image settings: allowed_hosts, fetch_timeout
// and max_redirects, with media's address check after DNS resolution and on every redirect.
func newVideoFetcher(img media.Config) (*media.Fetcher, error) {
	img, err := img.WithDefaults()
	if err != nil {
		return nil, err
	}
	return media.NewFetcher(&img), nil
}

// videoFile returns a local path for a video field value: a file path (relative ones under
// ImageDir), or an http(s) URL on the image allow-list, downloaded to a temporary file.
func (e *enricher) videoFile(ctx context.Context, v string) (string, func(), error) {
	nop := func() {}
	lower := strings.ToLower(v[:min(len(v), 8)])
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		lim, err := e.cfg.Video.WithDefaults()
		if err != nil {
			return "", nop, err
		}
		b, err := e.videos.Get(ctx, v, media.Resource{Name: "video", MaxBytes: int(lim.MaxBytes),
			Limit: "video.max_bytes (-video-max-bytes)", Accept: "video/*"})
		if err != nil {
			return "", nop, fmt.Errorf("video %.60q: %w", v, err)
		}
		f, err := os.CreateTemp("", "vlproxy-video-")
		if err != nil {
			return "", nop, fmt.Errorf("cannot store video: %w", err)
		}
		_, werr := f.Write(b)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			os.Remove(f.Name())
			return "", nop, fmt.Errorf("cannot store video: %w", err)
		}
		return f.Name(), func() { os.Remove(f.Name()) }, nil
	}
	if strings.HasPrefix(lower, "data:") {
		return "", nop, fmt.Errorf("cannot use video %.60q: give a file path or an http(s) URL", v)
	}
	p := v
	if !filepath.IsAbs(p) && e.cfg.ImageDir != "" {
		p = filepath.Join(e.cfg.ImageDir, p)
	}
	return p, nop, nil
}

// MomentsMapping is the nested mapping of video segments: start/end seconds, description and
// keywords as text, and (dim > 0) the segment vector as a vector field.
func MomentsMapping(engine string, dim int) map[string]any {
	props := map[string]any{
		"start":       map[string]any{"type": "float"},
		"end":         map[string]any{"type": "float"},
		"description": map[string]any{"type": "text"},
		"keywords":    map[string]any{"type": "text"},
	}
	if dim > 0 {
		props["vector"] = VectorMapping(engine, dim)
	}
	return map[string]any{"type": "nested", "properties": props}
}

// ensureMomentsField creates the nested moments field unless the index has it; an existing
// field that is not nested is an error (inner_hits need nested documents).
func (e *enricher) ensureMomentsField(ctx context.Context, index string, dim int) error {
	res, err := e.client.PerformRequest(ctx, elastic.PerformRequestOptions{Method: "GET",
		Path: "/" + url.PathEscape(index) + "/_mapping/field/" + url.PathEscape(e.cfg.MomentsField)})
	if err != nil {
		return fmt.Errorf("cannot read the mapping of %s: %w", index, err)
	}
	var found error
	exists := false
	gjson.ParseBytes(res.Body).ForEach(func(_, v gjson.Result) bool {
		f := v.Get("mappings." + gjson.Escape(e.cfg.MomentsField) + ".mapping." + gjson.Escape(lastPart(e.cfg.MomentsField)))
		if !f.Exists() {
			return true
		}
		exists = true
		if t := f.Get("type").String(); t != "nested" {
			found = fmt.Errorf("cannot write moments into %s.%s: the field has type %q, want nested", index, e.cfg.MomentsField, t)
		}
		return false
	})
	if found != nil {
		return found
	}
	if !exists {
		body := map[string]any{"properties": map[string]any{e.cfg.MomentsField: MomentsMapping(e.cfg.Engine, dim)}}
		if _, err := e.client.PutMapping().Index(index).BodyJson(body).Do(ctx); err != nil {
			return fmt.Errorf("cannot create the moments field %s.%s: %w", index, e.cfg.MomentsField, err)
		}
	}
	e.momentsMapped = true
	return nil
}
