package enrich

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// bar draws a one-line progress bar with \r updates.
type bar struct {
	w     io.Writer
	total int
	start time.Time
}

func newBar(w io.Writer, total int) *bar { return &bar{w: w, total: total, start: time.Now()} }

func (b *bar) line(st Stats) string {
	seen := st.Done + st.Failed + st.NoImage
	const width = 30
	filled := width
	if b.total > 0 {
		filled = min(width, seen*width/b.total)
	}
	rate := float64(seen) / max(time.Since(b.start).Seconds(), 1e-3)
	l := fmt.Sprintf("[%s%s] %d/%d docs  %.1f/s  done=%d failed=%d no_image=%d",
		strings.Repeat("#", filled), strings.Repeat(" ", width-filled), seen, b.total, rate, st.Done, st.Failed, st.NoImage)
	if st.Videos+st.VideoFailed > 0 {
		l += fmt.Sprintf("  videos=%d (%.0fs, %d moments) video_failed=%d", st.Videos, st.VideoSeconds, st.Moments, st.VideoFailed)
	}
	if st.VideoClips > 0 {
		l += fmt.Sprintf("  video_url=%d (rows dropped=%d merged=%d)", st.VideoClips, st.SegmentsDropped, st.SegmentsMerged)
	}
	if st.VideoFallback != "" {
		l += "  video_input=frames (" + st.VideoFallback + ")"
	}
	return l
}

func (b *bar) draw(st Stats)   { fmt.Fprint(b.w, "\r"+b.line(st)) }
func (b *bar) finish(st Stats) { fmt.Fprintln(b.w, "\r"+b.line(st)) }
