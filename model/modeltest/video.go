package modeltest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// videoSegment is one segment of a video answer.
type videoSegment struct {
	Start       float64  `json:"start"`
	End         float64  `json:"end"`
	Description string   `json:"description"`
	Keywords    []string `json:"keywords"`
}

// videoRef decodes a video_url value like vLLM: a base64 data URI. An http(s) URL would
// be fetched by vLLM; the simulator fetches nothing and refuses it.
func videoRef(url string) ([]byte, error) {
	meta, data, ok := strings.Cut(strings.TrimPrefix(url, "data:"), ",")
	switch {
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		return nil, errors.New("modeltest: video URLs are not fetched; send a data URI")
	case !strings.HasPrefix(url, "data:") || !ok || !strings.HasSuffix(meta, ";base64"):
		return nil, errors.New("Only base64 data URLs are supported for now.")
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(b) == 0 {
		return nil, errors.New("cannot decode the video: invalid base64")
	}
	return b, nil
}

// videoSegments is what the simulator "sees" in a clip: ffmpeg decodes it at one frame
// a second into 8×8 pixels, each second is named by its colour (colourName), and runs of
// the same colour become segments {"start","end","description":"<colour> …","keywords"}.
// Real segments, if coarse: a test video whose red box appears at second 3 gives a white
// segment [0,3) and a red one from 3.
func videoSegments(ctx context.Context, clip []byte) ([]byte, *Fault) {
	names, err := secondColours(ctx, clip)
	if err != nil {
		return nil, badRequest("cannot decode the video: %s", err.Error())
	}
	var segs []videoSegment
	for i, n := range names {
		if k := len(segs); k > 0 && segs[k-1].Keywords[0] == n {
			segs[k-1].End = float64(i + 1)
			continue
		}
		desc := n + " object in view"
		if neutral[n] {
			desc = "plain " + n + " background"
		}
		segs = append(segs, videoSegment{Start: float64(i), End: float64(i + 1), Description: desc, Keywords: []string{n}})
	}
	b, _ := json.Marshal(map[string][]videoSegment{"segments": segs})
	return b, nil
}

const side = 8 // pixels of a decoded frame's side

func secondColours(ctx context.Context, clip []byte) ([]string, error) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, errors.New("modeltest decodes videos with ffmpeg, which is not installed")
	}
	dir, err := os.MkdirTemp("", "modeltest-video-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "clip")
	if err := os.WriteFile(in, clip, 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-nostdin", "-v", "error", "-protocol_whitelist", "file", "-i", "file:"+in,
		"-vf", "fps=1,scale=8:8", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String() + " " + err.Error()))
	}
	frame := side * side * 3
	if out.Len() < frame {
		return nil, errors.New("no frame decoded")
	}
	var names []string
	for b := out.Bytes(); len(b) >= frame; b = b[frame:] {
		names = append(names, colourName(b[:frame]))
	}
	return names, nil
}

var neutral = map[string]bool{"white": true, "gray": true, "black": true}

// colourName names an RGB frame: the most common saturated hue when it covers at least
// an eighth of the pixels (a product in front of a backdrop), else the most common
// neutral tone.
func colourName(rgb []byte) string {
	counts := map[string]int{}
	for i := 0; i+2 < len(rgb); i += 3 {
		counts[pixelName(int(rgb[i]), int(rgb[i+1]), int(rgb[i+2]))]++
	}
	best, bestN := "", 0
	for _, n := range []string{"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"} {
		if counts[n] > bestN {
			best, bestN = n, counts[n]
		}
	}
	if bestN*8 >= side*side {
		return best
	}
	best, bestN = "white", counts["white"]
	for _, n := range []string{"gray", "black"} {
		if counts[n] > bestN {
			best, bestN = n, counts[n]
		}
	}
	return best
}

func pixelName(r, g, b int) string {
	hi, lo := max(r, g, b), min(r, g, b)
	if hi-lo < 60 {
		switch {
		case hi > 200:
			return "white"
		case hi < 60:
			return "black"
		}
		return "gray"
	}
	var h int // hue in degrees
	switch d := hi - lo; hi {
	case r:
		h = (60*(g-b)/d + 360) % 360
	case g:
		h = 60*(b-r)/d + 120
	default:
		h = 60*(r-g)/d + 240
	}
	switch {
	case h < 15 || h >= 345:
		if r > 200 && lo > 150 {
			return "pink"
		}
		return "red"
	case h < 45:
		return "orange"
	case h < 70:
		return "yellow"
	case h < 160:
		return "green"
	case h < 200:
		return "cyan"
	case h < 260:
		return "blue"
	case h < 300:
		return "purple"
	}
	return "pink"
}
