package enrich

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/video"
)

// How a video reaches the chat model (Config.VideoInput).
const (
	// VideoFrames labels every sampled frame on its own and merges similar frames.
	VideoFrames = "frames"
	// VideoURL sends the sampled clip in one video_url part and reads the model's segments.
	VideoURL = "video_url"
	// VideoAuto is VideoURL when the chat model's server takes video (vLLM, which has not
	// refused one), else VideoFrames.
	VideoAuto = "auto"
)

// videoAccepter is what a chat model client says about video input (model.Client does).
type videoAccepter interface{ AcceptsVideo() bool }

// clipState is the run's video_url state: whether the server has taken a video, whether
// auto mode fell back to frames and why, and counts for Stats.
type clipState struct {
	accepted atomic.Bool // the server answered a video_url request
	off      atomic.Bool // auto: the server refused video before taking any; frames from now on
	clips    atomic.Int64
	dropped  atomic.Int64
	merged   atomic.Int64

	mu     sync.Mutex
	reason string
}

func (c *clipState) fallBack(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == "" {
		c.reason = err.Error()
		if len(c.reason) > 160 {
			c.reason = c.reason[:160] + "…"
		}
	}
	c.off.Store(true)
}

func (c *clipState) fallback() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// useClip reports whether the next video goes to the chat model as a video_url clip.
func (e *enricher) useClip() bool {
	if e.m == nil {
		return false
	}
	switch e.cfg.VideoInput {
	case VideoURL:
		return true
	case VideoAuto:
		a, ok := e.m.(videoAccepter)
		return ok && a.AcceptsVideo() && !e.clip.off.Load()
	}
	return false
}

// refused reports whether err is the server saying it takes no video: in auto mode, a
// 400 before any video was accepted (vLLM started with --limit-mm-per-prompt
// '{"video":0}', or a model without video). The run then goes on by frames. Once a video
// was accepted, a 400 is that video's failure.
func (e *enricher) refused(err error) bool {
	var me *model.Error
	if e.cfg.VideoInput != VideoAuto || e.clip.accepted.Load() || !errors.As(err, &me) || me.Kind != model.KindBadRequest {
		return false
	}
	e.clip.fallBack(err)
	return true
}

// clipMoments asks the chat model for the segments of the video at path in one call with
// the clip, and (with an embed model) gives each segment the vector of its middle frame.
func (e *enricher) clipMoments(ctx context.Context, path string) ([]video.Segment, video.Info, int, error) {
	clip, info, err := video.Clip(ctx, path, e.cfg.Video)
	if err != nil {
		return nil, info, 0, fmt.Errorf("cannot sample the video: %w", err)
	}
	if err := e.wait(ctx); err != nil {
		return nil, info, 0, err
	}
	dur := info.Duration.Seconds()
	cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	resp, err := e.m.Chat(cctx, videoRequest("data:video/mp4;base64,"+base64.StdEncoding.EncodeToString(clip), dur))
	cancel()
	if err != nil {
		return nil, info, 0, fmt.Errorf("cannot get segments: %w", err)
	}
	e.clip.accepted.Store(true)
	p, err := video.ParseSegments(resp.Content, dur, videoMaxSegments)
	if err != nil {
		return nil, info, 0, fmt.Errorf("cannot read segments from %.80q: %w", resp.Content, err)
	}
	e.clip.dropped.Add(int64(p.Dropped))
	e.clip.merged.Add(int64(p.Merged))
	if len(p.Segments) == 0 {
		return nil, info, 0, fmt.Errorf("no usable segment in the answer (%d rows dropped): %.80q", p.Dropped, resp.Content)
	}
	e.clip.clips.Add(1)
	if e.emb == nil {
		return p.Segments, info, 0, nil
	}
	dim, err := e.segmentVectors(ctx, path, p.Segments, &info)
	return p.Segments, info, dim, err
}

// segmentVectors samples the frames and embeds, per segment, the frame nearest its middle.
func (e *enricher) segmentVectors(ctx context.Context, path string, segs []video.Segment, info *video.Info) (int, error) {
	frames, finfo, err := video.Sample(ctx, path, e.cfg.Video)
	info.CPU += finfo.CPU
	if err != nil {
		return 0, fmt.Errorf("cannot sample the video: %w", err)
	}
	dim := 0
	for i := range segs {
		mid := (segs[i].Start + segs[i].End) / 2
		best := 0
		for j, f := range frames {
			if math.Abs(f.At-mid) < math.Abs(frames[best].At-mid) {
				best = j
			}
		}
		lb, err := frameLabeler{e: e, vectorOnly: true}.LabelFrame(ctx, frames[best].JPEG)
		if err != nil {
			return 0, fmt.Errorf("cannot embed the frame at %.1fs: %w", frames[best].At, err)
		}
		segs[i].Vector, dim = lb.Vector, len(lb.Vector)
	}
	return dim, nil
}
