// Package promexp writes every metric of the process in the Prometheus text exposition format
// (version 0.0.4): # HELP and # TYPE for each family, histograms with cumulative le buckets, the
// Go runtime and process collectors of the official client. Packages declare their metrics with
// client_golang (promauto) in the default registry; this is the one place that writes them out.
package promexp

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// ContentType is the Content-Type of what Write produces.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write gathers the default registry and writes it to w in text format.
func Write(w io.Writer) error {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return fmt.Errorf("cannot gather metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("cannot encode metric family %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

// Text is Write into a string, for tests and the admin endpoint's error path.
func Text() string {
	var b stringWriter
	if err := Write(&b); err != nil {
		return "# " + err.Error() + "\n"
	}
	return string(b)
}

type stringWriter []byte

func (s *stringWriter) Write(p []byte) (int, error) { *s = append(*s, p...); return len(p), nil }
