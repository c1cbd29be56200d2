package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// runBareProxy serves the smallest fasthttp reverse proxy that is still correct for the benchmark's
// requests: one HostClient with keep-alive, request and response copied as they are. It is the
// floor a fasthttp proxy cannot go below on a machine; the pass-through benchmark runs it beside
// vlproxy and nginx so vlproxy's own cost can be told from fasthttp's and the kernel's.
func runBareProxy(args []string) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := fs.String("upstream", "", "host:port (or http://host:port) of the backend (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("-upstream is required")
	}
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(*upstream, "http://"), MaxConns: 1024,
		DisablePathNormalizing: true, NoDefaultUserAgentHeader: true}
	srv := &fasthttp.Server{
		NoDefaultServerHeader: true, NoDefaultDate: true, NoDefaultContentType: true,
		DisablePreParseMultipartForm: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Request.Header.ResetConnectionClose()
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
			ctx.Response.Header.ResetConnectionClose()
		},
	}
	return srv.ListenAndServe(*listen)
}
