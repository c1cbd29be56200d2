package enrich

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/video"
)

// videoEnricher is an enricher with only what videoFile needs.
func videoEnricher(t *testing.T, allowed ...string) *enricher {
	t.Helper()
	e := &enricher{cfg: Config{ImageDir: "/data"}}
	e.cfg.Image.AllowedHosts = allowed
	var err error
	if e.videos, err = newVideoFetcher(e.cfg.Image); err != nil {
		t.Fatal(err)
	}
	return e
}

// check calls videoFile; wantErr "" wants the path wantPath (or, for a download, a file
// holding wantBody).
func check(t *testing.T, e *enricher, v, want, wantErr string) {
	t.Helper()
	p, cleanup, err := e.videoFile(context.Background(), v)
	defer cleanup()
	switch {
	case wantErr != "":
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: %v, want %q", v, err, wantErr)
		}
	case err != nil:
		t.Fatalf("%s: %v", v, err)
	case strings.HasPrefix(v, "http"):
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Fatalf("%s: downloaded %q %v, want %q", v, b, err, want)
		}
	case p != want:
		t.Fatalf("%s: %q, want %q", v, p, want)
	}
}

func TestVideoFileAllowList(t *testing.T) {
	e := videoEnricher(t, "*.cdn.example")
	f := func(v, wantPath, wantErr string) { t.Helper(); check(t, e, v, wantPath, wantErr) }
	f("clips/a.mp4", "/data/clips/a.mp4", "")
	f("/abs/b.mp4", "/abs/b.mp4", "")
	f("http://evil.example/v.mp4", "", "not in image.allowed_hosts")
	f("https://cdn.example.evil/v.mp4", "", "not in image.allowed_hosts")
	f("data:video/mp4;base64,AAAA", "", "give a file path or an http(s) URL")
}

