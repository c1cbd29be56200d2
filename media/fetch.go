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

// fetcher downloads images from operator-allowed hosts. The host name is checked
// against the allow list on the first request and on every redirect; the address
// actually dialled is checked after DNS resolution, so a public name resolving to
// 127.0.0.1 or the metadata address is refused too.
type fetcher struct {
	cfg    *Config
	client *http.Client
	// deniedIP reports addresses that are never dialled; tests replace it.
	deniedIP func(netip.Addr) bool
}

var errDeniedAddress = errors.New("address not allowed")

func newFetcher(cfg *Config) *fetcher {
	f := &fetcher{cfg: cfg, deniedIP: deniedIP}
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

func (f *fetcher) checkURL(u *url.URL) error {
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

func (f *fetcher) hostAllowed(host string) bool {
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

// get downloads the image at raw, at most cfg.MaxBytes bytes.
func (f *fetcher) get(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, imageError(err, "cannot parse [multimodal] [image] URL")
	}
	if err := f.checkURL(u); err != nil {
		return nil, imageError(err, "cannot fetch [multimodal] [image]")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, imageError(err, "cannot fetch [multimodal] [image]")
	}
	req.Header.Set("Accept", "image/jpeg, image/png, image/webp, image/gif")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, imageError(err, "cannot fetch [multimodal] [image]")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, imageError(nil, "cannot fetch [multimodal] [image]: status %d", resp.StatusCode)
	}
	if resp.ContentLength > int64(f.cfg.MaxBytes) {
		return nil, tooLarge("cannot accept [multimodal] [image]: %d bytes is larger than image.max_bytes (%d bytes)", resp.ContentLength, f.cfg.MaxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(f.cfg.MaxBytes)+1))
	if err != nil {
		return nil, imageError(err, "cannot read [multimodal] [image] from its URL")
	}
	if len(b) > f.cfg.MaxBytes {
		return nil, tooLarge("cannot accept [multimodal] [image]: larger than image.max_bytes (%d bytes)", f.cfg.MaxBytes)
	}
	return b, nil
}
