package integration

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

// The playground's "video moments" box sends "moments": true, and each card lists the hit's
// matching seconds from inner_hits.
func TestPlaygroundShowsMoments(t *testing.T) {
	browser := chromiumPath(t)
	node := testenv.URL(t)
	root := repoRoot(t)
	c := rawClient()
	idx := uniqueName("products-ui-video")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"moments":{"type":"nested","properties":{
		"start":{"type":"float"},"end":{"type":"float"},"description":{"type":"text"},"keywords":{"type":"text"}}}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	var bulk bytes.Buffer
	bulk.WriteString(`{"index":{"_id":"v1"}}` + "\n" + `{"title":"silk dress video","moments":[` +
		`{"start":0,"end":3,"description":"white backdrop","keywords":["white"]},` +
		`{"start":3,"end":7.5,"description":"model turns around","keywords":["turning","dress"]}]}` + "\n")
	bulk.WriteString(`{"index":{"_id":"v2"}}` + "\n" + `{"title":"boots video","moments":[` +
		`{"start":0,"end":4,"description":"boots on a shelf","keywords":["boots"]}]}` + "\n")
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")

	simCfg, err := modeltest.LoadConfig(filepath.Join(root, "testenv/demo/model-rules.yaml"))
	mustf(t, err, "cannot load the demo model rules")
	sim := modeltest.NewServer(simCfg)
	t.Cleanup(sim.Close)
	base := startVlproxy(t, root, "-upstream", node, "-model-url", sim.URL, "-config", filepath.Join(root, "testenv/demo/vlproxy.yaml"), "-ui")

	ctx, cancel := newBrowser(t, browser)
	defer cancel()
	problems := watchConsole(ctx)
	actx, acancel := context.WithTimeout(ctx, 60*time.Second)
	defer acancel()
	var list string
	err = chromedp.Run(actx,
		chromedp.Navigate(base+"/_vlproxy/ui/"),
		chromedp.WaitVisible(`body[data-ready="true"]`, chromedp.ByQuery),
		chromedp.SetValue("#index", idx, chromedp.ByQuery),
		chromedp.SetValue("#text", "model turns around", chromedp.ByQuery),
		chromedp.Click("#moments", chromedp.ByQuery),
		chromedp.Click("#run", chromedp.ByQuery),
		chromedp.WaitVisible(`#columns .moment-list li`, chromedp.ByQuery),
		chromedp.Text(`#columns .moment-list`, &list, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("search with video moments: %v (console %v)", err, problems())
	}
	if !strings.Contains(list, "0:03–0:08 model turns around") {
		t.Fatalf("the first card's moments read %q, want 0:03–0:08 model turns around first", list)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console: %v", p)
	}
}
