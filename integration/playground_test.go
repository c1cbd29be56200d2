package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

// The playground in a real headless Chromium, against the real vlproxy binary, a real
// OpenSearch node holding the demo catalogue (with its generated photos) and the model
// simulator with the demo's rules: load the page, upload a photo, see keywords and product
// cards with their photos, switch rerank on and see rank movement, break the model and see
// the fallback status; the CSP header holds and the console stays clean. Screenshots of each
// state go to test-artefacts/playground/ (gitignored).
func TestPlaygroundInBrowser(t *testing.T) {
	browser := chromiumPath(t)
	node := testenv.URL(t)
	root := repoRoot(t)
	c := rawClient()

	// The demo catalogue, photos included, in an index the demo's profile (products*) covers.
	idx := uniqueName("products-ui")
	mapping, err := os.ReadFile(filepath.Join(root, "testenv/demo/mapping.json"))
	mustf(t, err, "cannot read the demo mapping")
	mustDo(t, c, 200, "PUT", node+"/"+idx, mapping)
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	products, err := os.ReadFile(filepath.Join(root, "testenv/demo/products.ndjson"))
	mustf(t, err, "cannot read the demo catalogue")
	withPhotos, err := testenv.AddDemoPhotos(products, "image")
	mustf(t, err, "cannot add photos")
	var bulk bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(withPhotos), []byte("\n")) {
		var d struct {
			ID string `json:"id"`
		}
		mustf(t, json.Unmarshal(line, &d), "cannot read a product")
		fmt.Fprintf(&bulk, `{"index":{"_id":%q}}`+"\n%s\n", d.ID, line)
	}
	r := mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")
	if strings.Contains(string(r.Body[:min(len(r.Body), 64)]), `"errors":true`) {
		t.Fatalf("bulk load failed: %.500s", r.Body)
	}

	// The model simulator with the demo's rules, plus a judge score that lifts one dress to
	// the top so that rerank visibly moves hits.
	simCfg, err := modeltest.LoadConfig(filepath.Join(root, "testenv/demo/model-rules.yaml"))
	mustf(t, err, "cannot load the demo model rules")
	simCfg.ScoreFunc = func(_, doc modeltest.Doc) float64 {
		switch t := strings.ToLower(doc.Text); {
		case strings.Contains(t, "silk midi"):
			return 0.99
		case strings.Contains(t, "linen summer"):
			return 0.05
		}
		return 0.5
	}
	sim := modeltest.NewServer(simCfg)
	t.Cleanup(sim.Close)

	base := startVlproxy(t, root, "-upstream", node, "-model-url", sim.URL, "-config", filepath.Join(root, "testenv/demo/vlproxy.yaml"),
		"-rerank-scorer", "judge", "-ui", "-health-check-interval", "1s")
	page := base + "/_vlproxy/ui/"

	// Security headers, as any client sees them.
	pr := mustDo(t, c, 200, "GET", page, nil)
	csp := pr.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows inline code or remote origins", csp)
	}
	if got := pr.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if bytes.Contains(pr.Body, []byte("<script>")) || bytes.Contains(pr.Body, []byte("style=")) {
		t.Errorf("the page has inline script or style")
	}

	art := artefactDir(t, root)
	ctx, cancel := newBrowser(t, browser)
	defer cancel()
	problems := watchConsole(ctx)

	shot := func(name string, viewportOnly ...bool) {
		t.Helper()
		var shotPNG []byte
		action := chromedp.FullScreenshot(&shotPNG, 100)
		if len(viewportOnly) > 0 {
			action = chromedp.CaptureScreenshot(&shotPNG)
		}
		if err := chromedp.Run(ctx, action); err != nil {
			t.Fatalf("cannot take screenshot %s: %v", name, err)
		}
		mustf(t, os.WriteFile(filepath.Join(art, name+".png"), shotPNG, 0o644), "cannot save screenshot")
	}
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		actx, acancel := context.WithTimeout(ctx, 30*time.Second)
		defer acancel()
		if err := chromedp.Run(actx, actions...); err != nil {
			shot("failed")
			var page string
			_ = chromedp.Run(ctx, chromedp.Text(".results-area", &page, chromedp.ByQuery))
			t.Fatalf("%s: %v\nconsole: %v\npage: %.4000s", what, err, problems(), page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}

	// Load the page; the index picker lists our index.
	run("load the page",
		chromedp.Navigate(page),
		chromedp.WaitVisible(`body[data-ready="true"]`, chromedp.ByQuery),
		chromedp.SetValue("#index", idx, chromedp.ByQuery),
	)
	var picked string
	run("read the index picker", chromedp.Value("#index", &picked, chromedp.ByQuery))
	if picked != idx {
		t.Fatalf("the index picker does not offer %s (got %q)", idx, picked)
	}

	// Upload a photo: it shows as sent and as the model gets it.
	photo := filepath.Join(root, "testenv/demo/red-dress.jpg")
	run("upload the photo",
		chromedp.SetUploadFiles("#file", []string{photo}, chromedp.ByQuery),
		chromedp.WaitVisible(`#photos[data-done="red-dress.jpg"] #photo-model[src^="data:image/jpeg"]`, chromedp.ByQuery),
	)
	if info := text("#photo-model-info"); !regexp.MustCompile(`\d+×\d+ · [\d.]+ (KB|B) · jpeg`).MatchString(info) {
		t.Errorf("model image info = %q", info)
	}

	// A large photo is downscaled by the proxy's own pipeline before the model sees it.
	big := filepath.Join(t.TempDir(), "big.png")
	mustf(t, os.WriteFile(big, bigPNG(t, 1800, 1200), 0o644), "cannot write the large photo")
	run("upload a large photo",
		chromedp.SetUploadFiles("#file", []string{big}, chromedp.ByQuery),
		chromedp.WaitVisible(`#photos[data-done="big.png"] #photo-model[src^="data:image/jpeg"]`, chromedp.ByQuery),
	)
	if info := text("#photo-model-info"); !strings.Contains(info, "downscaled") || !strings.Contains(info, "1254×836") {
		t.Errorf("model image info for 1800×1200 = %q, want it downscaled to the 1024-token budget", info)
	}
	run("upload the photo again",
		chromedp.SetUploadFiles("#file", []string{photo}, chromedp.ByQuery),
		chromedp.WaitVisible(`#photos[data-done="red-dress.jpg"] #photo-model[src^="data:image/jpeg"]`, chromedp.ByQuery),
	)

	// Search: keywords from the model, product cards with their photos.
	start := time.Now()
	run("search with the photo",
		chromedp.Click("#run", chromedp.ByQuery),
		chromedp.WaitVisible(`#columns .card img.thumb`, chromedp.ByQuery),
		chromedp.WaitVisible(`#model-body .chip`, chromedp.ByQuery),
		chromedp.WaitEnabled("#run", chromedp.ByQuery),
	)
	elapsed := time.Since(start)
	if kw := text("#keywords"); !strings.Contains(kw, "red dress") {
		t.Errorf("keywords = %q, want the simulator's answer for the photo (red dress)", kw)
	}
	var firstMS string
	var loaded bool
	run("check the card photos",
		chromedp.AttributeValue("body", "data-first-results-ms", &firstMS, nil, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('#columns img.thumb')].every(i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/jpeg'))`, &loaded),
	)
	if !loaded {
		t.Errorf("a card photo did not load")
	}
	t.Logf("time to first results for a photo: %s ms in the page, %v including the click and rendering", firstMS, elapsed.Round(time.Millisecond))
	if st := text("#statuses"); !strings.Contains(st, "rewrite applied") {
		t.Errorf("statuses = %q, want rewrite applied", st)
	}
	if q := text("#rewritten"); !strings.Contains(q, `"multi_match"`) {
		t.Errorf("rewritten query = %q", q)
	}
	shot("1-photo-results")

	// A card opens its _source and explain record.
	run("open a card",
		chromedp.Click(`#columns .card-btn`, chromedp.ByQuery),
		chromedp.WaitVisible(`#detail[open] #detail-source`, chromedp.ByQuery),
	)
	if src := text("#detail-source"); !strings.Contains(src, `"title"`) || !strings.Contains(src, "characters)") {
		t.Errorf("detail _source = %q, want the product with its photo shortened", src)
	}
	shot("2-card-detail")
	run("close the card", chromedp.KeyEvent("\x1b"), chromedp.WaitNotPresent(`#detail[open]`, chromedp.ByQuery))

	// Rerank on: a second column, with movement markers against the first.
	run("search with rerank on",
		chromedp.Click(`input[name="rerank"][value="on"]`, chromedp.ByQuery),
		chromedp.SetValue("#text", "red dress for summer", chromedp.ByQuery),
		chromedp.Click("#run", chromedp.ByQuery),
		chromedp.WaitVisible(`#columns [data-col="2"] .card .move.up`, chromedp.ByQuery),
		chromedp.WaitEnabled("#run", chromedp.ByQuery),
	)
	if h := text(`#columns [data-col="2"] h3`); !strings.Contains(h, "rerank") {
		t.Errorf("third column = %q, want the rerank column", h)
	}
	if st := text(`#columns [data-col="2"] .statuses`); !strings.Contains(st, "rerank applied") {
		t.Errorf("rerank column statuses = %q", st)
	}
	if top := text(`#columns [data-col="2"] .card .title`); !strings.Contains(top, "silk midi") {
		t.Errorf("top reranked hit = %q, want the one the judge scores highest", top)
	}
	shot("3-rerank-movement")
	shot("3-rerank-movement-viewport", true)

	// An experiment variant joins the comparison, forced by X-VLProxy-Variant.
	run("compare the judge variant",
		chromedp.Click(`#exp-body button[aria-label*="rerank-ab/judge"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#exp-body button[aria-pressed="true"]`, chromedp.ByQuery),
		chromedp.Click("#run", chromedp.ByQuery),
		chromedp.WaitVisible(`#columns [data-col="3"] .card`, chromedp.ByQuery),
		chromedp.WaitEnabled("#run", chromedp.ByQuery),
	)
	if st := text(`#columns [data-col="3"]`); !strings.Contains(st, "variant rerank-ab/judge") || !strings.Contains(st, "variant judge") ||
		!regexp.MustCompile(`rerank (applied|cached)`).MatchString(st) {
		t.Errorf("variant column = %.300q", st)
	}
	if exp := text("#exp-body"); !regexp.MustCompile(`judge\s+50\s+—\s+on`).MatchString(exp) {
		t.Errorf("experiments panel = %.400q", exp)
	}
	run("stop comparing the variant",
		chromedp.Click(`#exp-body button[aria-pressed="true"]`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`#exp-body button[aria-pressed="true"]`, chromedp.ByQuery),
	)

	// Copy as curl: every request is in the log with its command.
	var curls []string
	run("read the request log", chromedp.Evaluate(`[...document.querySelectorAll('#request-list pre.curl')].map(p => p.textContent)`, &curls))
	found := false
	for _, cmd := range curls {
		if strings.HasPrefix(cmd, "curl -sS -X POST") && strings.Contains(cmd, "X-VLProxy-Rerank: on") && strings.Contains(cmd, idx+"/_search") {
			found = true
		}
	}
	if !found {
		t.Errorf("no curl command for the rerank search among %d: %q", len(curls), curls)
	}

	// The model breaks: the page shows the fallback status, not a blank page.
	broken := simCfg
	broken.Faults = []modeltest.Fault{{Route: modeltest.RouteChat, Status: 500}}
	mustf(t, sim.SetConfig(broken), "cannot break the simulator")
	run("search with the model down",
		chromedp.Click("#photo-clear", chromedp.ByQuery),
		chromedp.SetValue("#text", "linen shorts for the beach", chromedp.ByQuery),
		chromedp.Click(`input[name="rerank"][value="off"]`, chromedp.ByQuery),
		chromedp.Focus("#text", chromedp.ByQuery),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(input.ModifierCtrl)), // Ctrl+Enter searches
		chromedp.WaitVisible(`#columns .card`, chromedp.ByQuery),
		chromedp.WaitEnabled("#run", chromedp.ByQuery),
	)
	if st := text("#statuses"); !strings.Contains(st, "rewrite fallback:") {
		t.Errorf("statuses with the model down = %q, want a rewrite fallback", st)
	}
	shot("4-model-down-fallback")

	if p := problems(); len(p) > 0 {
		t.Errorf("console errors: %q", p)
	}
	before := len(problems())

	// A bad option comes back as a readable ES error (vector mode before the vector tier, or
	// whatever the proxy answers: never a blank column).
	mustf(t, sim.SetConfig(simCfg), "cannot repair the simulator")
	run("search in vector mode",
		chromedp.SetValue("#mode", "vector", chromedp.ByQuery),
		chromedp.Click("#run", chromedp.ByQuery),
		chromedp.WaitEnabled("#run", chromedp.ByQuery),
		chromedp.WaitVisible(`#columns [data-col="1"] h3`, chromedp.ByQuery),
	)
	shot("5-vector-mode")
	col := text(`#columns [data-col="1"]`)
	if !strings.Contains(col, "vector") || !(strings.Contains(col, "hits") || strings.Contains(col, "exception")) {
		t.Errorf("vector column = %q, want hits or a readable error", col)
	}

	// The browser logs the 400 it may have got; nothing else may appear.
	for _, p := range problems()[before:] {
		if !strings.Contains(p, "status of 400") {
			t.Errorf("console error in vector mode: %q", p)
		}
	}
}