// Video URLs get media's guard: the address is checked after DNS resolution (localhost is
// allowed by name but resolves to loopback) and on every redirect, and the size is bounded.
func TestVideoFileAddressCheck(t *testing.T) {
	clip := bytes.Repeat([]byte("webm"), 100)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		served.Add(1)
		switch req.URL.Path {
		case "/v.webm":
			w.Write(clip)
		case "/to-metadata":
			http.Redirect(w, req, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-other":
			http.Redirect(w, req, "http://evil.example/v.webm", http.StatusFound)
		case "/big":
			w.Write(bytes.Repeat([]byte{0}, 2000))
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	e := videoEnricher(t, "localhost", "127.0.0.1", "169.254.169.254")
	e.cfg.Video.MaxBytes = 1000
	f := func(v, want, wantErr string) { t.Helper(); check(t, e, v, want, wantErr) }

	f("http://localhost:"+port+"/v.webm", "", "address not allowed") // refused at dial, after DNS
	f("http://127.0.0.1:"+port+"/v.webm", "", "address not allowed")
	f("http://169.254.169.254/latest/meta-data/", "", "address not allowed")
	if n := served.Load(); n != 0 {
		t.Fatalf("the test server was reached %d times", n)
	}

	// Let 127.0.0.1 through (the test server lives there): redirects and size are still checked.
	e.videos.SetDeniedIP(func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") })
	f("http://127.0.0.1:"+port+"/v.webm", string(clip), "")
	f("http://127.0.0.1:"+port+"/to-metadata", "", "address not allowed")
	f("http://127.0.0.1:"+port+"/to-other", "", `host "evil.example": not in image.allowed_hosts`)
	f("http://127.0.0.1:"+port+"/big", "", "video.max_bytes")
	f("http://127.0.0.1:"+port+"/missing", "", "status 404")
}

// needFFmpeg skips without ffmpeg unless the run requires it (make test sets REQUIRE_FFMPEG).
func needFFmpeg(t *testing.T) {
	t.Helper()
	if err := video.Tools(); err != nil {
		if os.Getenv("REQUIRE_FFMPEG") != "" || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// Videos reach the chat model as one video_url clip (vLLM) or frame by frame, as
// video_input says; auto falls back to frames when the server refuses video. The model is
// the simulator (SIMULATED segments: it names each second of the clip by its colour).
func TestRunVideoInput(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "color=c=white:s=320x240:r=10:d=6",
		"-vf", "drawbox=x=80:y=60:w=160:h=120:color=red:t=fill:enable='gte(t,3)'",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", filepath.Join(dir, "red.mp4")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.mp4"), bytes.Repeat([]byte("junk"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	sim := modeltest.NewServer(modeltest.Config{})
	defer sim.Close()
	client := func(role, api string) *model.Client {
		mc := model.DefaultConfig()
		mc.URL, mc.API, mc.HealthInterval, mc.APIKeyEnv = sim.URL, api, -1, "VLPROXY_TEST_NO_SUCH_ENV"
		c, err := model.New(role, mc, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	run := func(input string, sc modeltest.Config, ms Models) (Stats, *fakeES, string, error) {
		t.Helper()
		if err := sim.SetConfig(sc); err != nil {
			t.Fatal(err)
		}
		es := &fakeES{docs: map[string]map[string]any{"red": {"video": "red.mp4"}, "junk": {"video": "junk.mp4"}}}
		srv := httptest.NewServer(es)
		defer srv.Close()
		cfg := Config{ESURL: srv.URL, Index: "products", ImageDir: dir, VideoField: "video", VideoInput: input}
		cfg.Video.Timeout = 20 * time.Second
		var progress bytes.Buffer
		st, err := RunModels(context.Background(), cfg, ms, &progress)
		return st, es, progress.String(), err
	}
	moments := func(es *fakeES) string {
		b, _ := json.Marshal(es.docs["red"]["moments"])
		return string(b)
	}
	const clipSegments = `[{"description":"plain white background","end":3,"keywords":["white"],"start":0},{"description":"red object in view","end":6,"keywords":["red"],"start":3}]`
	chat := client(model.RoleChat, model.APIVLLM)
	sentVideo := func() bool {
		return strings.Contains(string(sim.LastRequest("/v1/chat/completions")), `"type":"video_url"`)
	}

	// auto against vLLM: one video_url call, the model's segments as they came.
	st, es, progress, err := run(VideoAuto, modeltest.Config{}, Models{Chat: chat})
	if err != nil || st.Videos != 1 || st.VideoFailed != 1 || st.VideoClips != 1 || st.Moments != 2 || st.VideoFallback != "" {
		t.Fatalf("auto: %v %+v\n%s", err, st, progress)
	}
	if got := moments(es); got != clipSegments || !sentVideo() {
		t.Fatalf("auto: moments %s, video sent %v", got, sentVideo())
	}
	if !strings.Contains(progress, "video_url=1 (rows dropped=0 merged=0)") || !strings.Contains(progress, "junk.mp4") {
		t.Fatalf("auto: progress %s", progress)
	}

	// auto against a vLLM that takes no video: frames for the run, and it says why. The
	// red video costs the refused video_url call and one call per frame at 1 fps.
	calls := sim.Calls()["/v1/chat/completions"]
	st, es, progress, err = run(VideoAuto, modeltest.Config{MaxVideos: -1}, Models{Chat: chat})
	if err != nil || st.Videos != 1 || st.VideoClips != 0 || !strings.Contains(st.VideoFallback, "At most 0 video(s)") {
		t.Fatalf("auto, no video: %v %+v\n%s", err, st, progress)
	}
	if sentVideo() || !strings.Contains(progress, "video_input=frames (") {
		t.Fatalf("auto, no video: last request has a video %v; progress %s", sentVideo(), progress)
	}
	if n := sim.Calls()["/v1/chat/completions"] - calls; n != 1+6 || len(gjsonArray(t, moments(es))) == 0 {
		t.Fatalf("auto, no video: %d chat calls, want 7; moments %s", n, moments(es))
	}

	// video_url asked for explicitly: a refusal is each video's failure, not a fallback.
	st, _, progress, err = run(VideoURL, modeltest.Config{MaxVideos: -1}, Models{Chat: chat})
	if err == nil || st.Videos != 0 || st.VideoFailed != 2 || st.VideoFallback != "" || !strings.Contains(progress, "At most 0 video(s)") {
		t.Fatalf("video_url, no video: %v %+v\n%s", err, st, progress)
	}

	// frames, and auto with a server flavour that has no video_url: frames only.
	for _, c := range []struct {
		input string
		chat  *model.Client
	}{{VideoFrames, chat}, {VideoAuto, client(model.RoleChat, model.APIOpenAI)}} {
		st, _, progress, err = run(c.input, modeltest.Config{}, Models{Chat: c.chat})
		if err != nil || st.Videos != 1 || st.VideoClips != 0 || sentVideo() {
			t.Fatalf("%s: %v %+v, video sent %v\n%s", c.input, err, st, sentVideo(), progress)
		}
	}

	// With an embed model, each segment gets the vector of its middle frame.
	st, es, progress, err = run(VideoAuto, modeltest.Config{}, Models{Chat: chat, Embed: client(model.RoleEmbed, model.APIVLLM)})
	if err != nil || st.VideoClips != 1 || len(es.mappings) != 1 || !strings.Contains(es.mappings[0], `"vector"`) {
		t.Fatalf("auto with vectors: %v %+v mappings %v\n%s", err, st, es.mappings, progress)
	}
	segs := gjsonArray(t, moments(es))
	if len(segs) != 2 || len(segs[0].Get("vector").Array()) != 16 || segs[0].Get("vector").Raw == segs[1].Get("vector").Raw {
		t.Fatalf("auto with vectors: %s", moments(es))
	}
}

func gjsonArray(t *testing.T, s string) []gjson.Result {
	t.Helper()
	if !gjson.Valid(s) {
		t.Fatalf("invalid JSON %s", s)
	}
	return gjson.Parse(s).Array()
}

func TestConfigVideoInput(t *testing.T) {
	c, err := Config{Index: "x"}.withDefaults()
	if err != nil || c.VideoInput != VideoAuto {
		t.Fatalf("default: %q %v", c.VideoInput, err)
	}
	if _, err := (Config{Index: "x", VideoInput: "mp4"}).withDefaults(); err == nil || !strings.Contains(err.Error(), "video_input") {
		t.Fatalf("unknown input: %v", err)
	}
}
