// Package video samples frames from product videos with Debian's ffprobe and ffmpeg, under
// limits on file size, duration, resolution, frame count and wall time, and merges per-frame
// labels into time-coded segments (segment.go). It knows nothing about models or ES: the
// caller labels frames through the FrameLabeler interface. enrich uses it at index time.
//
// Hostile input is handled by refusing early: a file is probed first (container on an
// allow-list, one video stream, a known duration within the limit, a bounded frame size),
// then decoded by a process with one thread, a memory cap (prlimit when present), only the
// file protocol, and a deadline after which it is killed.
package video

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits bound what one video may cost.
type Limits struct {
	// MaxBytes is the largest file accepted. Default 64 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxDuration is the longest video accepted (longer ones are refused, not cut). Default 2m.
	MaxDuration time.Duration `yaml:"max_duration"`
	// FPS is the sampling rate in frames per second. Default 1.
	FPS float64 `yaml:"fps"`
	// MaxFrames caps the sampled frames; the rate is lowered to fit. Default 120.
	MaxFrames int `yaml:"max_frames"`
	// MaxSide is the longest side of a sampled frame in pixels (downscaled, aspect kept). Default 448.
	MaxSide int `yaml:"max_side"`
	// MaxPixels refuses videos whose frames have more pixels (width × height). Default 4096×2304.
	MaxPixels int64 `yaml:"max_pixels"`
	// Timeout is the wall time of probing and sampling together; the process is killed
	// after it. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxMemory is the address-space cap of the ffmpeg process (via prlimit). Default 1 GiB.
	MaxMemory int64 `yaml:"max_memory"`
}

// DefaultLimits returns the defaults of every field.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:    64 << 20,
		MaxDuration: 2 * time.Minute,
		FPS:         1,
		MaxFrames:   120,
		MaxSide:     448,
		MaxPixels:   4096 * 2304,
		Timeout:     60 * time.Second,
		MaxMemory:   1 << 30,
	}
}

// WithDefaults fills zero fields with their defaults and checks the rest.
func (l Limits) WithDefaults() (Limits, error) {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = d.MaxDuration
	}
	if l.FPS <= 0 {
		l.FPS = d.FPS
	}
	if l.MaxFrames <= 0 {
		l.MaxFrames = d.MaxFrames
	}
	if l.MaxSide <= 0 {
		l.MaxSide = d.MaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = d.MaxPixels
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxMemory <= 0 {
		l.MaxMemory = d.MaxMemory
	}
	if l.FPS > 30 {
		return l, fmt.Errorf("cannot sample %v frames per second: at most 30", l.FPS)
	}
	if l.MaxSide < 16 || l.MaxSide > 4096 {
		return l, fmt.Errorf("cannot scale frames to %d pixels: want 16 to 4096", l.MaxSide)
	}
	return l, nil
}

// ErrInvalid marks a video refused for what it is (unreadable, hostile, over a limit), as
// opposed to a missing tool or a cancelled context.
var ErrInvalid = errors.New("invalid video")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Info is what probing found.
type Info struct {
	Format   string        // container, as ffprobe names it ("mov,mp4,m4a,3gp,3g2,mj2")
	Codec    string        // video codec
	Width    int           // frame size
	Height   int           //
	Duration time.Duration // of the container
	CPU      time.Duration // user+system time of ffprobe and ffmpeg for this video
}

// Frame is one sampled frame.
type Frame struct {
	At   float64 // seconds from the start
	JPEG []byte  // at most Limits.MaxSide on its longest side
}

// allowedFormats are the containers a product video comes in. Playlists (hls, concat),
// image sequences and network formats, which can make ffmpeg open other files, are refused.
var allowedFormats = map[string]bool{
	"mov": true, "mp4": true, "m4a": true, "3gp": true, "3g2": true, "mj2": true,
	"matroska": true, "webm": true, "avi": true, "mpegts": true, "gif": true,
}

// Tools reports whether ffprobe and ffmpeg are on PATH.
func Tools() error {
	for _, t := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("cannot find %s: install Debian's ffmpeg package (testenv/install-deps.sh): %w", t, err)
		}
	}
	return nil
}

// Sample probes the file at path and returns its frames at lim.FPS (lowered to fit
// lim.MaxFrames), each lim.MaxSide at most. Errors wrapping ErrInvalid are the file's fault.
func Sample(ctx context.Context, path string, lim Limits) ([]Frame, Info, error) {
	return sandboxed(ctx, path, lim, extract)
}

