package pipeline

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// groupRows answers a document clause with group_by_row: one `_msearch`
// round trip with one search per table row (bounded by
// rewrite.document.max_rows), whose hits go to ext.vlproxy.rows[i].hits of
// the response, next to the row itself. The response's own hits stay those
// of the whole document (any row). A failed fan-out leaves the response as
// it is and says so in ext.vlproxy.rows_error.
func (p *Pipeline) groupRows(ctx context.Context, in *input, pt *part, out *outcome, t *Timings) {
	groups := pt.rewrite.Groups
	var nd []byte
	for _, g := range groups {
		nd = append(nd, "{}\n"...)
		nd = append(nd, g.Body...)
		nd = append(nd, '\n')
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	in.prepare(&req.Header, in.rc)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Del("Content-Encoding")
	req.Header.Del("Accept-Encoding")
	req.Header.Del("Content-Length")
	req.Header.SetContentType("application/x-ndjson")
	req.Header.SetRequestURI(msearchPath(in.index))
	req.SetBody(nd)

	s := time.Now()
	err := p.fwd.Forward(ctx, req, resp)
	t.Search += time.Since(s)
	fail := func(reason string) {
		if b, err := sjson.SetBytes(out.body, "ext.vlproxy.rows_error", reason); err == nil {
			out.body = b
		}
	}
	if err != nil {
		fail("cannot search the rows: " + err.Error())
		return
	}
	resps, ok := searchbody.SplitResponses(resp.Body())
	if resp.StatusCode() != 200 || !ok || len(resps) != len(groups) {
		fail("cannot search the rows: upstream status " + strconv.Itoa(resp.StatusCode()))
		return
	}
	rows := []byte{'['}
	for i, g := range groups {
		if i > 0 {
			rows = append(rows, ',')
		}
		row, _ := json.Marshal(g.Row)
		rows = append(rows, `{"row":`...)
		rows = append(rows, row...)
		r := gjson.ParseBytes(resps[i])
		if e := r.Get("error"); e.Exists() {
			rows = append(rows, `,"error":`...)
			rows = append(rows, e.Raw...)
		} else {
			rows = append(rows, `,"hits":`...)
			if h := r.Get("hits"); h.Exists() {
				rows = append(rows, h.Raw...)
			} else {
				rows = append(rows, `{}`...)
			}
		}
		rows = append(rows, '}')
	}
	rows = append(rows, ']')
	if b, err := sjson.SetRawBytes(out.body, "ext.vlproxy.rows", rows); err == nil {
		out.body = b
	}
}

// msearchPath is the `_msearch` path for the request's index expression.
func msearchPath(index string) string {
	if index == "" {
		return "/_msearch"
	}
	names := strings.Split(index, ",")
	for i, n := range names {
		names[i] = url.PathEscape(n)
	}
	return "/" + strings.Join(names, ",") + "/_msearch"
}
