package resultcache

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
)

// maxActionLine bounds the action line a BulkScanner holds; a longer one (no real action line
// is) makes the scan give up and the write touch everything.
const maxActionLine = 64 << 10

// BulkScanner reads a _bulk body as it passes, in pieces of any size, and collects the indices
// its action lines name, the way Elasticsearch reads them: a blank line where an action is
// expected is skipped, the line after an index, create or update action is its source whatever
// it holds (skipped without being kept), delete has no source. Only the current action line is
// held, so a bulk of any size costs at most maxActionLine bytes. An action line it cannot
// read, a pipeline, or an index pattern makes the result touch everything.
type BulkScanner struct {
	defaultIndex string
	line         []byte // the action line read so far
	inSource     bool   // skipping a source line
	all          bool
	w            Write
	seen         map[string]bool
}

// IsBulkPath reports whether a request path is a _bulk endpoint (/_bulk, /{index}/_bulk).
func IsBulkPath(path []byte) bool {
	segs, ok := splitPath(path)
	if !ok {
		return false
	}
	return (len(segs) == 1 && segs[0] == "_bulk") || (len(segs) == 2 && segs[1] == "_bulk" && !strings.HasPrefix(segs[0], "_"))
}

// NewBulkScanner starts the scan of a _bulk request to path (whose index, if any, is the
// default of action lines without `_index`) with the raw query string query.
func NewBulkScanner(path, query []byte) *BulkScanner {
	s := &BulkScanner{seen: map[string]bool{}}
	segs, ok := splitPath(path)
	switch {
	case !ok:
		s.all = true
	case len(segs) == 2:
		s.defaultIndex = segs[0]
		if isPattern(s.defaultIndex) {
			s.all = true
		}
	}
	if _, ok := queryParam(query, "pipeline"); ok {
		s.all = true
	}
	return s
}

// Write scans the next piece of the body; it never fails.
func (s *BulkScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !s.all {
		i := bytes.IndexByte(p, '\n')
		if s.inSource {
			if i < 0 {
				return n, nil
			}
			s.inSource = false
			p = p[i+1:]
			continue
		}
		chunk := p
		if i >= 0 {
			chunk, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if len(s.line)+len(chunk) > maxActionLine {
			s.all = true
			break
		}
		s.line = append(s.line, chunk...)
		if i >= 0 {
			s.action()
		}
	}
	return n, nil
}

// action handles one complete action line.
func (s *BulkScanner) action() {
	line := s.line
	s.line = s.line[:0]
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	action, meta, ok := bulkAction(line)
	if !ok || meta.Get("pipeline").Exists() {
		s.all = true
		return
	}
	index := s.defaultIndex
	if v := meta.Get("_index"); v.Exists() {
		if v.Type != gjson.String {
			s.all = true
			return
		}
		index = v.String()
	}
	if isPattern(index) {
		s.all = true
		return
	}
	if !s.seen[index] {
		s.seen[index] = true
		s.w.Indices = append(s.w.Indices, index)
	}
	s.inSource = action != "delete"
}

// Result is what the scanned body may change. Call it once the body has passed (whatever was
// not read never reached the node); a final line without a newline counts.
func (s *BulkScanner) Result() Write {
	if !s.all && len(s.line) > 0 && !s.inSource {
		s.action()
	}
	if s.all {
		return Write{All: true}
	}
	w := s.w
	if len(w.Indices) == 0 && s.defaultIndex != "" {
		w.Indices = []string{s.defaultIndex}
	}
	return w
}
