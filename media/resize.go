package media

import "image"

// Area averaging ("box" resampling): each output sample is the mean of the
// source samples its area covers, weighted by how much of each it covers. It
// is what a downscale by 2-10x needs (every source pixel counts, so there is no
// aliasing) and it runs on the decoded YCbCr planes directly, with integer
// arithmetic: about 20x less work than x/image/draw's BiLinear kernel, which
// took a second for a 12 MP photo.

// weightOne is 1.0 in the fixed point of the weights.
const weightOne = 1 << 14

// areaWeights returns, for each of dn outputs over sn inputs, the first input
// it covers and its weights (offsets into w: output i uses w[off[i]:off[i+1]]),
// which sum to weightOne.
func areaWeights(sn, dn int) (first, off, w []int32) {
	first = make([]int32, dn)
	off = make([]int32, dn+1)
	w = make([]int32, 0, sn+dn)
	for i := range dn {
		a, b := i*sn, (i+1)*sn // the output's span, in units of 1/dn input
		j0, j1 := a/dn, (b-1)/dn
		first[i] = int32(j0)
		sum, big, bigW := 0, len(w), -1
		for j := j0; j <= j1; j++ {
			ov := min(b, (j+1)*dn) - max(a, j*dn)
			wt := ov * weightOne / sn
			if wt > bigW {
				big, bigW = len(w), wt
			}
			w = append(w, int32(wt))
			sum += wt
		}
		w[big] += int32(weightOne - sum) // rounding: the largest share takes it
		off[i+1] = int32(len(w))
	}
	return first, off, w
}

// resizePlane area-averages an sw x sh plane of 8-bit samples into dw x dh.
func resizePlane(dst []byte, dw, dh, dstride int, src []byte, sw, sh, sstride int) {
	xf, xo, xw := areaWeights(sw, dw)
	yf, yo, yw := areaWeights(sh, dh)
	// Rows first: tmp keeps 8 fractional bits (255<<8 at most).
	tmp := make([]uint16, dw*sh)
	for y := range sh {
		row := src[y*sstride : y*sstride+sw]
		t := tmp[y*dw : (y+1)*dw]
		for x := range t {
			ws := xw[xo[x]:xo[x+1]]
			s := row[xf[x]:]
			s = s[:len(ws)]
			var acc uint32
			for k, wt := range ws {
				acc += uint32(s[k]) * uint32(wt)
			}
			t[x] = uint16((acc + 1<<5) >> 6)
		}
	}
	acc := make([]uint32, dw) // at most 255<<8 * weightOne: fits
	for y := range dh {
		clear(acc)
		ws := yw[yo[y]:yo[y+1]]
		for k, wt := range ws {
			t := tmp[(int(yf[y])+k)*dw:][:dw]
			for x, v := range t {
				acc[x] += uint32(v) * uint32(wt)
			}
		}
		d := dst[y*dstride:][:dw]
		for x, v := range acc {
			d[x] = uint8((v + 1<<21) >> 22)
		}
	}
}

// shrinkYCbCr area-averages a YCbCr image to nw x nh, chroma at 4:2:0 (what
// the JPEG encoder writes anyway).
func shrinkYCbCr(src *image.YCbCr, nw, nh int) *image.YCbCr {
	r := src.Rect
	w, h := r.Dx(), r.Dy()
	dst := image.NewYCbCr(image.Rect(0, 0, nw, nh), image.YCbCrSubsampleRatio420)
	resizePlane(dst.Y, nw, nh, dst.YStride, src.Y[src.YOffset(r.Min.X, r.Min.Y):], w, h, src.YStride)
	cw, ch := chromaSize(src.SubsampleRatio, w, h)
	co := src.COffset(r.Min.X, r.Min.Y)
	ncw, nch := (nw+1)/2, (nh+1)/2
	resizePlane(dst.Cb, ncw, nch, dst.CStride, src.Cb[co:], cw, ch, src.CStride)
	resizePlane(dst.Cr, ncw, nch, dst.CStride, src.Cr[co:], cw, ch, src.CStride)
	return dst
}

// chromaSize is the size of the chroma planes of a w x h image (as image.NewYCbCr lays them out).
func chromaSize(ratio image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch ratio {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// shrinkGray area-averages a grey image to nw x nh.
func shrinkGray(src *image.Gray, nw, nh int) *image.Gray {
	r := src.Rect
	dst := image.NewGray(image.Rect(0, 0, nw, nh))
	resizePlane(dst.Pix, nw, nh, dst.Stride, src.Pix[src.PixOffset(r.Min.X, r.Min.Y):], r.Dx(), r.Dy(), src.Stride)
	return dst
}
