package eserr

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/vlproxy/vlproxy/model"
)

func TestAppendExactJSON(t *testing.T) {
	got := string(Append(nil, 400, "parsing_exception", `bad "x"`))
	want := `{"error":{"root_cause":[{"type":"parsing_exception","reason":"bad \"x\""}],"type":"parsing_exception","reason":"bad \"x\""},"status":400}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestReasonAndCause(t *testing.T) {
	cause := errors.New("EOF")
	hidden := &Error{Status: 400, Type: TypeIllegalArgument, Reason: "cannot read the body", Err: cause}
	if _, _, r := hidden.ESError(); r != "cannot read the body" || hidden.Error() != "cannot read the body: EOF" || !errors.Is(hidden, cause) {
		t.Fatalf("hidden cause: %q / %q", r, hidden.Error())
	}
	shown := &Error{Status: 400, Type: TypeIllegalArgument, Reason: "cannot decode", Err: cause, ShowCause: true}
	if _, _, r := shown.ESError(); r != "cannot decode: EOF" {
		t.Fatalf("shown cause: %q", r)
	}
	f := Errorf(400, TypeIllegalArgument, "cannot set [size]: %w", cause)
	if st, typ, r := f.ESError(); st != 400 || typ != TypeIllegalArgument || r != "cannot set [size]: EOF" || f.Error() != r || !errors.Is(f, cause) {
		t.Fatalf("Errorf: %d %s %q / %q", st, typ, r, f.Error())
	}
	if b := BadRequest("cannot use [%s]", "x"); b.Status != 400 || b.Err != nil || b.Error() != "cannot use [x]" {
		t.Fatalf("BadRequest: %+v", b)
	}
}

func TestFromModel(t *testing.T) {
	for kind, want := range map[string]struct {
		status int
		typ    string
	}{
		model.KindOverloaded:  {429, "model_overloaded_exception"},
		model.KindTimeout:     {504, "model_timeout_exception"},
		model.KindCircuitOpen: {503, "model_circuit_open_exception"},
		model.KindUnavailable: {503, "model_unavailable_exception"},
		model.KindBadRequest:  {502, "model_request_rejected_exception"},
		model.KindBadOutput:   {502, "model_bad_output_exception"},
		model.KindCanceled:    {499, "model_request_canceled_exception"},
	} {
		me := &model.Error{Kind: kind, Message: "m"}
		e := FromModel(me)
		st, typ, r := e.ESError()
		if st != want.status || typ != want.typ || r != "cannot use the model: "+me.Error() || !errors.Is(e, me) {
			t.Errorf("%s: %d %s %q", kind, st, typ, r)
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("parsing_exception", "plain")
	f.Add("x", "红色 \"跑鞋\"\n\xff")
	f.Fuzz(func(t *testing.T, typ, reason string) {
		b := Append(nil, 400, typ, reason)
		var v struct {
			Error struct {
				RootCause []struct{ Type, Reason string } `json:"root_cause"`
				Type      string
				Reason    string
			}
			Status int
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		wantReason := string([]rune(reason)) // each invalid byte becomes U+FFFD
		if v.Status != 400 || len(v.Error.RootCause) != 1 || v.Error.Reason != wantReason || v.Error.RootCause[0].Reason != wantReason {
			t.Fatalf("%s", fmt.Sprint(v))
		}
	})
}
