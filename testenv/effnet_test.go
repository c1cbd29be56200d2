package testenv

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// The reference was computed with torch and the package's own architecture code
// (../shared/reference/effnet-lite0-reference.json).
type effnetReference struct {
	Images []struct {
		ID   string `json:"id"`
		Top5 []struct {
			Index int     `json:"index"`
			Label string  `json:"label"`
			P     float64 `json:"p"`
		} `json:"top5"`
		LogitMax     float64   `json:"logit_max"`
		FeatureL2    float64   `json:"feature_l2"`
		FeatureFirst []float64 `json:"feature_first8"`
	} `json:"images"`
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

func dataURI(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read %s: %v", path, err)
	}
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b)
}

var effnetClient = &http.Client{Timeout: 60 * time.Second}

func postJSON(t *testing.T, u string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := effnetClient.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return resp.StatusCode, out
}

type embeddingResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
	Metrics struct {
		CPUMs float64 `json:"cpu_ms"`
	} `json:"metrics"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Metrics struct {
		CPUMs float64 `json:"cpu_ms"`
		Top5  []struct {
			Index int     `json:"index"`
			Label string  `json:"label"`
			P     float64 `json:"p"`
		} `json:"top5"`
	} `json:"metrics"`
}

func imageMessages(uri, text string) []any {
	parts := []any{map[string]any{"type": "image_url", "image_url": map[string]any{"url": uri}}}
	if text != "" {
		parts = append(parts, map[string]any{"type": "text", "text": text})
	}
	return []any{map[string]any{"role": "user", "content": parts}}
}

func keywordFormat(maxItems int) map[string]any {
	return map[string]any{"type": "json_schema", "json_schema": map[string]any{
		"name": "search_keywords", "strict": true,
		"schema": map[string]any{"type": "object", "required": []string{"keywords"}, "properties": map[string]any{
			"keywords":   map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "maxItems": maxItems},
			"category":   map[string]any{"type": "string"},
			"attributes": map[string]any{"type": "object"},
		}}}}
}

// TestEffnetReference checks the server against the torch reference on the eight photos: top-5
// labels, pooled features within 1e-3 relative, and the same vector from both embedding forms.
func TestEffnetReference(t *testing.T) {
	base := EffnetURL(t)
	raw, err := os.ReadFile(repoFile(t, "../shared/reference/effnet-lite0-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref effnetReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Images) != 8 {
		t.Fatalf("reference has %d images, want 8", len(ref.Images))
	}
	var cpu float64
	for _, img := range ref.Images {
		uri := dataURI(t, repoFile(t, "../shared/data/fashion/images/"+img.ID+".jpg"))

		st, body := postJSON(t, base+"/v1/embeddings", map[string]any{"input": []string{uri}})
		if st != 200 {
			t.Fatalf("%s: embeddings status %d: %s", img.ID, st, body)
		}
		var er embeddingResponse
		if err := json.Unmarshal(body, &er); err != nil || len(er.Data) != 1 {
			t.Fatalf("%s: bad embeddings response (%v): %.300s", img.ID, err, body)
		}
		f := er.Data[0].Embedding
		if len(f) != 1280 {
			t.Fatalf("%s: %d dimensions, want 1280", img.ID, len(f))
		}
		var l2 float64
		for _, v := range f {
			l2 += v * v
		}
		l2 = math.Sqrt(l2)
		if rel := math.Abs(l2-img.FeatureL2) / img.FeatureL2; rel > 1e-3 {
			t.Errorf("%s: feature L2 %.5f, reference %.5f (relative %.2g > 1e-3)", img.ID, l2, img.FeatureL2, rel)
		}
		for i, want := range img.FeatureFirst {
			// 1e-3 relative to the value, or to the vector's scale for (rounded) zeros
			if d := math.Abs(f[i] - want); d > 1e-3*math.Max(math.Abs(want), 0.01*img.FeatureL2/math.Sqrt(1280))+1e-5 {
				t.Errorf("%s: feature[%d] = %.6f, reference %.5f", img.ID, i, f[i], want)
			}
		}
		cpu += er.Metrics.CPUMs

		// vLLM's chat form gives the same vector
		st, body = postJSON(t, base+"/v1/embeddings", map[string]any{"messages": imageMessages(uri, "a product photo")})
		if st != 200 {
			t.Fatalf("%s: chat-form embeddings status %d: %s", img.ID, st, body)
		}
		var er2 embeddingResponse
		if err := json.Unmarshal(body, &er2); err != nil || len(er2.Data) != 1 || len(er2.Data[0].Embedding) != 1280 {
			t.Fatalf("%s: bad chat-form embeddings response (%v): %.300s", img.ID, err, body)
		}
		for i := range f {
			if math.Abs(er2.Data[0].Embedding[i]-f[i]) > 1e-6 {
				t.Fatalf("%s: chat-form embedding differs at %d: %v vs %v", img.ID, i, er2.Data[0].Embedding[i], f[i])
			}
		}

		// top-5 labels, from the chat route's metrics
		st, body = postJSON(t, base+"/v1/chat/completions", map[string]any{
			"messages": imageMessages(uri, ""), "max_tokens": 128, "response_format": keywordFormat(8)})
		if st != 200 {
			t.Fatalf("%s: chat status %d: %s", img.ID, st, body)
		}
		var cr chatResponse
		if err := json.Unmarshal(body, &cr); err != nil || len(cr.Metrics.Top5) != 5 {
			t.Fatalf("%s: bad chat response (%v): %.300s", img.ID, err, body)
		}
		for i, want := range img.Top5 {
			got := cr.Metrics.Top5[i]
			if got.Index != want.Index || got.Label != want.Label {
				t.Errorf("%s: top-%d is %d %q, reference %d %q", img.ID, i+1, got.Index, got.Label, want.Index, want.Label)
			}
			if math.Abs(got.P-want.P) > 1e-3 {
				t.Errorf("%s: p(%s) = %.5f, reference %.5f", img.ID, want.Label, got.P, want.P)
			}
		}
	}
	t.Logf("reference check: 8 photos match; %.1f ms CPU per photo (embeddings route)", cpu/8)
}

func errorBody(t *testing.T, body []byte) (msg, typ string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an OpenAI-shaped error (%v): %s", err, body)
	}
	return e.Error.Message, e.Error.Type
}

// TestEffnetRefusals: an image-only encoder refuses text; bad images and unknown models are
// client errors, not crashes.
func TestEffnetRefusals(t *testing.T) {
	base := EffnetURL(t)
	photo := dataURI(t, repoFile(t, "../shared/data/fashion/images/29167.jpg"))
	cases := []struct {
		name, path string
		body       any
		status     int
		want       string
	}{
		{"text input", "/v1/embeddings", map[string]any{"input": "red dress"}, 400, "images only"},
		{"text list", "/v1/embeddings", map[string]any{"input": []string{photo, "red dress"}}, 400, "images only"},
		{"token ids", "/v1/embeddings", map[string]any{"input": []int{1, 2, 3}}, 400, "images only"},
		{"text messages", "/v1/embeddings", map[string]any{"messages": []any{map[string]any{"role": "user", "content": "red dress"}}}, 400, "no image"},
		{"two images", "/v1/embeddings", map[string]any{"messages": append(imageMessages(photo, ""), imageMessages(photo, "")...)}, 400, "At most 1"},
		{"matryoshka", "/v1/embeddings", map[string]any{"input": photo, "dimensions": 256}, 400, "matryoshka"},
		{"remote url", "/v1/embeddings", map[string]any{"input": "https://example.com/a.jpg"}, 400, "images only"},
		{"not base64", "/v1/chat/completions", map[string]any{"messages": imageMessages("data:image/jpeg;base64,%%%", "")}, 400, "base64"},
		{"not an image", "/v1/chat/completions", map[string]any{"messages": imageMessages("data:image/jpeg;base64,"+base64.StdEncoding.EncodeToString([]byte("hello")), "")}, 400, "cannot decode image"},
		{"url part", "/v1/chat/completions", map[string]any{"messages": imageMessages("http://127.0.0.1:1/x.jpg", "")}, 400, "data URIs"},
		{"text chat", "/v1/chat/completions", map[string]any{"messages": []any{map[string]any{"role": "user", "content": "red dress"}}}, 400, "images only"},
		{"unknown model", "/v1/chat/completions", map[string]any{"model": "gpt-x", "messages": imageMessages(photo, "")}, 404, "does not exist"},
		{"stream", "/v1/chat/completions", map[string]any{"stream": true, "messages": imageMessages(photo, "")}, 400, "streaming"},
	}
	for _, c := range cases {
		st, body := postJSON(t, base+c.path, c.body)
		if st != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, st, c.status, body)
			continue
		}
		if msg, _ := errorBody(t, body); !strings.Contains(msg, c.want) {
			t.Errorf("%s: message %q does not contain %q", c.name, msg, c.want)
		}
	}

	// a body over the limit is refused from its Content-Length, unread
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /v1/embeddings HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4000000000\r\n\r\n{", u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("oversized body: %v", err)
	}
	if resp.StatusCode != 413 {
		t.Errorf("oversized body: status %d, want 413", resp.StatusCode)
	}
	resp.Body.Close()

	// the server is still healthy
	resp, err = effnetClient.Get(base + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health after refusals: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestEffnetKeywords: the chat route answers the rewriter's schema with parseable keywords,
// attributes when asked for, and keeps to max_tokens like a real server (finish_reason length).
func TestEffnetKeywords(t *testing.T) {
	base := EffnetURL(t)
	// 29167 is a red girls' dress, 16512 blue jeans (../shared/data/fashion/styles.csv)
	for _, c := range []struct{ id, word, colour string }{{"29167", "dress", "red"}, {"16512", "jeans", "blue"}} {
		uri := dataURI(t, repoFile(t, "../shared/data/fashion/images/"+c.id+".jpg"))
		st, body := postJSON(t, base+"/v1/chat/completions", map[string]any{
			"model": "efficientnet-lite0", "messages": imageMessages(uri, "The shopper sent this photo."),
			"max_tokens": 128, "temperature": 0.2, "response_format": keywordFormat(5)})
		if st != 200 {
			t.Fatalf("%s: status %d: %s", c.id, st, body)
		}
		var cr chatResponse
		if err := json.Unmarshal(body, &cr); err != nil || len(cr.Choices) != 1 {
			t.Fatalf("%s: bad response (%v): %s", c.id, err, body)
		}
		var kw struct {
			Keywords   []string          `json:"keywords"`
			Category   string            `json:"category"`
			Attributes map[string]string `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(cr.Choices[0].Message.Content), &kw); err != nil {
			t.Fatalf("%s: content is not the schema's JSON (%v): %s", c.id, err, cr.Choices[0].Message.Content)
		}
		if len(kw.Keywords) == 0 || len(kw.Keywords) > 5 {
			t.Fatalf("%s: %d keywords, want 1..5: %v", c.id, len(kw.Keywords), kw.Keywords)
		}
		joined := strings.Join(kw.Keywords, " | ")
		if !strings.Contains(joined, c.word) || !strings.Contains(joined, c.colour) {
			t.Errorf("%s: keywords %q lack %q or %q", c.id, joined, c.word, c.colour)
		}
		if kw.Category != c.word || kw.Attributes["colour"] == "" {
			t.Errorf("%s: category %q attributes %v, want category %q and a colour", c.id, kw.Category, kw.Attributes, c.word)
		}
		t.Logf("%s: %s (category %s, attributes %v; %.1f ms CPU)", c.id, joined, kw.Category, kw.Attributes, cr.Metrics.CPUMs)

		// without attributes in the schema, none are given; a tiny max_tokens truncates
		st, body = postJSON(t, base+"/v1/chat/completions", map[string]any{
			"messages": imageMessages(uri, ""), "max_tokens": 3, "response_format": map[string]any{"type": "json_schema",
				"json_schema": map[string]any{"name": "search_keywords", "schema": map[string]any{"properties": map[string]any{"keywords": map[string]any{"maxItems": 3}}}}}})
		if st != 200 {
			t.Fatalf("%s: status %d: %s", c.id, st, body)
		}
		cr = chatResponse{}
		if err := json.Unmarshal(body, &cr); err != nil || len(cr.Choices) != 1 {
			t.Fatalf("%s: bad response (%v): %s", c.id, err, body)
		}
		if cr.Choices[0].FinishReason != "length" || len(cr.Choices[0].Message.Content) > 12 {
			t.Errorf("%s: max_tokens 3 gave finish_reason %q and %q", c.id, cr.Choices[0].FinishReason, cr.Choices[0].Message.Content)
		}
	}
}

