package integration

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/enrich"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/testenv"
)

// The video_url path on the real node: enrich sends each video as one clip to a vLLM (the
// simulator, which decodes the clip and names each second by its colour: SIMULATED
// segments), writes the segments it answers, and a "moments" query finds the second the
// red box appears, within ±1 s.
func TestVideoMomentsVideoURL(t *testing.T) {
	node := testenv.URL(t)
	c := rawClient()
	dir := t.TempDir()
	ffmpegVideo(t, "-f", "lavfi", "-i", "color=c=white:s=320x240:r=10:d=6",
		"-vf", "drawbox=x=80:y=60:w=160:h=120:color=red:t=fill:enable='gte(t,3)'",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", filepath.Join(dir, "red.mp4"))
	ffmpegVideo(t, "-f", "lavfi", "-i", "color=c=blue:s=320x240:r=10:d=4",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", filepath.Join(dir, "blue.mp4"))

	idx := uniqueName("vlp-videourl")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"video":{"type":"keyword"}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true",
		[]byte("{\"index\":{\"_id\":\"red\"}}\n{\"title\":\"product video\",\"video\":\"red.mp4\"}\n{\"index\":{\"_id\":\"blue\"}}\n{\"title\":\"product video\",\"video\":\"blue.mp4\"}\n"),
		"Content-Type", "application/x-ndjson")

	sim := modeltest.NewServer(modeltest.Config{})
	t.Cleanup(sim.Close)
	mc := model.DefaultConfig()
	mc.URL, mc.HealthInterval, mc.APIKeyEnv = sim.URL, -1, "VLPROXY_TEST_NO_SUCH_ENV"
	quiet := slog.New(slog.DiscardHandler)
	chat, err := model.New(model.RoleChat, mc, quiet)
	mustf(t, err, "model client")
	t.Cleanup(chat.Close)

	ecfg := enrich.DefaultConfig()
	ecfg.ESURL, ecfg.Index, ecfg.ImageDir, ecfg.VideoField = node, idx, dir, "video"
	ecfg.Video.Timeout = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress bytes.Buffer
	st, err := enrich.RunModels(ctx, ecfg, enrich.Models{Chat: chat}, &progress)
	mustf(t, err, "enrich (stats %+v): %s", st, progress.String())
	if st.Videos != 2 || st.VideoClips != 2 || st.VideoFallback != "" || st.Moments != 3 {
		t.Fatalf("enrich: %+v, want 2 videos through video_url, 3 moments: %s", st, progress.String())
	}
	if calls := sim.Calls()["/v1/chat/completions"]; calls != 2 {
		t.Fatalf("%d chat calls, want one per video", calls)
	}
	t.Logf("enrich: %+v; sampling and clip encoding %.0f ms CPU per video second", st, float64(st.SampleCPU.Milliseconds())/st.VideoSeconds)
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_refresh", nil)

	rcfg := rewrite.DefaultConfig()
	rcfg.Profiles = []rewrite.Profile{{Index: idx, Fields: []string{"title"}}}
	rcfg.Timeout = 20 * time.Second
	rw, err := rewrite.New(rcfg, chat, cache.New(cache.Config{Name: "it-videourl-kw"}), quiet)
	mustf(t, err, "rewriter")
	prox := startProxy(t, node, proxy.WithRewriter(rw))
	r := mustDo(t, c, 200, "POST", prox+"/"+idx+"/_search",
		[]byte(`{"size":2,"_source":["title"],"query":{"multimodal":{"text":"red","moments":true}}}`))
	h := gjson.GetBytes(r.Body, "hits.hits.0")
	m := h.Get("inner_hits.moments.hits.hits.0._source")
	t.Logf("text red: %s at %s", h.Get("_id"), m)
	if h.Get("_id").String() != "red" || math.Abs(m.Get("start").Float()-3) > 1 || !strings.Contains(m.Get("description").String(), "red") {
		t.Fatalf("text red: top hit %s with moment %s, want red from 3±1 s: %s", h.Get("_id"), m, r.Body)
	}
}
