package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LoadQrels reads a TREC qrels file.
func LoadQrels(path string) (Qrels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open qrels: %w", err)
	}
	defer f.Close()
	return ParseQrels(f, path)
}

// ParseQrels parses TREC qrels lines "query iteration document relevance" (whitespace separated;
// blank lines and lines starting with # are skipped). Errors name the file and line.
func ParseQrels(r io.Reader, name string) (Qrels, error) {
	qr := Qrels{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 fields \"query iteration document relevance\", got %d", name, line, len(f))
		}
		rel, err := strconv.Atoi(f[3])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: relevance %q is not an integer", name, line, f[3])
		}
		q, d := f[0], f[2]
		if qr[q] == nil {
			qr[q] = map[string]int{}
		}
		if _, dup := qr[q][d]; dup {
			return nil, fmt.Errorf("%s:%d: document %q is judged twice for query %q", name, line, d, q)
		}
		qr[q][d] = rel
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: cannot read qrels: %w", name, line+1, err)
	}
	if len(qr) == 0 {
		return nil, fmt.Errorf("%s: no judgments", name)
	}
	return qr, nil
}

// WriteQrels writes qrels in TREC format, queries and documents in the order given.
func WriteQrels(w io.Writer, order []string, qr Qrels, docOrder func(q string) []string) error {
	bw := bufio.NewWriter(w)
	for _, q := range order {
		for _, d := range docOrder(q) {
			fmt.Fprintf(bw, "%s 0 %s %d\n", q, d, qr[q][d])
		}
	}
	return bw.Flush()
}

// EvalQuery is one query of an evaluation set. In a queries file each is an NDJSON line:
//
//	{"id":"t1","text":"Men Navy Blue Shirts"}
//	{"id":"i1","image_file":"images/15970.jpg","exclude":["15970"]}
//
// exclude lists documents removed from the results before scoring (the query's own product).
type EvalQuery struct {
	ID        string   `json:"id"`
	Text      string   `json:"text,omitempty"`
	ImageFile string   `json:"image_file,omitempty"`
	Exclude   []string `json:"exclude,omitempty"`
	image     string   // path resolved against the queries file
}

// LoadQueries reads an NDJSON queries file.
func LoadQueries(path string) ([]EvalQuery, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open queries: %w", err)
	}
	defer f.Close()
	return ParseQueries(f, path, filepath.Dir(path))
}

// ParseQueries parses NDJSON queries; image_file paths are resolved against dir.
func ParseQueries(r io.Reader, name, dir string) ([]EvalQuery, error) {
	var out []EvalQuery
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var q EvalQuery
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&q); err != nil {
			return nil, fmt.Errorf("%s:%d: cannot parse query: %w", name, line, err)
		}
		if q.ID == "" {
			return nil, fmt.Errorf("%s:%d: query has no id", name, line)
		}
		if q.Text == "" && q.ImageFile == "" {
			return nil, fmt.Errorf("%s:%d: query %q has neither text nor image_file", name, line, q.ID)
		}
		if prev, dup := seen[q.ID]; dup {
			return nil, fmt.Errorf("%s:%d: query id %q repeats line %d", name, line, q.ID, prev)
		}
		seen[q.ID] = line
		if q.ImageFile != "" {
			q.image = resolve(dir, q.ImageFile)
		}
		out = append(out, q)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: cannot read queries: %w", name, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", name)
	}
	return out, nil
}
