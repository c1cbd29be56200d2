package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
)

// AddDemoPhotos gives each product of an NDJSON catalogue a photo: field becomes a JPEG data
// URI drawn by DemoPhoto from the product's category, colour, title and description. The demo
// (testenv/cmd/democatalogue) and the playground's browser test use it, so the demo ships no
// image files and nothing is fetched.
func AddDemoPhotos(ndjson []byte, field string) ([]byte, error) {
	var out bytes.Buffer
	for n, line := range bytes.Split(ndjson, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(line, &doc); err != nil {
			return nil, fmt.Errorf("cannot parse catalogue line %d: %w", n+1, err)
		}
		str := func(k string) string { s, _ := doc[k].(string); return s }
		jpg, err := DemoPhoto(str("category"), str("colour"), str("title")+" "+str("description"))
		if err != nil {
			return nil, err
		}
		doc[field] = "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpg)
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("cannot encode catalogue line %d: %w", n+1, err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// photoW and photoH are the size of a generated photo: a 3:4 catalogue shot.
const (
	photoW = 120
	photoH = 160
)

var colours = map[string]color.RGBA{
	"red": {196, 38, 52, 255}, "blue": {38, 66, 150, 255}, "white": {238, 236, 228, 255},
	"beige": {214, 190, 148, 255}, "brown": {118, 74, 42, 255}, "grey": {128, 130, 136, 255},
	"black": {38, 38, 44, 255}, "camel": {193, 150, 100, 255}, "green": {46, 120, 70, 255},
}

type pt struct{ x, y float64 }

// shape is a set of polygons in unit coordinates plus ellipses {cx, cy, rx, ry}.
type shape struct {
	polys    [][]pt
	ellipses [][4]float64
}

func mirror(p []pt) []pt {
	out := make([]pt, len(p))
	for i, q := range p {
		out[len(p)-1-i] = pt{1 - q.x, q.y}
	}
	return out
}

func shapeFor(category, text string) shape {
	t := strings.ToLower(text)
	switch category {
	case "dresses":
		return shape{polys: [][]pt{{{.40, .14}, {.60, .14}, {.66, .30}, {.60, .42}, {.82, .90}, {.18, .90}, {.40, .42}, {.34, .30}}}}
	case "shirts", "sweaters", "jackets":
		body := []pt{{.32, .22}, {.68, .22}, {.70, .88}, {.30, .88}}
		sleeve := []pt{{.32, .22}, {.12, .50}, {.20, .55}, {.32, .38}}
		if category != "shirts" {
			sleeve = []pt{{.32, .22}, {.10, .78}, {.20, .80}, {.33, .40}}
		}
		return shape{polys: [][]pt{body, sleeve, mirror(sleeve)}}
	case "shorts":
		return shape{polys: [][]pt{{{.24, .34}, {.76, .34}, {.80, .70}, {.55, .72}, {.50, .50}, {.45, .72}, {.20, .70}}}}
	case "trousers":
		return shape{polys: [][]pt{{{.30, .14}, {.70, .14}, {.74, .90}, {.56, .90}, {.50, .36}, {.44, .90}, {.26, .90}}}}
	case "shoes":
		if strings.Contains(t, "boot") {
			return shape{polys: [][]pt{{{.30, .30}, {.52, .30}, {.54, .56}, {.80, .64}, {.84, .78}, {.26, .78}}}}
		}
		return shape{polys: [][]pt{{{.14, .58}, {.42, .58}, {.52, .48}, {.68, .48}, {.86, .68}, {.86, .76}, {.14, .76}}}}
	case "hats":
		return shape{ellipses: [][4]float64{{.5, .62, .38, .09}, {.5, .52, .20, .16}}}
	}
	switch {
	case strings.Contains(t, "sunglass"):
		return shape{ellipses: [][4]float64{{.32, .5, .15, .1}, {.68, .5, .15, .1}}, polys: [][]pt{{{.45, .47}, {.55, .47}, {.55, .5}, {.45, .5}}}}
	case strings.Contains(t, "scarf"):
		return shape{polys: [][]pt{{{.36, .10}, {.56, .10}, {.62, .90}, {.44, .90}}, {{.30, .20}, {.70, .20}, {.70, .30}, {.30, .30}}}}
	case strings.Contains(t, "glove"):
		return shape{polys: [][]pt{{{.32, .26}, {.64, .26}, {.66, .80}, {.34, .80}}, {{.64, .46}, {.80, .38}, {.84, .46}, {.66, .60}}}}
	}
	return shape{polys: [][]pt{{{.25, .25}, {.75, .25}, {.75, .75}, {.25, .75}}}}
}

func inPoly(p []pt, x, y float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		if (p[i].y > y) != (p[j].y > y) && x < (p[j].x-p[i].x)*(y-p[i].y)/(p[j].y-p[i].y)+p[i].x {
			in = !in
		}
	}
	return in
}

func (s shape) contains(x, y float64) bool {
	for _, p := range s.polys {
		if inPoly(p, x, y) {
			return true
		}
	}
	for _, e := range s.ellipses {
		dx, dy := (x-e[0])/e[2], (y-e[1])/e[3]
		if dx*dx+dy*dy <= 1 {
			return true
		}
	}
	return false
}

func scale(c color.RGBA, f float64) color.RGBA {
	m := func(v uint8) uint8 { return uint8(math.Max(0, math.Min(255, float64(v)*f))) }
	return color.RGBA{m(c.R), m(c.G), m(c.B), 255}
}

// DemoPhoto draws a product: its silhouette in its colour on a light studio background, with
// stripes or flowers when the text says so. The same input always gives the same JPEG.
func DemoPhoto(category, colour, text string) ([]byte, error) {
	base, ok := colours[colour]
	if !ok {
		base = color.RGBA{120, 120, 160, 255}
	}
	t := strings.ToLower(text)
	striped := strings.Contains(t, "strip")
	floral := strings.Contains(t, "flower") || strings.Contains(t, "floral") || strings.Contains(t, "碎花")
	sh := shapeFor(category, text)
	img := image.NewRGBA(image.Rect(0, 0, photoW, photoH))
	for py := 0; py < photoH; py++ {
		for px := 0; px < photoW; px++ {
			x, y := (float64(px)+.5)/photoW, (float64(py)+.5)/photoH
			bg := uint8(246 - 18*y) // studio backdrop, darker towards the floor
			c := color.RGBA{bg, bg, uint8(int(bg) - 4), 255}
			if y > .86 && y < .9 && x > .2 && x < .8 { // a soft shadow
				c = scale(c, .9)
			}
			if sh.contains(x, y) {
				c = scale(base, 1.12-.25*y) // light from above
				if !sh.contains(x-.03, y) || !sh.contains(x+.03, y) {
					c = scale(base, .78) // edge
				}
				if striped && int(y*40)%2 == 0 {
					c = color.RGBA{240, 240, 240, 255}
				}
				if floral {
					fx, fy := math.Mod(x*9, 1)-.5, math.Mod(y*11, 1)-.5
					if fx*fx+fy*fy < .05 {
						c = color.RGBA{250, 214, 64, 255}
					}
				}
			}
			img.SetRGBA(px, py, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 82}); err != nil {
		return nil, fmt.Errorf("cannot encode the photo: %w", err)
	}
	return buf.Bytes(), nil
}
