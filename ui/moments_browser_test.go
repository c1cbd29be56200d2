package ui_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/ui"
)

// clipFPS is the frame rate of the test clip: "within a frame" is 1/clipFPS seconds.
const clipFPS = 25

// required reports whether a missing tool fails the test instead of skipping it.
func required() bool { return os.Getenv("CI") == "true" || os.Getenv("REQUIRE_BROWSER") == "1" }

// chromium finds Debian's chromium (bash testenv/chromium.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VLPROXY_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		return "/usr/lib/chromium/chromium" // the binary, without Debian's launcher script
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if required() {
		t.Fatal("chromium is required (CI=true or REQUIRE_BROWSER=1) but not installed: run bash testenv/chromium.sh")
	}
	t.Skip("chromium is not installed (bash testenv/chromium.sh installs it)")
	return ""
}

// clip makes a 6 s VP8 WebM (Chromium plays it in every build) with a key frame every second.
func clip(t *testing.T) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if required() {
			t.Fatal("ffmpeg is required (CI=true or REQUIRE_BROWSER=1) but not installed: make test-deps")
		}
		t.Skip("ffmpeg is not installed (make test-deps installs it)")
	}
	out := filepath.Join(t.TempDir(), "clip.webm")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc=size=160x120:rate=%d:duration=6", clipFPS),
		"-c:v", "libvpx", "-b:v", "200k", "-g", fmt.Sprint(clipFPS), "-threads", "1", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot make the test clip: %v\n%s", err, b)
	}
	return out
}

// momentsHit is the one hit the fake cluster answers: a product video with two moments.
const momentsHit = `{"took":1,"timed_out":false,"hits":{"total":{"value":1,"relation":"eq"},"max_score":1,"hits":[
{"_index":"products","_id":"v1","_score":1,"_source":{"title":"silk dress video","video":"/clips/clip.webm"},
 "inner_hits":{"moments":{"hits":{"total":{"value":2,"relation":"eq"},"hits":[
  {"_index":"products","_id":"v1","_nested":{"field":"moments","offset":1},"_score":2,"_source":{"start":3,"end":6,"description":"model turns around"}},
  {"_index":"products","_id":"v1","_nested":{"field":"moments","offset":0},"_score":1,"_source":{"start":0,"end":3,"description":"white backdrop"}}]}}}}]}}`

