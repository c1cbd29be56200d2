package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
)

// runGenImage writes a photo-like JPEG (smooth shapes plus sensor-like noise) of about -bytes
// bytes, for benchmarks that need realistic image queries without shipping photos.
func runGenImage(args []string) error {
	fs := flag.NewFlagSet("gen-image", flag.ContinueOnError)
	out := fs.String("out", "", "file to write (required)")
	size := fs.Int("bytes", 200<<10, "target size of the JPEG in bytes (within 10%)")
	w := fs.Int("width", 864, "width in pixels")
	h := fs.Int("height", 1152, "height in pixels")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	img := image.NewYCbCr(image.Rect(0, 0, *w, *h), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewPCG(7, 11))
	for y := range *h {
		for x := range *w {
			// A dress-like shape on a light background, shaded, with ±6 levels of noise.
			half := *w/8 + y*(*w)/(3*(*h))
			c := color.RGBA{235, 232, 228, 255}
			if y > *h/8 && x > *w/2-half && x < *w/2+half {
				shade := uint8(40 * x / *w)
				c = color.RGBA{180 + shade/2, 20 + shade, 40, 255}
			}
			n := int(r.IntN(13)) - 6
			yy, cb, cr := color.RGBToYCbCr(clamp(int(c.R)+n), clamp(int(c.G)+n), clamp(int(c.B)+n))
			img.Y[img.YOffset(x, y)] = yy
			img.Cb[img.COffset(x, y)], img.Cr[img.COffset(x, y)] = cb, cr
		}
	}
	var best []byte
	for q := 100; q >= 10; q -= 3 {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
			return err
		}
		best = buf.Bytes()
		if len(best) <= *size*11/10 {
			break
		}
	}
	if len(best) < *size*9/10 || len(best) > *size*11/10 {
		return fmt.Errorf("cannot reach %d bytes at %dx%d (got %d); change -width/-height", *size, *w, *h, len(best))
	}
	return os.WriteFile(*out, best, 0o644)
}

func clamp(v int) uint8 { return uint8(max(0, min(255, v))) }
