package rewrite

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"image/jpeg"
	"testing"

	"github.com/vlproxy/vlproxy/cache"
)

func TestParseOutput(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		kw, err := parseOutput(content, 5)
		got := ""
		if err != nil {
			got = "ERR"
		} else {
			for i, k := range kw.Keywords {
				if i > 0 {
					got += "|"
				}
				got += k
			}
			if kw.Category != "" {
				got += " cat=" + kw.Category
			}
			for _, a := range attributeNames {
				if v, ok := kw.Attributes[a]; ok {
					got += " " + a + "=" + v
				}
			}
		}
		if got != want {
			t.Fatalf("%q\ngot  %q\nwant %q", content, got, want)
		}
	}
	f(`{"keywords":["red dress","Summer"]}`, "red dress|Summer")
	f(`{"keywords":["a","A","b"],"category":"Tops","attributes":{"Colour":"blue","gender":"unknown","style":3}}`, "a|b cat=Tops colour=blue")
	f("```json\n{\"keywords\":[\"linen shirt\"]}\n```", "linen shirt")
	f("Here you go:\n```\n[\"boots\", \"leather\"]\n```", "boots|leather")
	f(`["x","y","z","w","v","u"]`, "x|y|z|w|v")
	f(`{"keywords":"red dress, blue jeans"}`, "red dress|blue jeans")
	f("1. red dress\n2) floral print\n- beach", "red dress|floral print|beach")
	f("连衣裙，红色、夏季", "连衣裙|红色|夏季")
	f(`"sneakers"`, "sneakers")
	f(`{"keywords":[]}`, "ERR")
	f(`{"keywords": [`, "ERR")
	f(`{"kw":["a"]}`, "ERR")
	f(``, "ERR")
	f("\x00\x01\x02", "ERR")
	f(`[1,2]`, "ERR")
	f("this is a very long sentence that no shopper would ever type as a keyword phrase", "ERR")
}

func TestPrompt(t *testing.T) {
	r := newTestRewriter(t, testConfig(), newFake(), nil)
	f := func(c clause, img string, wantLang string, wantParts int) {
		t.Helper()
		lang := r.language(&c)
		if lang != wantLang {
			t.Fatalf("%+v: language %s, want %s", c, lang, wantLang)
		}
		req := r.chatRequest(&c, lang, img)
		if len(req.Messages) != 2 || req.Messages[0].Text != promptsByLanguage[lang].system {
			t.Fatalf("messages %+v", req.Messages)
		}
		if n := len(req.Messages[1].Parts); n != wantParts {
			t.Fatalf("%d parts, want %d", n, wantParts)
		}
		if req.MaxTokens == 0 || req.TopP == 0 || req.Temperature == 0 || len(req.ResponseFormat) == 0 {
			t.Fatalf("sampling not explicit: %+v", req)
		}
	}
	f(clause{Text: "red dress"}, "", "en", 1)
	f(clause{Text: "适合夏季海边度假穿"}, "", "zh", 1)
	f(clause{Text: "red dress", Language: "zh"}, "data:image/jpeg;base64,AA==", "zh", 2)
	f(clause{Image: "x"}, "data:image/jpeg;base64,AA==", "en", 2)
	if got := string(responseFormat(8, true)); !bytes.Contains([]byte(got), []byte(`"maxItems":8`)) || !bytes.Contains([]byte(got), []byte(`"attributes"`)) {
		t.Fatalf("response format %s", got)
	}
}

// TestImageSent: what the model and Query.Image get for each kind of image.
func TestImageSent(t *testing.T) {
	small := mediatest.JPEG(t, 640, 480, 90)
	big := mediatest.JPEG(t, 1600, 1200, 90)
	std := base64.StdEncoding.EncodeToString(small)
	f := func(name, image string, c Cache, want func(uri string) error) {
		t.Helper()
		fake := newFake()
		r := newTestRewriter(t, testConfig(), fake, c)
		for round := range 2 {
			res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: bodyWith(image)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			sent := ""
			for _, p := range fake.lastRequest().Messages[1].Parts {
				if p.Type == "image_url" {
					sent = p.URL
				}
			}
			if round == 0 && sent != res.Query.Image {
				t.Fatalf("%s: the model got another image than Query.Image", name)
			}
			if err := want(res.Query.Image); err != nil {
				t.Fatalf("%s (round %d): %v", name, round, err)
			}
		}
	}
	same := func(uri string) error {
		if uri != "data:image/jpeg;base64,"+std {
			return fmt.Errorf("not the original bytes: %.60s", uri)
		}
		return nil
	}
	size := func(w, h int) func(string) error {
		return func(uri string) error {
			b, err := media.DecodeString(uri, 8<<20)
			if err != nil {
				return err
			}
			c, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if err != nil || c.Width != w || c.Height != h {
				return fmt.Errorf("%dx%d %v, want %dx%d", c.Width, c.Height, err, w, h)
			}
			return nil
		}
	}
	f("within budget, data URI", dataURI("image/jpeg", small), nil, same)
	f("within budget, raw base64", std, nil, same)
	f("within budget, URL-safe base64", base64.RawURLEncoding.EncodeToString(small), nil, same)
	f("within budget, line breaks", std[:76]+"\n"+std[76:], nil, same)
	f("within budget, cached", std, cache.New(cache.Config{Name: "rewrite-test-img-small"}), same)
	f("over budget", dataURI("image/jpeg", big), nil, size(1182, 886))
	f("over budget, cached", dataURI("image/jpeg", big), cache.New(cache.Config{Name: "rewrite-test-img-big"}), size(1182, 886))
	f("png within budget", dataURI("image/png", mediatest.PNG(t, 300, 200)), nil, size(300, 200))
}