type tableRow struct {
	Item       string            `json:"item"`
	Attributes map[string]string `json:"attributes"`
	Quantity   *float64          `json:"quantity"`
	Price      *float64          `json:"price"`
}

// renderTable draws a ruled price table with the Go fonts, slightly rotated like a scan.
func renderTable(t *testing.T, rows [][]string, angleDeg float64) []byte {
	t.Helper()
	ttf, err := opentype.Parse(goregular.TTF)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(ttf, &opentype.FaceOptions{Size: 26, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		t.Fatal(err)
	}
	defer face.Close()
	xs := []int{40, 340, 520, 640, 860, 1000, 1200}
	const rowH = 70
	w, h := 1240, 80+rowH*len(rows)
	flat := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(flat, flat.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.Gray{}
	for r := 0; r <= len(rows); r++ {
		y := 40 + r*rowH
		for x := xs[0]; x <= xs[len(xs)-1]; x++ {
			flat.SetGray(x, y, black)
			flat.SetGray(x, y+1, black)
		}
	}
	for _, x := range xs {
		for y := 40; y <= 40+rowH*len(rows); y++ {
			flat.SetGray(x, y, black)
			flat.SetGray(x+1, y, black)
		}
	}
	d := &font.Drawer{Dst: flat, Src: image.Black, Face: face}
	for r, row := range rows {
		for c, s := range row {
			d.Dot = fixed.P(xs[c]+14, 40+r*rowH+46)
			d.DrawString(s)
		}
	}
	// rotate about the centre (bilinear, like a scan), white outside
	out := image.NewGray(flat.Bounds())
	a := angleDeg * math.Pi / 180
	sin, cos := math.Sin(a), math.Cos(a)
	cx, cy := float64(w)/2, float64(h)/2
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= w || y >= h {
			return 255
		}
		return float64(flat.GrayAt(x, y).Y)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-cx, float64(y)-cy
			sx, sy := cx+dx*cos+dy*sin, cy-dx*sin+dy*cos
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			v := (at(x0, y0)*(1-fx)+at(x0+1, y0)*fx)*(1-fy) + (at(x0, y0+1)*(1-fx)+at(x0+1, y0+1)*fx)*fy
			out.SetGray(x, y, color.Gray{Y: uint8(math.Round(v))})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEffnetTableRows: RapidOCR reads a generated price table into the documents contract.
func TestEffnetTableRows(t *testing.T) {
	base := EffnetURL(t)
	cells := [][]string{
		{"Item", "Colour", "Size", "Brand", "Qty", "Price"},
		{"Cotton T-shirt", "Red", "M", "Puma", "2", "499.00"},
		{"Denim Jeans", "Blue", "32", "Levis", "1", "1,299.00"},
		{"Leather Belt", "Brown", "L", "Woodland", "3", "349.50"},
		{"Running Shoes", "Black", "9", "Nike", "1", "2999"},
		{"Silk Scarf", "Green", "Free", "Biba", "4", "650"},
	}
	png := renderTable(t, cells, 1.2)
	uri := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	st, body := postJSON(t, base+"/v1/chat/completions", map[string]any{
		"messages": imageMessages(uri, "Extract the table rows as JSON."), "max_tokens": 2048, "temperature": 0,
		"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{
			"name": "vlproxy_table_rows", "schema": map[string]any{"type": "object"}}}})
	if st != 200 {
		t.Fatalf("status %d: %s", st, body)
	}
	var cr chatResponse
	if err := json.Unmarshal(body, &cr); err != nil || len(cr.Choices) != 1 {
		t.Fatalf("bad response (%v): %s", err, body)
	}
	var got struct {
		Rows []tableRow `json:"rows"`
	}
	if err := json.Unmarshal([]byte(cr.Choices[0].Message.Content), &got); err != nil {
		t.Fatalf("content is not the rows JSON (%v): %s", err, cr.Choices[0].Message.Content)
	}
	f := func(v float64) *float64 { return &v }
	want := []tableRow{
		{"Cotton T-shirt", map[string]string{"colour": "Red", "size": "M", "brand": "Puma"}, f(2), f(499)},
		{"Denim Jeans", map[string]string{"colour": "Blue", "size": "32", "brand": "Levis"}, f(1), f(1299)},
		{"Leather Belt", map[string]string{"colour": "Brown", "size": "L", "brand": "Woodland"}, f(3), f(349.5)},
		{"Running Shoes", map[string]string{"colour": "Black", "size": "9", "brand": "Nike"}, f(1), f(2999)},
		{"Silk Scarf", map[string]string{"colour": "Green", "size": "Free", "brand": "Biba"}, f(4), f(650)},
	}
	exact := 0
	for i := range want {
		if i < len(got.Rows) && reflect.DeepEqual(got.Rows[i], want[i]) {
			exact++
		} else if i < len(got.Rows) {
			t.Errorf("row %d: got %+v, want %+v", i, got.Rows[i], want[i])
		}
	}
	if len(got.Rows) != len(want) {
		t.Errorf("%d rows, want %d: %s", len(got.Rows), len(want), cr.Choices[0].Message.Content)
	}
	t.Logf("table: %d of %d rows exact, %.0f ms CPU for the page", exact, len(want), cr.Metrics.CPUMs)
}

// TestEffnetSelftest runs testenv/effnet/selftest.py in the server's venv: the reference check
// in-process, a bounded fuzz of the request handlers (mutated embeddings and chat bodies must
// give a result or a client error, nothing else) and OCR of a table Pillow renders.
func TestEffnetSelftest(t *testing.T) {
	EffnetURL(t) // the same skip rule as the other effnet tests; the venv exists once a server ran
	dir := repoFile(t, "testenv/effnet")
	py, err := InstallEffnet(t.Context(), dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), py, filepath.Join(dir, "selftest.py"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("selftest.py: %v\n%s", err, out)
	}
	t.Logf("selftest.py:\n%s", out)
}
