package video

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTools skips without ffmpeg unless the run requires it (make test sets REQUIRE_FFMPEG=1
// after installing it, so a fresh machine runs these tests instead of skipping them).
func needTools(t *testing.T) {
	t.Helper()
	if err := Tools(); err != nil {
		if os.Getenv("REQUIRE_FFMPEG") != "" || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// makeVideo writes an H.264 MP4 of d seconds at 10 fps: white, with a red box from
// second redFrom on (redFrom >= d: never).
func makeVideo(t *testing.T, path string, d, redFrom float64) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "color=c=white:s=320x240:r=10:d="+ftoa(d),
		"-vf", "drawbox=x=80:y=60:w=160:h=120:color=red:t=fill:enable='gte(t,"+ftoa(redFrom)+")'",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func TestSampleFrames(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "a.mp4")
	makeVideo(t, p, 6, 3)
	frames, info, err := Sample(context.Background(), p, Limits{MaxSide: 160})
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 320 || info.Height != 240 || info.Duration < 5900*time.Millisecond || info.Duration > 6100*time.Millisecond {
		t.Fatalf("info %+v", info)
	}
	if len(frames) != 6 {
		t.Fatalf("%d frames at 1 fps of 6 s, want 6", len(frames))
	}
	for i, f := range frames {
		if f.At != float64(i) || !bytes.HasPrefix(f.JPEG, []byte{0xFF, 0xD8}) {
			t.Fatalf("frame %d: at %v, %d bytes, % x", i, f.At, len(f.JPEG), f.JPEG[:min(4, len(f.JPEG))])
		}
	}
	// Frames are downscaled to MaxSide and the box shows from second 3: frame 4 is far
	// larger as a JPEG than frame 1 (flat white).
	if len(frames[4].JPEG) <= len(frames[1].JPEG) {
		t.Fatalf("frame 4 (%d bytes) not larger than frame 1 (%d bytes)", len(frames[4].JPEG), len(frames[1].JPEG))
	}
	// The frame cap lowers the rate: 3 frames over 6 s.
	frames, _, err = Sample(context.Background(), p, Limits{MaxFrames: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 3 || frames[1].At != 2 {
		t.Fatalf("MaxFrames 3: %d frames, second at %v", len(frames), frames[1].At)
	}
}

// Broken and hostile files are refused with a clear error, well within the time limit.
func TestSampleRefusesBrokenVideos(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mp4")
	makeVideo(t, good, 4, 2)
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := filepath.Join(dir, "long.mp4")
	makeVideo(t, long, 12, 100)
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/13)
	}
	f := func(name, path string, lim Limits, want string) {
		t.Helper()
		lim.Timeout = 10 * time.Second
		start := time.Now()
		_, _, err := Sample(context.Background(), path, lim)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q, want ErrInvalid containing %q", name, err, want)
		}
		t.Logf("%s: %v (%s)", name, err, took.Round(time.Millisecond))
		if took > lim.Timeout {
			t.Fatalf("%s: took %s, past the %s limit", name, took, lim.Timeout)
		}
	}
	f("zero-length", write("empty.mp4", nil), Limits{}, "is empty")
	f("garbage", write("garbage.mp4", garbage), Limits{}, "cannot read it")
	f("truncated", write("trunc.mp4", raw[:len(raw)/3]), Limits{}, "cannot read it")
	f("too long", long, Limits{MaxDuration: 10 * time.Second}, "longer than the limit")
	f("too big", good, Limits{MaxBytes: 100}, "more than the limit")
	f("too many pixels", good, Limits{MaxPixels: 100 * 100}, "max_pixels")
	f("playlist", write("list.m3u8", []byte("#EXTM3U\n#EXTINF:1,\n"+good+"\n#EXT-X-ENDLIST\n")), Limits{}, "")
	f("concat script", write("list.txt", []byte("ffconcat version 1.0\nfile '"+good+"'\n")), Limits{}, "")
	f("directory", dir, Limits{}, "not a regular file")

	// A deadline kills the tool and says so (not ErrInvalid: the file may be fine).
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	start := time.Now()
	if _, _, err := Sample(ctx, good, Limits{}); err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "time limit") {
		t.Fatalf("expired context: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("expired context: took %s", took)
	}
}

func TestSegments(t *testing.T) {
	kw := func(at float64, k ...string) Labeled { return Labeled{At: at, Label: Label{Keywords: k}} }
	segs := Segments([]Labeled{
		kw(0, "white", "paper"), kw(1, "white", "paper"), kw(2, "white", "paper", "towel"),
		kw(3, "red", "box"), kw(4, "red", "box"), kw(5, "red", "box"),
	}, SegmentOptions{Duration: 5.5})
	if len(segs) != 2 || segs[0].Start != 0 || segs[0].End != 3 || segs[1].Start != 3 || segs[1].End != 5.5 {
		t.Fatalf("segments %+v", segs)
	}
	if segs[1].Description != "red, box" || segs[0].Keywords[0] != "white" || len(segs[0].Keywords) != 3 {
		t.Fatalf("segments %+v", segs)
	}
	vec := func(at float64, v ...float32) Labeled {
		return Labeled{At: at, Label: Label{Keywords: []string{"x"}, Vector: v}}
	}
	segs = Segments([]Labeled{vec(0, 1, 0), vec(1, 0.99, 0.1), vec(2, 0, 1)}, SegmentOptions{})
	if len(segs) != 2 || segs[1].Start != 2 || len(segs[0].Vector) != 2 || segs[0].Vector[0] < 0.99 {
		t.Fatalf("vector segments %+v", segs)
	}
	if len(Segments(nil, SegmentOptions{})) != 0 {
		t.Fatal("segments of no frames")
	}
}

// The memory cap reaches the tool: with 32 MiB of address space ffmpeg cannot even start, and
// the video is refused instead of the machine running out of memory.
func TestSampleMemoryCap(t *testing.T) {
	needTools(t)
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("no prlimit: the memory cap is not applied")
	}
	p := filepath.Join(t.TempDir(), "a.mp4")
	makeVideo(t, p, 2, 1)
	if _, _, err := Sample(context.Background(), p, Limits{MaxMemory: 32 << 20}); err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("32 MiB cap: %v, want a refusal", err)
	}
	if _, _, err := Sample(context.Background(), p, Limits{}); err != nil {
		t.Fatalf("default cap: %v", err)
	}
}