// servePlayground serves the playground with just enough of a cluster behind it: health, the
// index list, one search answer, and the clip: as a static file with Range requests (as a web
// server or CDN serves videos) or, without ranges, whole in one 200 answer.
func servePlayground(t *testing.T, clipPath string, ranges bool) string {
	t.Helper()
	h, err := ui.New(ui.DefaultConfig(), ui.Deps{Downscale: func(raw []byte) ([]byte, error) { return media.Prepare(raw, media.Config{}) }})
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		switch {
		case p == ui.Prefix || strings.HasPrefix(p, ui.Prefix+"/"):
			h.Serve(ctx)
		case p == "/_vlproxy/health":
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"status":"green","upstreams":[]}`)
		case p == "/_cat/indices":
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`[{"index":"products","docs.count":"1"}]`)
		case p == "/products/_search" && ctx.IsPost():
			ctx.SetContentType("application/json")
			ctx.SetBodyString(momentsHit)
		case p == "/clips/clip.webm" && ranges:
			fasthttp.ServeFile(ctx, clipPath)
		case p == "/clips/clip.webm":
			b, err := os.ReadFile(clipPath)
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
			ctx.SetContentType("video/webm")
			ctx.SetBody(b)
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// Clicking a moment plays the hit's video from that moment's second. A browser cannot seek in a
// video whose server ignores Range requests: the card then says why it plays from the start.
func TestMomentPlaysFromItsSecond(t *testing.T) {
	browser := chromium(t)
	path := clip(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900), chromedp.WSURLReadTimeout(90*time.Second))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	for _, ranges := range []bool{true, false} {
		t.Run(fmt.Sprintf("ranges=%v", ranges), func(t *testing.T) {
			playFromMoment(t, actx, servePlayground(t, path, ranges), ranges)
		})
	}
}

// watchJS records every seek's landing second and the second playback began at.
const watchJS = `(() => {
	const v = document.querySelector('#columns video.clip');
	window.seeks = []; window.playingAt = null;
	v.addEventListener('seeked', () => window.seeks.push(v.currentTime));
	v.addEventListener('playing', () => { if (window.playingAt === null) window.playingAt = v.currentTime; });
	return true;
})()`

// playerState is what the test reads of the page's video element.
type playerState struct {
	Seeks     []float64
	PlayingAt *float64
	Current   float64
	Paused    bool
	Ready     int
	Error     string
	Note      string // the card's seek note, "" while hidden
}

const stateJS = `(() => {
	const v = document.querySelector('#columns video.clip');
	return {Seeks: window.seeks, PlayingAt: window.playingAt, Current: v.currentTime, Paused: v.paused,
		Ready: v.readyState, Error: v.error ? v.error.message || String(v.error.code) : '',
		Note: document.querySelector('#columns .seek-note:not([hidden])')?.textContent || ''};
})()`

// seekedTo reports whether a seek landed on second want, within a frame.
func (st playerState) seekedTo(want float64) bool {
	for _, s := range st.Seeks {
		if math.Abs(s-want) <= 1.0/clipFPS {
			return true
		}
	}
	return false
}

func playFromMoment(t *testing.T, actx context.Context, base string, ranges bool) {
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var exceptions []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			exceptions = append(exceptions, e.ExceptionDetails.Error())
			mu.Unlock()
		}
	})
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if len(exceptions) > 0 {
			t.Errorf("page exceptions: %v", exceptions)
		}
	}()

	// The moment listed first is the best one, 0:03–0:06; its button plays from 3 s.
	var label string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+ui.Prefix+"/"),
		chromedp.WaitVisible(`body[data-ready="true"]`, chromedp.ByQuery),
		chromedp.SetValue("#text", "model turns around", chromedp.ByQuery),
		chromedp.Click("#moments", chromedp.ByQuery),
		chromedp.Click("#run", chromedp.ByQuery),
		chromedp.WaitVisible(`#columns button.moment`, chromedp.ByQuery),
		chromedp.WaitEnabled("#run", chromedp.ByQuery), // every column rendered: the player stays
		chromedp.Text(`#columns button.moment`, &label, chromedp.ByQuery),
		chromedp.Evaluate(watchJS, nil),
		chromedp.Click(`#columns button.moment`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("search and click: %v (exceptions %v)", err, exceptions)
	}
	if !strings.HasPrefix(label, "0:03–0:06") {
		t.Fatalf("the first moment reads %q, want 0:03–0:06 first", label)
	}
	// wait reads the player until done says so (30 s at most).
	wait := func(what string, done func(playerState) bool) playerState {
		t.Helper()
		var st playerState
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err := chromedp.Run(ctx, chromedp.Evaluate(stateJS, &st)); err != nil {
				t.Fatal(err)
			}
			if st.Error != "" {
				t.Fatalf("the video failed: %s", st.Error)
			}
			if done(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s within 30s: seeks %v, playing from %v, currentTime %.3f, paused %v, readyState %d",
					what, st.Seeks, deref(st.PlayingAt), st.Current, st.Paused, st.Ready)
			}
		}
	}
	if !ranges {
		st := wait("no note on the failed seek", func(st playerState) bool { return st.Note != "" })
		if !strings.Contains(st.Note, "Cannot play from 0:03") || !strings.Contains(st.Note, "Range requests") {
			t.Fatalf("the note reads %q", st.Note)
		}
		return
	}
	st := wait("no seek to 3 s (within a frame) and playback past it", func(st playerState) bool {
		return st.seekedTo(3) && st.PlayingAt != nil && !st.Paused && st.Current > 3
	})
	if st.Current > 4.5 {
		// Playing on from 0 would also pass 3 s; the seek came first, so the clock is still near it.
		t.Fatalf("the video is at %.3f s already: it did not start from the moment (seeks %v)", st.Current, st.Seeks)
	}
	if st.Note != "" {
		t.Fatalf("a seek that worked shows the note %q", st.Note)
	}

	// While it plays, the other moment (0:00) seeks back to its own second.
	err = chromedp.Run(ctx, chromedp.Evaluate(watchJS, nil),
		chromedp.Click(`#columns .moment-list li:nth-child(2) button.moment`, chromedp.ByQuery))
	if err != nil {
		t.Fatalf("second moment: %v", err)
	}
	wait("no seek back to 0 s", func(st playerState) bool { return st.seekedTo(0) })
}

func deref(p *float64) any {
	if p == nil {
		return "never"
	}
	return *p
}
