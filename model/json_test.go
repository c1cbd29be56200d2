package model

import (
	"encoding/json"
	"testing"
)

func TestMessageJSON(t *testing.T) {
	f := func(m Message, want string) {
		t.Helper()
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Fatalf("\n got %s\nwant %s", b, want)
		}
		var back Message
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(back)
		if string(b2) != want {
			t.Fatalf("round trip\n got %s\nwant %s", b2, want)
		}
	}
	f(Message{Role: "system", Text: "Reply with JSON only."}, `{"role":"system","content":"Reply with JSON only."}`)
	f(Message{Role: "user", Parts: []Part{ImagePart("data:image/jpeg;base64,/9j/"), TextPart("红色 \"跑鞋\"\n\t\u2028")}},
		`{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/"}},{"type":"text","text":"红色 \"跑鞋\"\n\t\u2028"}]}`)
	f(Message{Role: "user", Parts: []Part{VideoPart("data:video/mp4;base64,AAAAIGZ0eXA="), TextPart("Which seconds show the model turning?")}},
		`{"role":"user","content":[{"type":"video_url","video_url":{"url":"data:video/mp4;base64,AAAAIGZ0eXA="}},{"type":"text","text":"Which seconds show the model turning?"}]}`)
	f(Message{Role: "user", Text: "bad \ufffd utf8 \x01"}, `{"role":"user","content":"bad � utf8 \u0001"}`)
	if b, _ := json.Marshal(Message{Role: "user", Text: "bad \xff"}); string(b) != `{"role":"user","content":"bad \ufffd"}` {
		t.Fatalf("invalid UTF-8: %s", b)
	}
}

func TestPartUnmarshalBareImageURL(t *testing.T) {
	var p Part
	if err := json.Unmarshal([]byte(`{"type":"image_url","image_url":"data:;base64,AAAA"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "image_url" || p.URL != "data:;base64,AAAA" {
		t.Fatalf("got %+v", p)
	}
}
