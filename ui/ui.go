// Package ui is the playground: a page served by vlproxy at /_vlproxy/ui for the people who tune
// search. They drop in a photo or type a query, and see what the model made of it, the rewritten
// query, the statuses and timings, and the results as product cards side by side per variant.
//
// The page is plain ES modules and CSS embedded in the binary (no CDN, no external font) and is
// served under a strict Content-Security-Policy. It talks to the proxy it is served by: searches
// go to the ES API like any client's, and the few things only the server knows (its config, the
// image as the model gets it, the experiment metrics) come from /_vlproxy/ui/api/*. The package
// imports nothing of the project but internal/eserr: cmd/vlproxy hands it the downscaler
// (media.Prepare) and the experiments, and mounts Handler.Serve with proxy.WithUI.
package ui

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"mime"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// Prefix is where the playground lives; everything below it belongs to this package.
const Prefix = "/_vlproxy/ui"

//go:embed static
var static embed.FS

// Config is the `ui:` section of the vlproxy YAML file. Zero fields take the defaults below.
type Config struct {
	// Enabled serves the playground (flag -ui). Default false: /_vlproxy/ui is a 404.
	Enabled bool `yaml:"enabled"`
	// DefaultIndex is preselected in the index picker. Default "": the first index listed.
	DefaultIndex string `yaml:"default_index"`
	// ImageField is the _source field holding a product's photo: a data: URI, raw base64 or an
	// http(s) URL. Default "image".
	ImageField string `yaml:"image_field"`
	// ImageURLTemplate builds a photo URL from the hit instead: "{_id}", "{_index}" and
	// "{field}" (a _source field) are replaced, URL-escaped, e.g.
	// "https://img.example.com/{sku}.jpg". Default "": use ImageField.
	ImageURLTemplate string `yaml:"image_url_template"`
	// ImageOrigins are the origins product photos may load from (added to the page's CSP
	// img-src), e.g. "https://img.example.com". Default none: only data: URIs and this server.
	ImageOrigins []string `yaml:"image_origins"`
	// TitleField is shown as the card's title. Default "title".
	TitleField string `yaml:"title_field"`
	// Fields are shown on each card under the title. Default: category, colour, price.
	Fields []string `yaml:"fields"`
	// VideoField is the _source field holding a product's video URL (http(s) or a path on
	// this server): a card with moments plays it from the chosen moment. Videos load from
	// this server and ImageOrigins (CSP media-src). Default "video".
	VideoField string `yaml:"video_field"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{ImageField: "image", TitleField: "title", Fields: []string{"category", "colour", "price"}, VideoField: "video"}
}

// Deps is what the playground needs from the rest of vlproxy.
type Deps struct {
	// AdminToken lets clients other than loopback in (Authorization: Bearer <token>, or
	// ?token=<token> once, which sets a cookie). Empty: loopback only.
	AdminToken string
	// Downscale runs the proxy's own image pipeline on raw image bytes and returns the JPEG
	// the model is sent. Its errors may carry an ES status (ESError() (int, string, string)).
	// Nil: the downscale endpoint answers 501.
	Downscale func(raw []byte) ([]byte, error)
	// MaxImageBytes bounds an uploaded image (the rewrite's image.max_bytes). Default 8 MiB.
	MaxImageBytes int
	// Experiments are the configured experiments, shown with their metrics.
	Experiments []Experiment
	// Metrics writes the Prometheus text of the process's metrics (internal/promexp.Write);
	// the experiment metrics are read from it. Nil: no metrics shown.
	Metrics func(w io.Writer)
}

// Experiment is one configured experiment as the page shows it.
type Experiment struct {
	Name           string    `json:"name"`
	KeyHeader      string    `json:"key_header"`
	DefaultVariant string    `json:"default_variant"`
	Variants       []Variant `json:"variants"`
}

// Variant is one arm of an experiment.
type Variant struct {
	Name       string  `json:"name"`
	Weight     float64 `json:"weight"`
	Rewrite    *bool   `json:"rewrite,omitempty"`
	Rerank     string  `json:"rerank,omitempty"`
	WindowSize int     `json:"window_size,omitempty"`
	Scorer     string  `json:"scorer,omitempty"`
}

// Handler serves the playground.
type Handler struct {
	cfg     Config
	deps    Deps
	csp     string
	cookie  string // the expected session cookie value (HMAC of the admin token)
	files   map[string]asset
	cfgJSON []byte
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// New checks cfg and loads the embedded assets.
func New(cfg Config, deps Deps) (*Handler, error) {
	d := DefaultConfig()
	if cfg.ImageField == "" {
		cfg.ImageField = d.ImageField
	}
	if cfg.TitleField == "" {
		cfg.TitleField = d.TitleField
	}
	if cfg.Fields == nil {
		cfg.Fields = d.Fields
	}
	if deps.MaxImageBytes <= 0 {
		deps.MaxImageBytes = 8 << 20
	}
	for _, o := range cfg.ImageOrigins {
		if !validOrigin(o) {
			return nil, &configError{"cannot use ui.image_origins entry " + strconv.Quote(o) + ": want an origin like https://img.example.com"}
		}
	}
	h := &Handler{cfg: cfg, deps: deps, files: map[string]asset{}}
	h.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:"
	for _, o := range cfg.ImageOrigins {
		h.csp += " " + o
	}
	h.csp += "; media-src 'self'"
	for _, o := range cfg.ImageOrigins {
		h.csp += " " + o
	}
	h.csp += "; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if deps.AdminToken != "" {
		m := hmac.New(sha256.New, []byte(deps.AdminToken))
		m.Write([]byte("vlproxy playground session"))
		h.cookie = hex.EncodeToString(m.Sum(nil))
	}
	err := fs.WalkDir(static, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the host's mime.types
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		h.files[strings.TrimPrefix(p, "static/")] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, &configError{"cannot read the embedded playground assets: " + err.Error()}
	}
	h.cfgJSON, _ = json.Marshal(map[string]any{
		"default_index":      cfg.DefaultIndex,
		"image_field":        cfg.ImageField,
		"image_url_template": cfg.ImageURLTemplate,
		"title_field":        cfg.TitleField,
		"fields":             cfg.Fields,
		"video_field":        cfg.VideoField,
		"experiments":        deps.Experiments,
		"downscale":          deps.Downscale != nil,
		"max_image_bytes":    deps.MaxImageBytes,
	})
	return h, nil
}

type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func validOrigin(o string) bool {
	rest, ok := strings.CutPrefix(o, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(o, "http://")
	}
	return ok && rest != "" && !strings.ContainsAny(rest, "/;, '\"\t\n")
}

// AssetBytes is the total size of the embedded assets (the page weight before compression).
func (h *Handler) AssetBytes() int {
	n := 0
	for _, a := range h.files {
		n += len(a.body)
	}
	return n
}

// Serve answers every request under Prefix.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	hd := &ctx.Response.Header
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !h.allowed(ctx) {
		return
	}
	rest := strings.TrimPrefix(string(ctx.Path()), Prefix)
	switch {
	case rest == "" || rest == "/":
		if rest == "" && len(ctx.QueryArgs().Peek("token")) == 0 {
			// Relative asset URLs resolve against the directory.
			redirect(ctx, fasthttp.StatusFound)
			return
		}
		h.serveAsset(ctx, "index.html")
	case strings.HasPrefix(rest, "/api/"):
		h.serveAPI(ctx, strings.TrimPrefix(rest, "/api/"))
	default:
		h.serveAsset(ctx, strings.TrimPrefix(rest, "/"))
	}
}

func (h *Handler) serveAsset(ctx *fasthttp.RequestCtx, name string) {
	if !ctx.IsGet() && !ctx.IsHead() {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "illegal_argument_exception",
			"the playground's pages answer GET and HEAD only, not "+string(ctx.Method()))
		return
	}
	a, ok := h.files[name]
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, "resource_not_found_exception", "no playground file "+name)
		return
	}
	ctx.Response.Header.Set("ETag", a.etag)
	ctx.Response.Header.Set("Cache-Control", "no-cache") // revalidate: the binary may change under the same URL
	if string(ctx.Request.Header.Peek("If-None-Match")) == a.etag {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType(a.ctype)
	ctx.SetBody(a.body)
}

// sessionCookie carries the HMAC of the admin token, never the token itself.
const sessionCookie = "vlproxy_ui"

// allowed lets a request in from loopback (when its Host header names loopback too, so a
// DNS-rebinding page cannot read the playground), or with the admin token: as a Bearer header,
// as the session cookie, or as ?token= on the page, which sets the cookie and redirects to the
// page without the token in its URL. It answers the refusal itself.
func (h *Handler) allowed(ctx *fasthttp.RequestCtx) bool {
	if isLoopback(ctx.RemoteIP()) && loopbackHost(string(ctx.Host())) {
		return true
	}
	if h.deps.AdminToken != "" {
		want := []byte("Bearer " + h.deps.AdminToken)
		if subtle.ConstantTimeCompare(ctx.Request.Header.Peek("Authorization"), want) == 1 {
			return true
		}
		if c := ctx.Request.Header.Cookie(sessionCookie); len(c) > 0 && subtle.ConstantTimeCompare(c, []byte(h.cookie)) == 1 {
			return true
		}
		if tok := ctx.QueryArgs().Peek("token"); len(tok) > 0 && subtle.ConstantTimeCompare(tok, []byte(h.deps.AdminToken)) == 1 {
			var ck fasthttp.Cookie
			ck.SetKey(sessionCookie)
			ck.SetValue(h.cookie)
			ck.SetPath(Prefix)
			ck.SetHTTPOnly(true)
			ck.SetSameSite(fasthttp.CookieSameSiteStrictMode)
			ck.SetSecure(ctx.IsTLS())
			ctx.Response.Header.SetCookie(&ck)
			redirect(ctx, fasthttp.StatusSeeOther)
			return false
		}
	}
	reason := "the playground answers loopback clients only; set VLPROXY_ADMIN_TOKEN to let other clients in with the token"
	if h.deps.AdminToken != "" {
		reason = "the playground needs the admin token from a non-loopback client: open " + Prefix +
			"/?token=<token> once, or send Authorization: Bearer <token>"
	}
	writeError(ctx, fasthttp.StatusForbidden, "security_exception", reason)
	return false
}

// redirect sends the client to the page by path only: behind a reverse proxy the Host the
// proxy sees is not the one the browser used.
func redirect(ctx *fasthttp.RequestCtx, status int) {
	ctx.Response.Header.Set("Location", Prefix+"/")
	ctx.SetStatusCode(status)
}

func isLoopback(ip net.IP) bool { return ip != nil && ip.IsLoopback() }

// loopbackHost reports whether a Host header names this machine: localhost or a loopback IP.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeError answers an ES-shaped error, like every error vlproxy produces.
func writeError(ctx *fasthttp.RequestCtx, status int, typ, reason string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(eserr.Append(nil, status, typ, reason))
}
