// Package mediatest makes test images: a gradient with a block of colour (so downscaling and
// re-encoding have real content), encoded as PNG or JPEG, and a decompression-bomb PNG header.
package mediatest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// Image draws a w x h picture with a gradient and a red block in the middle third.
func Image(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(x * 255 / max(1, w)), uint8(y * 255 / max(1, h)), 90, 255}
			if x > w/3 && x < 2*w/3 && y > h/3 && y < 2*h/3 {
				c = color.RGBA{200, 20, 30, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// PNG returns Image(w, h) as a PNG.
func PNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, Image(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// JPEG returns Image(w, h) as a JPEG of quality q.
func JPEG(t testing.TB, w, h, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, Image(w, h), &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// HugePNG returns a valid 1x1 PNG whose IHDR claims w x h pixels (with a correct CRC), the
// classic decompression bomb header.
func HugePNG(t testing.TB, w, h uint32) []byte {
	b := PNG(t, 1, 1)
	// signature(8) length(4) "IHDR"(4) width(4) height(4) ... crc after 13 data bytes
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}
