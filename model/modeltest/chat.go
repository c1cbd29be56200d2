package modeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usage        `json:"usage"`
}

type chatChoice struct {
	Index        int       `json:"index"`
	Message      chatMsg   `json:"message"`
	Logprobs     *logprobs `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
	StopReason   *string   `json:"stop_reason"`
}

type chatMsg struct {
	Role      string  `json:"role"`
	Content   *string `json:"content"`
	Reasoning *string `json:"reasoning"`
}

type logprobs struct {
	Content []tokenLogprob `json:"content"`
}

type tokenLogprob struct {
	Token       string         `json:"token"`
	Logprob     float64        `json:"logprob"`
	Bytes       []int          `json:"bytes"`
	TopLogprobs []tokenLogprob `json:"top_logprobs,omitempty"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	TotalTokens      int `json:"total_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// Judge prompt markers: the candidate follows the last "Document:" (or
// "Candidate:", "Product:", "Item:", optionally numbered or in <…>), the query
// follows "Query:". See README in the package doc of Server.chat.
var (
	queryMarker = regexp.MustCompile(`(?i)<?\bquery>?\s*:`)
	candMarker  = regexp.MustCompile(`(?i)<?\b(?:document|candidate|product|item)(?:\s*\[?\d+\]?)?>?\s*:`)
	imageMark   = regexp.MustCompile("\x00([0-9a-f]{64})\x00")
)

// chat answers /v1/chat/completions.
//
// Video mode, when the request carries a video_url part (at most Config.MaxVideos):
// {"segments":[…]} of the colours the clip shows second by second (see videoSegments).
//
// Table mode, when response_format.json_schema.name is "vlproxy_table_rows":
// {"rows":[…]} from Config.Images[…].Rows and from " | "-separated table text
// under a header line (see tableRows).
//
// Keyword mode (default): the answer is {"keywords":[…],"category":…,"attributes":{…}}
// from the rules (see Server.keywords).
//
// Judge mode, when the request constrains the output to choices
// (structured_outputs.choice, guided_choice) or asks for top_logprobs: the
// answer is "yes" or "no" and P(yes) in the top logprobs equals
// Config.Score(query, candidate). The last user message is split at the last
// candidate marker ("Document:", "Candidate:", "Product:", "Item:"): what
// follows (text and images), plus images right before the marker, is the
// candidate; what precedes, after a "Query:" marker if any, is the query.
// Without markers the last content part is the candidate. Several numbered
// candidates ("Product 1:", "Product 2:") give {"scores":[…]} in content
// (batched judging), with or without a choice constraint. Instructions after
// the candidate text count as candidate words for the default score; use
// ScoreRules or ScoreFunc for exact scores.
func (s *Server) chat(ctx context.Context, cfg Config, body []byte) (any, *Fault) {
	if !gjson.ValidBytes(body) {
		return nil, badRequest("JSON decode error: the request body is not valid JSON")
	}
	r := gjson.ParseBytes(body)
	if m := r.Get("model").String(); m != "" && m != cfg.Model {
		return nil, &Fault{Status: 404, Shape: ShapeVLLM, Message: "The model `" + m + "` does not exist."}
	}
	msgs := r.Get("messages")
	if !msgs.IsArray() {
		return nil, badRequest("[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required'}]")
	}
	if len(msgs.Array()) == 0 {
		return nil, badRequest("messages must not be empty")
	}
	if f := validateSampling(r, cfg); f != nil {
		return nil, f
	}

	var userText, lastText strings.Builder
	var lastUser []segment
	var images []string
	var videos [][]byte
	promptTokens := 0
	for _, m := range msgs.Array() {
		role := m.Get("role").String()
		switch role {
		case "system", "user", "assistant", "developer", "tool":
		default:
			return nil, badRequest("invalid role %q", role)
		}
		segs, err := contentSegments(m.Get("content"))
		if err != nil {
			return nil, badRequest("%s", err.Error())
		}
		for _, sg := range segs {
			switch {
			case sg.video != nil:
				videos = append(videos, sg.video)
				promptTokens += cfg.VideoTokens
			case sg.image != "":
				images = append(images, sg.image)
				promptTokens += cfg.ImageTokens
			default:
				promptTokens += len(sg.text)/4 + 1
			}
		}
		if role == "user" {
			lastUser = segs
			lastText.Reset()
			for _, sg := range segs {
				if sg.text != "" {
					userText.WriteString(sg.text)
					userText.WriteByte('\n')
					lastText.WriteString(sg.text)
					lastText.WriteByte('\n')
				}
			}
		}
	}
	if len(images) > cfg.MaxImages {
		return nil, badRequest("At most %d image(s) may be provided in one prompt.", cfg.MaxImages)
	}
	if maxVideos := max(cfg.MaxVideos, 0); len(videos) > maxVideos {
		return nil, badRequest("At most %d video(s) may be provided in one prompt.", maxVideos)
	}
	maxTokens := int(r.Get("max_completion_tokens").Int())
	if maxTokens == 0 {
		maxTokens = int(r.Get("max_tokens").Int())
	}
	if maxTokens == 0 {
		maxTokens = cfg.MaxModelLen - promptTokens
	}
	if promptTokens > cfg.MaxModelLen {
		return nil, badRequest("This model's maximum context length is %d tokens. However, your request has %d input tokens. Please reduce the length of the input messages.", cfg.MaxModelLen, promptTokens)
	}
	if promptTokens+maxTokens > cfg.MaxModelLen {
		return nil, badRequest("'max_tokens' or 'max_completion_tokens' is too large: %d. This model's maximum context length is %d tokens and your request has %d input tokens (%d > %d - %d).", maxTokens, cfg.MaxModelLen, promptTokens, maxTokens, cfg.MaxModelLen, promptTokens)
	}

	choices := constrainedChoices(r)
	wantLogprobs := r.Get("logprobs").Bool()
	topN := int(r.Get("top_logprobs").Int())
	out := malformed(ctx)

	var content string
	var lp *logprobs
	finish := "stop"
	q, cands := splitJudge(lastUser)
	if choices != nil || topN > 0 || len(cands) > 1 {
		if len(cands) > 1 {
			scores := make([]float64, len(cands))
			for i, c := range cands {
				scores[i] = round4(clamp(cfg.Score(q, c)))
			}
			b, _ := json.Marshal(map[string][]float64{"scores": scores})
			content = string(b)
		} else {
			var cand Doc
			if len(cands) == 1 {
				cand = cands[0]
			}
			p := clamp(cfg.Score(q, cand))
			yes, no := "yes", "no"
			if len(choices) >= 2 && !containsFold(choices, "yes") {
				yes, no = choices[0], choices[1]
			}
			content = no
			if p >= 0.5 {
				content = yes
			}
			if wantLogprobs {
				lp = judgeLogprobs(content, yes, no, p, topN)
			}
			if choices == nil && maxTokens <= 1 {
				finish = "length"
			}
		}
	} else if len(videos) > 0 {
		b, f := videoSegments(ctx, videos[0])
		if f != nil {
			return nil, f
		}
		content = string(b)
	} else if r.Get("response_format.json_schema.name").String() == TableSchema {
		content = tableRows(&cfg, lastText.String(), images)
	} else {
		o := s.keywords(&cfg, userText.String(), lastText.String(), images)
		b, _ := json.Marshal(o)
		content = string(b)
		if wantLogprobs {
			lp = &logprobs{Content: []tokenLogprob{{Token: "{", Logprob: -0.01, Bytes: []int{'{'}}}}
		}
	}
	// Cut at max_tokens (about 3 bytes a token), like a real model does.
	if limit := maxTokens * 3; len(content) > limit {
		content = content[:limit]
		finish = "length"
	}

	switch out {
	case OutNonJSON:
		content = "Sure! Here are some keywords for this product: " + strings.Join(Words(lastText.String()), ", ") + "."
	case OutTruncated:
		content = content[:len(content)/2]
	case OutLength:
		content = content[:len(content)/2]
		finish = "length"
	case OutPlainList:
		content = strings.Join(s.keywords(&cfg, userText.String(), lastText.String(), images).Keywords, ", ")
	case OutNoLogprobs:
		lp = nil
	}
	completion := len(content)/3 + 1
	resp := chatResponse{
		ID: s.nextID("chatcmpl-"), Object: "chat.completion", Created: 1731000000, Model: cfg.Model,
		Choices: []chatChoice{{Message: chatMsg{Role: "assistant", Content: &content}, Logprobs: lp, FinishReason: finish}},
		Usage:   usage{PromptTokens: promptTokens, CompletionTokens: completion, TotalTokens: promptTokens + completion},
	}
	switch out {
	case OutEmptyChoices:
		resp.Choices = []chatChoice{}
	case OutNullContent:
		resp.Choices[0].Message.Content = nil
	}
	return resp, nil
}

func (s *Server) nextID(prefix string) string {
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	return fmt.Sprintf("%s%016x", prefix, n)
}

// validateSampling applies vLLM's request validation for sampling fields.
func validateSampling(r gjson.Result, cfg Config) *Fault {
	if t := r.Get("temperature"); t.Exists() && t.Type != gjson.Null && t.Float() < 0 {
		return badRequest("temperature must be non-negative, got %s.", t.Raw)
	}
	if p := r.Get("top_p"); p.Exists() && p.Type != gjson.Null && (p.Float() <= 0 || p.Float() > 1) {
		return badRequest("top_p must be in (0, 1], got %s.", p.Raw)
	}
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if v := r.Get(k); v.Exists() && v.Type != gjson.Null && v.Int() < 1 {
			return badRequest("%s must be at least 1, got %s.", k, v.Raw)
		}
	}
	if n := r.Get("top_logprobs"); n.Exists() && n.Int() > 0 {
		if !r.Get("logprobs").Bool() {
			return badRequest("when using `top_logprobs`, `logprobs` must be set to true.")
		}
		if n.Int() > int64(cfg.MaxLogprobs) {
			return badRequest("Requested top_logprobs of %d, which is greater than max allowed: %d", n.Int(), cfg.MaxLogprobs)
		}
	}
	if r.Get("stream_options").Exists() && !r.Get("stream").Bool() {
		return badRequest("Stream options can only be defined when `stream=True`.")
	}
	if r.Get("stream").Bool() {
		return badRequest("modeltest: stream is not simulated")
	}
	if rf := r.Get("response_format"); rf.Exists() {
		switch rf.Get("type").String() {
		case "text", "json_object":
		case "json_schema":
			if !rf.Get("json_schema").IsObject() {
				return badRequest("When response_format type is 'json_schema', the 'json_schema' field must be provided.")
			}
			if rf.Get("json_schema.name").String() == "" {
				return badRequest("response_format.json_schema.name: Field required")
			}
		default:
			return badRequest("response_format.type: Input should be 'text', 'json_object', 'json_schema' or 'structural_tag'")
		}
	}
	kinds := 0
	for _, k := range []string{"guided_json", "guided_regex", "guided_choice", "guided_grammar"} {
		if r.Get(k).Exists() {
			kinds++
		}
	}
	if kinds > 1 {
		return badRequest("You can only use one kind of guided decoding ('guided_json', 'guided_regex' or 'guided_choice').")
	}
	if so := r.Get("structured_outputs"); so.Exists() {
		n := 0
		for _, k := range []string{"json", "regex", "choice"} {
			if so.Get(k).Exists() {
				n++
			}
		}
		if n > 1 {
			return badRequest("You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice').")
		}
		if c := so.Get("choice"); c.Exists() && (!c.IsArray() || len(c.Array()) == 0) {
			return badRequest("structured_outputs.choice must be a non-empty list of strings")
		}
	}
	return nil
}

// constrainedChoices reads a choice constraint from any server's field.
func constrainedChoices(r gjson.Result) []string {
	for _, path := range []string{"structured_outputs.choice", "guided_choice"} {
		if c := r.Get(path); c.IsArray() {
			var out []string
			for _, x := range c.Array() {
				out = append(out, x.String())
			}
			return out
		}
	}
	// SGLang regex "(yes|no)" and llama.cpp grammar `root ::= "yes" | "no"`.
	if re := r.Get("regex").String(); re != "" {
		return strings.Split(strings.Trim(re, "()^$"), "|")
	}
	if g := r.Get("grammar").String(); g != "" {
		var out []string
		for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(g, -1) {
			out = append(out, m[1])
		}
		return out
	}
	return nil
}

// splitJudge finds the query and the candidate(s) in the last user message.
func splitJudge(segs []segment) (Doc, []Doc) {
	var b strings.Builder
	for _, sg := range segs {
		if sg.image != "" {
			b.WriteString("\x00" + sg.image + "\x00")
		} else {
			b.WriteString(sg.text)
			b.WriteByte('\n')
		}
	}
	flat := b.String()
	marks := candMarker.FindAllStringIndex(flat, -1)
	if len(marks) == 0 {
		if len(segs) == 0 {
			return Doc{}, nil
		}
		return stripQuery(segmentsDoc(segs[:len(segs)-1])), []Doc{segmentsDoc(segs[len(segs)-1:])}
	}
	// Unnumbered repeated markers are not a batch: only the last one counts.
	if len(marks) > 1 && !digit.MatchString(flat[marks[0][0]:marks[0][1]]) {
		marks = marks[len(marks)-1:]
	}
	// An image right before a marker belongs to that candidate
	// ([image] "Product: …" is as common as "Product: …" [image]).
	starts := make([]int, len(marks))
	for i, m := range marks {
		starts[i] = m[0]
		for {
			head := strings.TrimRight(flat[:starts[i]], " \t\n")
			loc := trailingImage.FindStringIndex(head)
			if loc == nil {
				break
			}
			starts[i] = loc[0]
		}
	}
	query := flatDoc(flat[:starts[0]])
	var cands []Doc
	for i, m := range marks {
		end := len(flat)
		if i+1 < len(marks) {
			end = starts[i+1]
		}
		body := flat[starts[i]:m[0]] + flat[m[1]:end]
		cands = append(cands, flatDoc(body))
	}
	return stripQuery(query), cands
}

var (
	digit         = regexp.MustCompile(`\d`)
	trailingImage = regexp.MustCompile("\x00[0-9a-f]{64}\x00$")
)

func stripQuery(d Doc) Doc {
	if loc := queryMarker.FindStringIndex(d.Text); loc != nil {
		d.Text = strings.TrimSpace(d.Text[loc[1]:])
	}
	return d
}

func flatDoc(s string) Doc {
	var d Doc
	for _, m := range imageMark.FindAllStringSubmatch(s, -1) {
		d.Images = append(d.Images, m[1])
	}
	d.Text = strings.TrimSpace(imageMark.ReplaceAllString(s, " "))
	return d
}

func clamp(p float64) float64 {
	const eps = 1e-6
	return math.Min(math.Max(p, eps), 1-eps)
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// judgeLogprobs makes P(yes)=p and P(no)=1-p (up to the tiny mass of filler tokens).
func judgeLogprobs(sampled, yes, no string, p float64, topN int) *logprobs {
	top := []tokenLogprob{
		{Token: yes, Logprob: math.Log(p), Bytes: bytesOf(yes)},
		{Token: no, Logprob: math.Log(1 - p), Bytes: bytesOf(no)},
	}
	for _, t := range []string{"Yes", "No", "YES", "NO", " yes", " no", "maybe", "Maybe"} {
		if len(top) >= topN {
			break
		}
		if t != yes && t != no {
			top = append(top, tokenLogprob{Token: t, Logprob: -20 - float64(len(top)), Bytes: bytesOf(t)})
		}
	}
	sort.SliceStable(top, func(i, j int) bool { return top[i].Logprob > top[j].Logprob })
	if topN < len(top) {
		top = top[:topN]
	}
	lpSampled := math.Log(p)
	if sampled == no {
		lpSampled = math.Log(1 - p)
	}
	return &logprobs{Content: []tokenLogprob{{Token: sampled, Logprob: lpSampled, Bytes: bytesOf(sampled), TopLogprobs: top}}}
}

func bytesOf(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}
