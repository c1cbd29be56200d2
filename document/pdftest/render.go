package pdftest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// RenderTable draws a price list as a scanner would see it: black text on
// white, a title, a header and one line per row, columns at fixed offsets.
// It returns the JPEG and its size.
func RenderTable(title string, rows [][]string) ([]byte, int, int, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("cannot parse the Go font: %w", err)
	}
	const size, line = 30, 52
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("cannot make a font face: %w", err)
	}
	defer face.Close()
	cols := []int{60, 560, 780, 960, 1160, 1300}
	w, h := 1500, 140+line*(len(rows)+1)
	img := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face}
	put := func(x, y int, s string) {
		d.Dot = fixed.P(x, y)
		d.DrawString(s)
	}
	put(cols[0], 70, title)
	for i, row := range rows {
		y := 140 + i*line
		for j, cell := range row {
			if j < len(cols) {
				put(cols[j], y, cell)
			}
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, 0, 0, fmt.Errorf("cannot encode the table image: %w", err)
	}
	return buf.Bytes(), w, h, nil
}
