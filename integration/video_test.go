package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/enrich"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/testenv"
	"github.com/vlproxy/vlproxy/video"
)

// ffmpegVideo runs ffmpeg with args to write a test video; it skips without ffmpeg unless
// REQUIRE_FFMPEG (make test) or CI is set.
func ffmpegVideo(t *testing.T, args ...string) {
	t.Helper()
	if err := video.Tools(); err != nil {
		if os.Getenv("REQUIRE_FFMPEG") != "" || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	out, err := exec.Command("ffmpeg", append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
	}
}

// effnetImageCPU reads the images and CPU milliseconds the model server has counted.
func effnetImageCPU(t *testing.T, base string) (images, cpuMS float64) {
	t.Helper()
	r := mustDo(t, rawClient(), 200, "GET", base+"/metrics", nil)
	for l := range strings.SplitSeq(string(r.Body), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		var v float64
		fmt.Sscan(f[1], &v)
		switch f[0] {
		case "effnet_images_total":
			images = v
		case "effnet_image_cpu_ms_total":
			cpuMS = v
		}
	}
	return images, cpuMS
}

// Product videos indexed through the real frame path (ffmpeg samples 1 fps, the real image
// model labels and embeds each frame, similar frames merge into segments) answer "which second
// shows it": a text or photo query with "moments": true returns the video and, in inner_hits,
// the segment where the thing appears, within ±1 s of where the test put it. Broken videos in
// the same run are refused within a time bound; the rest of the run goes on.
func TestVideoMomentsFindTheSecond(t *testing.T) {
	effnet := testenv.EffnetURL(t)
	node := testenv.URL(t)
	cat := testenv.Catalogue(t)
	c := rawClient()
	dir := t.TempDir()

	// red.mp4: 6 s of white, a red box from second 3 on.
	ffmpegVideo(t, "-f", "lavfi", "-i", "color=c=white:s=320x240:r=10:d=6",
		"-vf", "drawbox=x=80:y=60:w=160:h=120:color=red:t=fill:enable='gte(t,3)'",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", filepath.Join(dir, "red.mp4"))
	// watch.mp4: a catalogue T-shirt photo for 3 s, then a watch photo for 3 s.
	const shirt, watch = "1766", "10131"
	still := "scale=300:400:force_original_aspect_ratio=decrease,pad=300:400:(ow-iw)/2:(oh-ih)/2:white,setsar=1,fps=10"
	ffmpegVideo(t, "-loop", "1", "-t", "3", "-i", filepath.Join(cat, "images", shirt+".jpg"),
		"-loop", "1", "-t", "3", "-i", filepath.Join(cat, "images", watch+".jpg"),
		"-filter_complex", "[0:v]"+still+"[a];[1:v]"+still+"[b];[a][b]concat=n=2:v=1:a=0[v]", "-map", "[v]",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", filepath.Join(dir, "watch.mp4"))
	// Broken ones: garbage bytes, and a video longer than the limit.
	junk := make([]byte, 32<<10)
	for i := range junk {
		junk[i] = byte(i*31 + i>>7)
	}
	mustf(t, os.WriteFile(filepath.Join(dir, "junk.mp4"), junk, 0o644), "junk")
	ffmpegVideo(t, "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=5:d=20", "-c:v", "libx264", "-pix_fmt", "yuv420p", filepath.Join(dir, "long.mp4"))

	idx := uniqueName("vlp-video")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.knn":true},
		"mappings":{"properties":{"title":{"type":"text"},"video":{"type":"keyword"}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	var bulk bytes.Buffer
	for id, v := range map[string]string{"red": "red.mp4", "watch": "watch.mp4", "junk": "junk.mp4", "long": "long.mp4", "none": ""} {
		fmt.Fprintf(&bulk, "{\"index\":{\"_id\":%q}}\n{\"title\":\"product video %s\",\"video\":%q}\n", id, id, v)
	}
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")

	quiet := slog.New(slog.DiscardHandler)
	chat, emb := effnetClients(t, effnet)
	ecfg := enrich.DefaultConfig()
	ecfg.ESURL, ecfg.Index, ecfg.ImageDir, ecfg.VideoField = node, idx, dir, "video"
	ecfg.Video.MaxDuration = 15 * time.Second
	ecfg.Video.Timeout = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	images0, cpu0 := effnetImageCPU(t, effnet)
	start := time.Now()
	var progress bytes.Buffer
	st, err := enrich.RunModels(ctx, ecfg, enrich.Models{Chat: chat, Embed: emb}, &progress)
	took := time.Since(start)
	mustf(t, err, "enrich (stats %+v): %s", st, progress.String())
	images1, cpu1 := effnetImageCPU(t, effnet)
	if st.Videos != 2 || st.VideoFailed != 2 || st.Moments < 4 {
		t.Fatalf("enrich: %+v, want 2 videos indexed, 2 refused, at least 4 moments: %s", st, progress.String())
	}
	for _, want := range []string{"junk.mp4", "long.mp4", "longer than the limit", "videos=2 (12s, 4 moments) video_failed=2"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress does not report %q: %s", want, progress.String())
		}
	}
	t.Logf("enrich: %+v in %s; sampling CPU %.0f ms per video second; model %0.f frames, %.0f ms CPU = %.0f ms per video second",
		st, took.Round(time.Millisecond), float64(st.SampleCPU.Milliseconds())/st.VideoSeconds,
		images1-images0, cpu1-cpu0, (cpu1-cpu0)/st.VideoSeconds)
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_refresh", nil)

	// The segments as written: each video changes at second 3; a boundary within ±1 s of it
	// is a hit, any other boundary a false one.
	r := mustDo(t, c, 200, "POST", node+"/"+idx+"/_search", []byte(`{"query":{"ids":{"values":["red","watch"]}},"_source":{"excludes":["moments.vector"]}}`))
	for _, h := range gjson.GetBytes(r.Body, "hits.hits").Array() {
		var bounds []float64
		for _, m := range h.Get("_source.moments").Array()[1:] {
			bounds = append(bounds, m.Get("start").Float())
		}
		t.Logf("%s: segments %s", h.Get("_id"), h.Get("_source.moments"))
		if len(bounds) == 0 || math.Abs(bounds[0]-3) > 1 {
			t.Errorf("%s: segment boundaries %v, want the first within ±1 s of 3", h.Get("_id"), bounds)
		}
		if len(bounds) > 2 {
			t.Errorf("%s: %d boundaries %v for one change", h.Get("_id"), len(bounds), bounds)
		}
	}
	r = mustDo(t, c, 200, "GET", node+"/"+idx+"/_mapping", nil)
	if m := gjson.GetBytes(r.Body, idx+".mappings.properties.moments"); m.Get("type").String() != "nested" || m.Get("properties.vector.dimension").Int() != 1280 {
		t.Fatalf("moments mapping %s, want nested with a 1280-d vector", m)
	}

	rcfg := rewrite.DefaultConfig()
	rcfg.Profiles = []rewrite.Profile{{Index: idx, Fields: []string{"title"}}}
	rcfg.Timeout, rcfg.EmbedTimeout = 20*time.Second, 20*time.Second // 2 shared cores under a full make test
	rw, err := rewrite.New(rcfg, chat, cache.New(cache.Config{Name: "it-video-kw"}), quiet)
	mustf(t, err, "rewriter")
	rw.SetEmbedder(emb, cache.New(cache.Config{Name: "it-video-emb"}))
	prox := startProxy(t, node, proxy.WithRewriter(rw))

	// moment asks for clause and returns the top hit's id and its best moment's start and end.
	moment := func(clause string) (id string, startS, endS float64, body []byte) {
		t.Helper()
		r := mustDo(t, c, 200, "POST", prox+"/"+idx+"/_search",
			[]byte(`{"size":3,"_source":["title"],"query":{"multimodal":`+clause+`},"ext":{"vlproxy":{"explain":true}}}`))
		h := gjson.GetBytes(r.Body, "hits.hits.0")
		m := h.Get("inner_hits.moments.hits.hits.0._source")
		if !m.Exists() {
			t.Fatalf("%s: no moment in inner_hits: %s", clause, r.Body)
		}
		if m.Get("vector").Exists() {
			t.Errorf("%s: inner hit carries the segment vector", clause)
		}
		return h.Get("_id").String(), m.Get("start").Float(), m.Get("end").Float(), r.Body
	}
	f := func(name, clause, wantID string, wantStart float64) {
		t.Helper()
		id, s, e, body := moment(clause)
		t.Logf("%s: %s at %.1f–%.1f s", name, id, s, e)
		if id != wantID || math.Abs(s-wantStart) > 1 {
			t.Fatalf("%s: top hit %s with its moment at %.1f–%.1f s, want %s from %.0f±1 s: %s", name, id, s, e, wantID, wantStart, body)
		}
		if p := gjson.GetBytes(body, "ext.vlproxy.rewrite.moments.path").String(); p != "moments" {
			t.Fatalf("%s: explain has no moments entry: %s", name, gjson.GetBytes(body, "ext.vlproxy"))
		}
		if ex := gjson.GetBytes(body, "ext.vlproxy.moments.0"); ex.Get("_id").String() != id || ex.Get("moments.0.start").Float() != s {
			t.Fatalf("%s: explain lists moments %s, want %s from %.1f", name, ex, id, s)
		}
	}
	f("text red", `{"text":"red","moments":true}`, "red", 3)
	f("text watch", `{"text":"watch","moments":true}`, "watch", 3)
	photo, err := os.ReadFile(filepath.Join(cat, "images", watch+".jpg"))
	mustf(t, err, "watch photo")
	f("photo of the watch", `{"image":"`+dataURIOf(photo)+`","moments":true}`, "watch", 3)
	// kNN on the segment vectors, alone and next to the keywords.
	f("photo of the watch, kNN", `{"image":"`+dataURIOf(photo)+`","moments":true,"mode":"vector"}`, "watch", 3)
	f("photo of the watch, hybrid", `{"image":"`+dataURIOf(photo)+`","moments":true,"mode":"hybrid"}`, "watch", 3)
	shirtPhoto, err := os.ReadFile(filepath.Join(cat, "images", shirt+".jpg"))
	mustf(t, err, "shirt photo")
	f("photo of the T-shirt, kNN", `{"image":"`+dataURIOf(shirtPhoto)+`","moments":true,"mode":"vector"}`, "watch", 0)

	// Resume: nothing left to do, no frame is labelled again.
	ecfg.Resume = true
	images1, _ = effnetImageCPU(t, effnet)
	st, err = enrich.RunModels(ctx, ecfg, enrich.Models{Chat: chat, Embed: emb}, &progress)
	// Only the two broken videos are left, and they fail again: the run says so.
	if err == nil || !strings.Contains(err.Error(), "all 2 failed") || st.VideoFailed != 2 {
		t.Fatalf("enrich -resume: %v (stats %+v), want the two broken videos failing again", err, st)
	}
	if images2, _ := effnetImageCPU(t, effnet); images2 != images1 || st.Videos != 0 {
		t.Fatalf("enrich -resume labelled %v more images (stats %+v)", images2-images1, st)
	}
}