// A decoder that hangs is killed at the wall-time limit: a stand-in ffmpeg that sleeps (found
// first on PATH; ffprobe stays the real one) makes Sample return its timeout error in time.
func TestSampleKillsAtTimeout(t *testing.T) {
	needTools(t)
	p := filepath.Join(t.TempDir(), "a.mp4")
	makeVideo(t, p, 2, 1)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ffmpeg"), []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	start := time.Now()
	_, _, err := Sample(context.Background(), p, Limits{Timeout: time.Second})
	took := time.Since(start)
	if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "time limit") {
		t.Fatalf("hanging ffmpeg: %v", err)
	}
	if took > 4*time.Second {
		t.Fatalf("hanging ffmpeg: Sample returned after %s, limit 1s", took)
	}
	t.Logf("hanging ffmpeg killed after %s: %v", took.Round(time.Millisecond), err)
}

// Clip re-encodes what Sample would take as a small MP4: the same rate and size, the
// source's seconds, no audio; broken files are refused as Sample refuses them.
func TestClip(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "a.mp4")
	makeVideo(t, p, 6, 3)
	clip, info, err := Clip(context.Background(), p, Limits{MaxSide: 160})
	if err != nil {
		t.Fatal(err)
	}
	if len(clip) < 12 || string(clip[4:8]) != "ftyp" || info.Width != 320 || info.CPU <= 0 {
		t.Fatalf("clip of %d bytes (% x), info %+v", len(clip), clip[:min(8, len(clip))], info)
	}
	out := filepath.Join(dir, "clip.mp4")
	if err := os.WriteFile(out, clip, 0o644); err != nil {
		t.Fatal(err)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=width,height,nb_read_frames,codec_name:format=duration,nb_streams", "-of", "compact=p=0:nk=1", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(strings.ReplaceAll(string(probe), "|", " "))
	// codec, width, height, frames; then the stream count and the duration.
	if len(got) != 6 || got[0] != "h264" || got[1] != "160" || got[2] != "120" || got[3] != "6" || got[4] != "1" {
		t.Fatalf("clip streams: %q", got)
	}
	if d, _ := strconv.ParseFloat(got[5], 64); d < 5.5 || d > 6.5 {
		t.Fatalf("clip lasts %v s, want 6", d)
	}
	t.Logf("6 s 320×240 video → %d-byte clip at 1 fps, 160×120, %s CPU", len(clip), info.CPU)

	junk := filepath.Join(dir, "junk.mp4")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Clip(context.Background(), junk, Limits{Timeout: 10 * time.Second}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("junk: %v, want ErrInvalid", err)
	}
}
