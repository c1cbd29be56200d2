package video

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseSegments(t *testing.T) {
	f := func(content string, duration float64, want string, dropped, merged int) {
		t.Helper()
		p, err := ParseSegments(content, duration, 0)
		if err != nil {
			t.Fatalf("%s: %v", content, err)
		}
		b, _ := json.Marshal(p.Segments)
		if string(b) != want || p.Dropped != dropped || p.Merged != merged {
			t.Fatalf("%s:\n got %s dropped %d merged %d\nwant %s dropped %d merged %d", content, b, p.Dropped, p.Merged, want, dropped, merged)
		}
	}
	// What Qwen3-VL is asked for, in order.
	f(`{"segments":[{"start":0,"end":3,"description":"white backdrop","keywords":["white"]},{"start":3,"end":6,"description":"a red box appears","keywords":["Red","box","red"]}]}`, 6,
		`[{"start":0,"end":3,"description":"white backdrop","keywords":["white"]},{"start":3,"end":6,"description":"a red box appears","keywords":["red","box"]}]`, 0, 0)
	// Unsorted, in a code fence, times as strings in every form, the end clamped to the video.
	f("Here you go:\n```json\n{\"segments\":[{\"start\":\"00:00:04\",\"end\":\"<9.5 seconds>\",\"description\":\"model turns around\"},{\"start\":\"1.5s\",\"end\":\"0:03\",\"keywords\":\"jacket, zip , jacket\"}]}\n```", 8,
		`[{"start":1.5,"end":3,"description":"jacket, zip","keywords":["jacket","zip"]},{"start":4,"end":8,"description":"model turns around","keywords":[]}]`, 0, 0)
	// Overlaps merge; a moment with one time lasts a second; a bare array.
	f(`[{"start":2,"end":5,"description":"spins"},{"start":4,"end":7,"description":"waves","keywords":["wave"]},{"time":23,"description":"第23秒出现模特转身动作"}]`, 30,
		`[{"start":2,"end":7,"description":"spins; waves","keywords":["wave"]},{"start":23,"end":24,"description":"第23秒出现模特转身动作","keywords":[]}]`, 0, 1)
	// Bad rows are dropped and counted: not an object, no start, end before start, past the
	// end, unreadable end, nothing said, NaN-ish strings, wholly before 0.
	f(`{"segments":["0-3 s",{"end":3,"description":"x"},{"start":5,"end":2,"description":"x"},{"start":12,"end":14,"description":"x"},
		{"start":1,"end":"soon","description":"x"},{"start":1,"end":2},{"start":"NaN","description":"x"},{"start":"1e999","description":"x"},
		{"start":-4,"end":-1,"description":"x"},{"start":-1,"end":1.23456,"description":" a\n  b "}]}`, 10,
		`[{"start":0,"end":1.235,"description":"a b","keywords":[]}]`, 9, 0)
	// A point at the very end is clamped to the duration; no duration, no clamp.
	f(`{"segments":[{"start":9.5,"description":"end"}]}`, 10, `[{"start":9.5,"end":10,"description":"end","keywords":[]}]`, 0, 0)
	f(`{"start":100,"end":200,"description":"long"}`, 0, `[{"start":100,"end":200,"description":"long","keywords":[]}]`, 0, 0)

	for _, bad := range []string{"", "no json here", `{"keywords":["red"]}`, `{"segments":`, `"segments"`} {
		if _, err := ParseSegments(bad, 10, 0); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	var rows []string
	for i := range 80 {
		rows = append(rows, `{"start":`+strconv.Itoa(i)+`,"end":`+strconv.Itoa(i+1)+`,"description":"s"}`)
	}
	p, err := ParseSegments(`{"segments":[`+strings.Join(rows, ",")+`]}`, 100, 50)
	if err != nil || len(p.Segments) != 50 || p.Dropped != 30 || p.Segments[49].Start != 49 {
		t.Fatalf("cap: %d segments, %d dropped, %v", len(p.Segments), p.Dropped, err)
	}
}

// checkParsed asserts what every answer's segments must be: sorted, not overlapping,
// within [0, duration], finite, each with a description in valid UTF-8.
func checkParsed(t *testing.T, p Parsed, duration float64, maxSegments int) {
	t.Helper()
	if len(p.Segments) > maxSegments || p.Dropped < 0 || p.Merged < 0 {
		t.Fatalf("%d segments (cap %d), dropped %d, merged %d", len(p.Segments), maxSegments, p.Dropped, p.Merged)
	}
	prevEnd := 0.0
	for i, s := range p.Segments {
		if math.IsNaN(s.Start) || math.IsNaN(s.End) || math.IsInf(s.Start, 0) || math.IsInf(s.End, 0) {
			t.Fatalf("segment %d: %v–%v", i, s.Start, s.End)
		}
		if s.Start < 0 || s.End < s.Start || (duration > 0 && s.End > duration) || s.Start < prevEnd {
			t.Fatalf("segment %d: %v–%v after %v (duration %v)", i, s.Start, s.End, prevEnd, duration)
		}
		if s.Description == "" || !utf8.ValidString(s.Description) || len(s.Keywords) > maxSegKeywords {
			t.Fatalf("segment %d: description %q, %d keywords", i, s.Description, len(s.Keywords))
		}
		prevEnd = s.End
	}
	if _, err := json.Marshal(p.Segments); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseSegments: any answer gives segments that keep checkParsed's invariants, or an
// error, never a panic. Seeds are answers of the shapes models give (testdata/fuzz adds
// hostile ones).
func FuzzParseSegments(f *testing.F) {
	for _, s := range []string{
		`{"segments":[{"start":0,"end":3,"description":"white backdrop","keywords":["white"]},{"start":3,"end":6,"description":"a red box appears","keywords":["red"]}]}`,
		"```json\n[{\"start\":\"00:00:04\",\"end\":\"<9.5 seconds>\",\"description\":\"model turns around\"}]\n```",
		`{"moments":[{"time":"23s","event":"第23秒出现模特转身动作","tags":"turn, model"}]}`,
		`{"segments":[{"start":5,"end":2},{"start":-1e308,"end":1e308,"description":"x"},{"start":"1:02.5","end":"1:90"}]}`,
	} {
		f.Add(s, 6.0)
	}
	f.Fuzz(func(t *testing.T, content string, duration float64) {
		p, err := ParseSegments(content, duration, 16)
		if err != nil {
			return
		}
		if math.IsNaN(duration) || math.IsInf(duration, 0) || duration < 0 {
			duration = 0
		}
		checkParsed(t, p, duration, 16)
	})
}
