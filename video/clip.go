package video

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Clip probes the file at path like Sample and re-encodes it for a model that takes
// video (vLLM's video_url): the frames Sample would take (lim.FPS lowered to fit
// lim.MaxFrames, lim.MaxSide at most), as H.264 in MP4 without audio or metadata, on the
// source's clock (second n of the clip is second n of the video, as Sample's frame times
// assume), so the model's time codes need no mapping back. The clip is small (a 6 s
// 320×240 test video: 2 KB at 1 fps and 160 px) and is refused when larger than
// lim.MaxBytes. The encoder runs under the same sandbox as sampling (one thread, file
// protocol only, memory cap, deadline). Errors wrapping ErrInvalid are the file's fault.
func Clip(ctx context.Context, path string, lim Limits) ([]byte, Info, error) {
	return sandboxed(ctx, path, lim, encodeClip)
}

func encodeClip(ctx context.Context, abs string, info Info, lim Limits, cpu *time.Duration) ([]byte, error) {
	_, vf := sampling(info, lim)
	dir, err := os.MkdirTemp("", "vlproxy-clip-")
	if err != nil {
		return nil, fmt.Errorf("cannot make a directory for the clip: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "clip.mp4")
	_, err = run(ctx, lim, cpu, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror",
		"-protocol_whitelist", "file", "-threads", "1", "-filter_threads", "1",
		"-t", strconv.FormatFloat(lim.MaxDuration.Seconds(), 'f', 3, 64),
		"-i", "file:"+abs, "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
		"-vf", vf, "-frames:v", strconv.Itoa(lim.MaxFrames),
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p",
		"-x264-params", "threads=1", "-movflags", "+faststart", "-f", "mp4", "file:"+out)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(out)
	if err != nil {
		return nil, fmt.Errorf("cannot read the clip: %w", err)
	}
	if st.Size() > lim.MaxBytes {
		return nil, invalid("the re-encoded clip has %d bytes, more than the limit of %d (max_bytes)", st.Size(), lim.MaxBytes)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("cannot read the clip: %w", err)
	}
	return b, nil
}
