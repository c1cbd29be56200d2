package video

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Parsed is what ParseSegments kept of a model's answer.
type Parsed struct {
	Segments []Segment
	// Dropped counts rows that were not usable (not an object, no readable start, end
	// before start, past the end of the video, nothing said) or over the segment cap.
	Dropped int
	// Merged counts rows folded into an overlapping earlier one.
	Merged int
}

const (
	maxDescription = 300 // runes kept of a description
	maxSegKeywords = 10  // keywords kept per segment
	pointSpan      = 1.0 // seconds a moment given as one time stands for
)

var errNoSegments = errors.New("cannot find segment JSON in the answer")

// ParseSegments reads the time-coded segments a model answered for a video of duration
// seconds (0: unknown, no upper clamp): {"segments":[{"start","end","description",
// "keywords"}]} or a bare array, inside code fences or prose if need be. It trusts
// nothing: times may be numbers or strings ("12.5", "12.5s", "<12.5 seconds>", "1:02.5",
// "00:01:02"), are clamped to [0, duration], a row with one time is a moment of one
// second, rows are sorted by start, overlapping rows are merged, and unusable rows are
// dropped and counted; at most maxSegments are kept (0: 64). The error is only for an
// answer without JSON rows; an answer whose every row is bad gives no segments.
func ParseSegments(content string, duration float64, maxSegments int) (Parsed, error) {
	var p Parsed
	if maxSegments <= 0 {
		maxSegments = 64
	}
	if math.IsNaN(duration) || math.IsInf(duration, 0) || duration < 0 {
		duration = 0
	}
	rows, ok := segmentRows(content)
	if !ok {
		return p, errNoSegments
	}
	segs := make([]Segment, 0, len(rows))
	for _, r := range rows {
		s, ok := readSegment(r, duration)
		if !ok {
			p.Dropped++
			continue
		}
		segs = append(segs, s)
	}
	slices.SortStableFunc(segs, func(a, b Segment) int {
		if c := cmpFloat(a.Start, b.Start); c != 0 {
			return c
		}
		return cmpFloat(a.End, b.End)
	})
	for _, s := range segs {
		if n := len(p.Segments); n > 0 && s.Start < p.Segments[n-1].End {
			merge(&p.Segments[n-1], s)
			p.Merged++
			continue
		}
		p.Segments = append(p.Segments, s)
	}
	if len(p.Segments) > maxSegments {
		p.Dropped += len(p.Segments) - maxSegments
		p.Segments = p.Segments[:maxSegments]
	}
	return p, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// segmentRows finds the rows: the whole answer as JSON, else the outermost {…} or […]
// in it (models wrap JSON in fences and sentences).
func segmentRows(content string) ([]gjson.Result, bool) {
	content = strings.TrimSpace(content)
	if !gjson.Valid(content) {
		i := strings.IndexAny(content, "{[")
		j := strings.LastIndexAny(content, "}]")
		if i < 0 || j < i || !gjson.Valid(content[i:j+1]) {
			return nil, false
		}
		content = content[i : j+1]
	}
	root := gjson.Parse(content)
	switch {
	case root.IsArray():
		return root.Array(), true
	case root.IsObject():
		for _, k := range []string{"segments", "moments", "events"} {
			if v := root.Get(k); v.IsArray() {
				return v.Array(), true
			}
		}
		if root.Get("start").Exists() {
			return []gjson.Result{root}, true
		}
	}
	return nil, false
}

// readSegment reads one row, clamped to the video; ok is false for an unusable row.
func readSegment(r gjson.Result, duration float64) (Segment, bool) {
	var s Segment
	if !r.IsObject() {
		return s, false
	}
	start, ok := seconds(first(r, "start", "start_time", "from", "begin", "time", "timestamp"))
	if !ok {
		return s, false
	}
	end, ok := seconds(first(r, "end", "end_time", "to", "stop"))
	if !ok {
		if first(r, "end", "end_time", "to", "stop").Exists() {
			return s, false // an end that cannot be read is not a moment
		}
		end = start
	}
	if end < start || end < 0 {
		return s, false
	}
	start, end = max(start, 0), max(end, 0)
	if duration > 0 {
		if start >= duration {
			return s, false
		}
		end = min(end, duration)
	}
	if end == start {
		end = start + pointSpan
		if duration > 0 {
			end = min(end, duration)
		}
	}
	s.Start, s.End = round(start), round(end)
	s.Keywords = keywordList(first(r, "keywords", "tags", "labels"))
	s.Description = clean(first(r, "description", "caption", "text", "event").String(), maxDescription)
	if s.Description == "" {
		s.Description = strings.Join(top(s.Keywords, 3), ", ")
	}
	return s, s.Description != ""
}

func first(r gjson.Result, keys ...string) gjson.Result {
	for _, k := range keys {
		if v := r.Get(gjson.Escape(k)); v.Exists() && v.Type != gjson.Null {
			return v
		}
	}
	return gjson.Result{}
}

// seconds reads a time: a number, or a string of seconds with an optional unit and
// brackets, or [hh:]mm:ss[.f].
func seconds(v gjson.Result) (float64, bool) {
	var x float64
	switch v.Type {
	case gjson.Number:
		x = v.Num
	case gjson.String:
		t := strings.ToLower(strings.TrimSpace(v.Str))
		t = strings.Trim(t, "<>[]() ")
		for _, unit := range []string{"seconds", "second", "secs", "sec", "s"} {
			if u, ok := strings.CutSuffix(t, unit); ok {
				t = strings.TrimSpace(u)
				break
			}
		}
		var ok bool
		if x, ok = clock(t); !ok {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || x > 1e9 || x < -1e9 {
		return 0, false
	}
	return x, true
}

// clock parses "12.5", "1:02.5" or "00:01:02".
func clock(t string) (float64, bool) {
	parts := strings.Split(t, ":")
	if len(parts) > 3 || t == "" {
		return 0, false
	}
	var x float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || (i > 0 && (f < 0 || f >= 60)) || (i < len(parts)-1 && f != math.Trunc(f)) {
			return 0, false
		}
		x = x*60 + f
	}
	return x, true
}

// keywordList reads keywords as an array of strings or one comma-separated string,
// lower-cased, without duplicates, at most maxSegKeywords.
func keywordList(v gjson.Result) []string {
	var raw []string
	switch {
	case v.IsArray():
		for _, k := range v.Array() {
			if k.Type == gjson.String {
				raw = append(raw, k.Str)
			}
		}
	case v.Type == gjson.String:
		raw = strings.Split(v.Str, ",")
	}
	out := []string{}
	for _, k := range raw {
		k = strings.ToLower(clean(k, 60))
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
		if len(out) == maxSegKeywords {
			break
		}
	}
	return out
}

// clean makes s valid UTF-8 on one line without runs of spaces, at most n runes.
func clean(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	return s
}

// merge folds s into the earlier segment it overlaps.
func merge(into *Segment, s Segment) {
	into.End = max(into.End, s.End)
	if s.Description != "" && !strings.Contains(into.Description, s.Description) {
		into.Description = clean(into.Description+"; "+s.Description, maxDescription)
	}
	for _, k := range s.Keywords {
		if len(into.Keywords) < maxSegKeywords && !slices.Contains(into.Keywords, k) {
			into.Keywords = append(into.Keywords, k)
		}
	}
}