// sandboxed checks the tools, the limits and the file at path, probes it and hands it to step, all
// within lim.Timeout; Info.CPU counts every ffprobe and ffmpeg process of the run.
func sandboxed[T any](ctx context.Context, path string, lim Limits,
	step func(ctx context.Context, abs string, info Info, lim Limits, cpu *time.Duration) (T, error)) (T, Info, error) {
	var zero T
	lim, err := lim.WithDefaults()
	if err != nil {
		return zero, Info{}, err
	}
	if err := Tools(); err != nil {
		return zero, Info{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	abs, err := checkFile(path, lim)
	if err != nil {
		return zero, Info{}, err
	}
	var cpu time.Duration
	info, err := probe(ctx, abs, lim, &cpu)
	info.CPU = cpu
	if err != nil {
		return zero, info, err
	}
	out, err := step(ctx, abs, info, lim, &cpu)
	info.CPU = cpu
	return out, info, err
}

// checkFile refuses what is not a regular, non-empty file within lim.MaxBytes and
// returns its absolute path.
func checkFile(path string, lim Limits) (string, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", fmt.Errorf("cannot read video: %w", err)
	case !st.Mode().IsRegular():
		return "", invalid("%s is not a regular file", path)
	case st.Size() == 0:
		return "", invalid("%s is empty", path)
	case st.Size() > lim.MaxBytes:
		return "", invalid("%s has %d bytes, more than the limit of %d (max_bytes)", path, st.Size(), lim.MaxBytes)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("cannot resolve %s: %w", path, err)
	}
	return abs, nil
}

// probe reads the container and the first video stream and checks them against lim.
func probe(ctx context.Context, abs string, lim Limits, cpu *time.Duration) (Info, error) {
	var info Info
	out, err := run(ctx, lim, cpu, "ffprobe", "-v", "error", "-protocol_whitelist", "file",
		"-probesize", "5000000", "-analyzeduration", "5000000",
		"-print_format", "json", "-show_format", "-show_streams", "-select_streams", "v", "file:"+abs)
	if err != nil {
		return info, err
	}
	var p struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Duration  string `json:"duration"`
		} `json:"streams"`
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		return info, invalid("cannot read ffprobe's answer: %v", err)
	}
	info.Format = p.Format.FormatName
	ok := false
	for f := range strings.SplitSeq(info.Format, ",") {
		ok = ok || allowedFormats[f]
	}
	if !ok {
		return info, invalid("container %q is not accepted (want mp4/mov, matroska/webm, avi, mpegts or gif)", info.Format)
	}
	if len(p.Streams) == 0 {
		return info, invalid("no video stream")
	}
	s := p.Streams[0]
	info.Codec, info.Width, info.Height = s.CodecName, s.Width, s.Height
	if s.Width <= 0 || s.Height <= 0 {
		return info, invalid("the video stream has no frame size")
	}
	if int64(s.Width)*int64(s.Height) > lim.MaxPixels {
		return info, invalid("frames of %d×%d pixels are more than the limit of %d (max_pixels)", s.Width, s.Height, lim.MaxPixels)
	}
	d := p.Format.Duration
	if d == "" || d == "N/A" {
		d = s.Duration
	}
	secs, err := strconv.ParseFloat(d, 64)
	if err != nil || secs <= 0 {
		return info, invalid("cannot read the duration (%q)", d)
	}
	info.Duration = time.Duration(secs * float64(time.Second))
	if info.Duration > lim.MaxDuration {
		return info, invalid("the video lasts %s, longer than the limit of %s (max_duration)", info.Duration.Round(time.Millisecond), lim.MaxDuration)
	}
	return info, nil
}

// extract decodes the frames into a temporary directory and reads them back in order.
func extract(ctx context.Context, abs string, info Info, lim Limits, cpu *time.Duration) ([]Frame, error) {
	fps, vf := sampling(info, lim)
	dir, err := os.MkdirTemp("", "vlproxy-frames-")
	if err != nil {
		return nil, fmt.Errorf("cannot make a directory for frames: %w", err)
	}
	defer os.RemoveAll(dir)
	_, err = run(ctx, lim, cpu, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror",
		"-protocol_whitelist", "file", "-threads", "1", "-filter_threads", "1",
		"-t", strconv.FormatFloat(lim.MaxDuration.Seconds(), 'f', 3, 64),
		"-i", "file:"+abs, "-map", "0:v:0", "-an", "-sn", "-dn",
		"-vf", vf, "-frames:v", strconv.Itoa(lim.MaxFrames),
		"-c:v", "mjpeg", "-q:v", "4", "-f", "image2", filepath.Join(dir, "f%05d.jpg"))
	if err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "f*.jpg"))
	if err != nil {
		return nil, fmt.Errorf("cannot list frames: %w", err)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, invalid("no frame could be decoded")
	}
	frames := make([]Frame, 0, len(names))
	for i, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("cannot read frame: %w", err)
		}
		frames = append(frames, Frame{At: float64(i) / fps, JPEG: b})
	}
	return frames, nil
}

// sampling is the frame rate (lim.FPS, lowered to fit lim.MaxFrames) and the ffmpeg
// filter that samples at it and downscales to lim.MaxSide.
func sampling(info Info, lim Limits) (float64, string) {
	fps := lim.FPS
	if n := info.Duration.Seconds() * fps; n > float64(lim.MaxFrames) {
		fps = float64(lim.MaxFrames) / info.Duration.Seconds()
	}
	side := strconv.Itoa(lim.MaxSide)
	return fps, "fps=" + strconv.FormatFloat(fps, 'f', 6, 64) +
		",scale=w='min(" + side + ",iw)':h='min(" + side + ",ih)':force_original_aspect_ratio=decrease:force_divisible_by=2"
}

// maxOutput bounds what is kept of a tool's stdout (ffprobe's JSON) and stderr.
const maxOutput = 1 << 20

// run starts a tool with explicit arguments (no shell), under the memory cap when prlimit is
// present, adds its CPU time to *cpu and kills it at ctx's deadline. A non-zero exit is the file's fault (ErrInvalid)
// unless ctx ended.
func run(ctx context.Context, lim Limits, cpu *time.Duration, name string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", name, err)
	}
	argv := append([]string{bin}, args...)
	if pl, err := exec.LookPath("prlimit"); err == nil {
		argv = append([]string{pl, "--as=" + strconv.FormatInt(lim.MaxMemory, 10), "--core=0", "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxOutput, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ps := cmd.ProcessState; ps != nil {
		*cpu += ps.UserTime() + ps.SystemTime()
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("cannot read the video within its time limit (timeout): %s killed: %w", name, ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, invalid("%s cannot read it: %s", name, firstLines(msg, 3))
	}
	if stdout.over {
		return nil, invalid("%s printed more than %d bytes", name, maxOutput)
	}
	return stdout.Bytes(), nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
