package ui

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig reads the formats the rewrite accepts
	_ "image/jpeg"
	_ "image/png"
	"io"

	"github.com/valyala/fasthttp"
	_ "golang.org/x/image/webp"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// serveAPI answers the page's server-side helpers:
//
//	GET  api/config       what the page needs to render cards and experiments
//	POST api/downscale    raw image bytes in; the image as the model gets it out (JSON)
//	GET  api/experiments  the configured experiments and their metrics
func (h *Handler) serveAPI(ctx *fasthttp.RequestCtx, name string) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	switch {
	case name == "config" && ctx.IsGet():
		ctx.SetContentType("application/json; charset=UTF-8")
		ctx.SetBody(h.cfgJSON)
	case name == "downscale" && ctx.IsPost():
		h.serveDownscale(ctx)
	case name == "experiments" && ctx.IsGet():
		h.serveExperiments(ctx)
	default:
		writeError(ctx, fasthttp.StatusNotFound, "resource_not_found_exception",
			"no playground endpoint "+string(ctx.Method())+" "+Prefix+"/api/"+name+
				"; try GET api/config, POST api/downscale or GET api/experiments")
	}
}

// imageInfo describes one image.
type imageInfo struct {
	Format  string `json:"format"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Bytes   int    `json:"bytes"`
	DataURI string `json:"data_uri,omitempty"`
}

func (h *Handler) serveDownscale(ctx *fasthttp.RequestCtx) {
	if h.deps.Downscale == nil {
		writeError(ctx, fasthttp.StatusNotImplemented, "illegal_argument_exception", "this vlproxy has no image pipeline wired to the playground")
		return
	}
	raw, err := readLimited(ctx, h.deps.MaxImageBytes)
	if err != nil {
		status := fasthttp.StatusBadRequest
		if errors.Is(err, errTooBig) {
			status = fasthttp.StatusRequestEntityTooLarge
		}
		writeError(ctx, status, "illegal_argument_exception", err.Error())
		ctx.SetConnectionClose() // the rest of the body may be unread
		return
	}
	if len(raw) == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "illegal_argument_exception", "cannot downscale an empty body: POST the image bytes")
		return
	}
	sent := describe(raw)
	out, err := h.deps.Downscale(raw)
	if err != nil {
		status, typ, reason := fasthttp.StatusBadRequest, "illegal_argument_exception", err.Error()
		var es *eserr.Error
		if errors.As(err, &es) {
			status, typ, reason = es.ESError()
		}
		writeError(ctx, status, typ, reason)
		return
	}
	m := describe(out)
	m.DataURI = "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(out)
	b, _ := json.Marshal(map[string]any{"sent": sent, "model": m, "resized": !bytes.Equal(raw, out)})
	ctx.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(b)
}

// describe reads an image's format and size from its header.
func describe(b []byte) imageInfo {
	info := imageInfo{Bytes: len(b), Format: "unknown"}
	if c, format, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
		info.Format, info.Width, info.Height = format, c.Width, c.Height
	}
	return info
}

// readLimited reads the request body, at most limit bytes (the proxy streams request bodies).
var errTooBig = errors.New("cannot downscale the image: it is larger than rewrite.image.max_bytes")

func readLimited(ctx *fasthttp.RequestCtx, limit int) ([]byte, error) {
	tooBig := fmt.Errorf("%w (%d bytes)", errTooBig, limit)
	if cl := ctx.Request.Header.ContentLength(); cl > limit {
		return nil, tooBig
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		b := ctx.Request.Body()
		if len(b) > limit {
			return nil, tooBig
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the image: %w", err)
	}
	if len(b) > limit {
		return nil, tooBig
	}
	return b, nil
}

func (h *Handler) serveExperiments(ctx *fasthttp.RequestCtx) {
	out := map[string]any{"experiments": h.deps.Experiments}
	if h.deps.Metrics != nil {
		var buf bytes.Buffer
		h.deps.Metrics(&buf)
		out["metrics"] = experimentMetrics(buf.Bytes())
	}
	b, _ := json.Marshal(out)
	ctx.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(b)
}
