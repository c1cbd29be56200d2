package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Fetcher downloads from operator-allowed hosts: images here (Loader), product videos in the
// enrich job. The host name is checked against the allow list on the first request and on
// every redirect; the address actually dialled is checked after DNS resolution, so a public
// name resolving to 127.0.0.1 or the metadata address is refused too. Create it with
// NewFetcher; it is safe for concurrent use.
type Fetcher struct {
	cfg    *Config
	client *http.Client
	// deniedIP reports addresses that are never dialled; tests replace it.
	deniedIP func(netip.Addr) bool
}

// Resource says what a download is for: its name and size limit in errors, its Accept header.
type Resource struct {
	// Name is what errors call it, e.g. "[multimodal] [image]" or "video".
	Name string
	// MaxBytes is the largest body accepted; a larger one is a 413.
	MaxBytes int
	// Limit names the setting behind MaxBytes in that 413, e.g. "image.max_bytes".
	Limit string
	// Accept is the request's Accept header.
	Accept string
}

var errDeniedAddress = errors.New("address not allowed")

// NewFetcher returns a Fetcher under cfg's allow list (AllowedHosts), FetchTimeout and
// MaxRedirects, all read from cfg with its defaults applied; AllowedHosts and MaxRedirects are
// read again on every download.
func NewFetcher(cfg *Config) *Fetcher {
	f := &Fetcher{cfg: cfg, deniedIP: deniedIP}
	dialer := &net.Dialer{
		Timeout: cfg.FetchTimeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("cannot dial %s: %w", address, errDeniedAddress)
			}
			if f.deniedIP(ap.Addr()) {
				return fmt.Errorf("cannot dial %s: %w", address, errDeniedAddress)
			}
			return nil
		},
	}
	f.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // an env proxy would dial on our behalf and bypass the address check
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   cfg.FetchTimeout,
			ResponseHeaderTimeout: cfg.FetchTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
		},
		Timeout: cfg.FetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("cannot follow more than %d redirects (image.max_redirects)", cfg.MaxRedirects)
			}
			return f.checkURL(req.URL)
		},
	}
	return f
}

// deniedIP is true for loopback, private, link-local, CGNAT, multicast and
// unspecified addresses (cloud metadata services live at link-local addresses).
func deniedIP(a netip.Addr) bool {
	a = a.Unmap()
	return !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsUnspecified() || cgnat.Contains(a) || a == metadataV4 || nat64.Contains(a)
}

var (
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	metadataV4 = netip.MustParseAddr("169.254.169.254")
)

// SetDeniedIP replaces the test of addresses never dialled (tests let loopback through).
func (f *Fetcher) SetDeniedIP(denied func(netip.Addr) bool) { f.deniedIP = denied }

func (f *Fetcher) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("cannot fetch scheme %q", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if !f.hostAllowed(host) {
		return fmt.Errorf("cannot fetch from host %q: not in image.allowed_hosts", host)
	}
	if a, err := netip.ParseAddr(host); err == nil && f.deniedIP(a) {
		return fmt.Errorf("cannot fetch from %s: %w", host, errDeniedAddress)
	}
	return nil
}

func (f *Fetcher) hostAllowed(host string) bool {
	for _, h := range f.cfg.AllowedHosts {
		h = strings.ToLower(h)
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*."); ok && strings.HasSuffix(host, "."+suffix) {
			return true
		}
	}
	return false
}

// Get downloads what raw (an http(s) URL) names, at most r.MaxBytes bytes. Errors are
// *eserr.Error: 400 for a refused or failed download, 413 past the size limit.
func (f *Fetcher) Get(ctx context.Context, raw string, r Resource) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, imageError(err, "cannot parse %s URL", r.Name)
	}
	if err := f.checkURL(u); err != nil {
		return nil, imageError(err, "cannot fetch %s", r.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, imageError(err, "cannot fetch %s", r.Name)
	}
	req.Header.Set("Accept", r.Accept)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, imageError(err, "cannot fetch %s", r.Name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, imageError(nil, "cannot fetch %s: status %d", r.Name, resp.StatusCode)
	}
	if resp.ContentLength > int64(r.MaxBytes) {
		return nil, tooLarge("cannot accept %s: %d bytes is larger than %s (%d bytes)", r.Name, resp.ContentLength, r.Limit, r.MaxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(r.MaxBytes)+1))
	if err != nil {
		return nil, imageError(err, "cannot read %s from its URL", r.Name)
	}
	if len(b) > r.MaxBytes {
		return nil, tooLarge("cannot accept %s: larger than %s (%d bytes)", r.Name, r.Limit, r.MaxBytes)
	}
	return b, nil
}
