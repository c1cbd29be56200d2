package rewrite

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestMomentsOption(t *testing.T) {
	f := func(in, wantPath, wantErr string) {
		t.Helper()
		c, err := parseClause(gjson.Parse(in))
		switch {
		case wantErr != "":
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s: error %v, want %q", in, err, wantErr)
			}
		case err != nil:
			t.Fatalf("%s: %v", in, err)
		case c.Moments != wantPath:
			t.Fatalf("%s: path %q, want %q", in, c.Moments, wantPath)
		}
	}
	f(`{"text":"a","moments":true}`, "moments", "")
	f(`{"text":"a","moments":false}`, "", "")
	f(`{"text":"a","moments":"video.segments"}`, "video.segments", "")
	f(`{"text":"a","moments":1}`, "", "[moments] must be true, false or the name of a nested field")
	f(`{"text":"a","moments":"a..b"}`, "", "[moments] must be")
	f(`{"text":"a","moments":"x\"y"}`, "", "[moments] must be")
	f(`{"text":"a","moments":""}`, "", "[moments] must be")
	f(`{"text":"a","moments":true,"mode":"vector"}`, "", "needs an [image]")
	f(`{"image":"aGk=","moments":true,"mode":"hybrid"}`, "moments", "")
	f(`{"document":"JVBERi0=","moments":true}`, "", "not a [document]")
}