// bigPNG draws a w×h gradient, a photo too large to send as is.
func bigPNG(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255})
		}
	}
	var buf bytes.Buffer
	mustf(t, png.Encode(&buf, img), "cannot encode the large photo")
	return buf.Bytes()
}

// chromiumPath finds Debian's chromium; without it the test skips, unless CI=true or
// REQUIRE_BROWSER=1 (make test installs it and sets that).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VLPROXY_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		return "/usr/lib/chromium/chromium" // Debian's binary, without the launcher script
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" || os.Getenv("REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium is required (CI=true or REQUIRE_BROWSER=1) but not installed: run bash testenv/chromium.sh")
	}
	t.Skip("chromium is not installed (bash testenv/chromium.sh installs it)")
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	mustf(t, err, "cannot find the working directory")
	return filepath.Dir(wd) // go test runs in integration/
}

// artefactDir is where screenshots go: $VLPROXY_ARTEFACTS/playground or test-artefacts/playground.
func artefactDir(t *testing.T, root string) string {
	t.Helper()
	dir := os.Getenv("VLPROXY_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(root, "test-artefacts")
	}
	dir = filepath.Join(dir, "playground")
	mustf(t, os.MkdirAll(dir, 0o755), "cannot create the artefact folder")
	return dir
}

// startVlproxy builds cmd/vlproxy and runs it on a free loopback port with args; it returns
// the base URL. The process stops when the test ends.
func startVlproxy(t *testing.T, root string, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vlproxy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vlproxy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build vlproxy: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), "VLPROXY_ADMIN_TOKEN=")
	stderr, err := cmd.StderrPipe()
	mustf(t, err, "cannot pipe vlproxy's log")
	mustf(t, cmd.Start(), "cannot start vlproxy")
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "vlproxy listening" {
				addr <- rec.Addr
				sent = true
			}
			if strings.Contains(line, `"level":"ERROR"`) {
				t.Log("vlproxy: " + line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("vlproxy did not start within 30s")
	}
	return ""
}

// newBrowser starts headless Chromium (as root it needs --no-sandbox) with a desktop-sized window.
func newBrowser(t *testing.T, path string) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1440, 1000),
		chromedp.WSURLReadTimeout(90*time.Second),
		chromedp.CombinedOutput(&chromeLog{t: t}),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled node event") { // newer CDP events than chromedp knows
			t.Log("chromedp: " + msg)
		}
	}))
	tctx, tcancel := context.WithTimeout(ctx, 4*time.Minute)
	if err := chromedp.Run(tctx); err != nil {
		tcancel()
		cancel()
		acancel()
		t.Fatalf("cannot start chromium: %v", err)
	}
	var version string
	if err := chromedp.Run(tctx, chromedp.Evaluate(`navigator.userAgent`, &version)); err == nil {
		t.Logf("browser: %s", version)
	}
	return tctx, func() { tcancel(); cancel(); acancel() }
}

// watchConsole collects console errors, uncaught exceptions and browser log errors (CSP
// violations, failed loads); the returned function lists them.
func watchConsole(ctx context.Context) func() []string {
	var mu sync.Mutex
	var out []string
	add := func(s string) { mu.Lock(); out = append(out, s); mu.Unlock() }
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				add("console." + string(e.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			add("exception: " + e.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError || e.Entry.Level == log.LevelWarning {
				add("log " + string(e.Entry.Source) + ": " + e.Entry.Text + " " + e.Entry.URL)
			}
		}
	})
	_ = chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error { return log.Enable().Do(ctx) }))
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), out...) }
}

// chromeLog passes Chromium's own output to the test log when -v is given, without its D-Bus noise.
type chromeLog struct{ t *testing.T }

func (l *chromeLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line != "" && !strings.Contains(line, "dbus") && testing.Verbose() {
			l.t.Log("chromium: " + line)
		}
	}
	return len(p), nil
}
