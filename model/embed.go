package model

import (
	"context"
	"fmt"
	"math"
)

// Embedding request forms (reference/model-servers.md §3.1).
const (
	// EmbedFormInput sends {"input":[…]}: text, or image data URIs for servers that take them
	// there (infinity, llama.cpp, the project's EfficientNet server).
	EmbedFormInput = "input"
	// EmbedFormMessages sends vLLM's chat form {"messages":[…]}, one conversation per vector,
	// for multimodal embedding models (Qwen3-VL-Embedding, CLIP, SigLIP).
	EmbedFormMessages = "messages"
)

// EmbedConfig shapes the calls of an embed client.
type EmbedConfig struct {
	// Form is EmbedFormInput or EmbedFormMessages. Default "messages" for api vllm, else "input".
	Form string `yaml:"form"`
	// Dimensions, when > 0, truncates every vector to its first Dimensions components before
	// normalising (Matryoshka models keep their quality when cut). Default 0: as served.
	Dimensions int `yaml:"dimensions"`
	// Instruction is the system message of the messages form. Default "Represent the user's input."
	// (Qwen3-VL-Embedding's own default); "-" sends no system message.
	Instruction string `yaml:"instruction"`
	// Text says the model embeds text into the same space as images (it has a text tower).
	// Default false: text goes to the lexical side only.
	Text bool `yaml:"text"`
}

// EmbedInput is one thing to embed: an image (data URI), a text, or both (one vector for the
// pair, in the messages form).
type EmbedInput struct {
	Text  string
	Image string
}

// EmbedInfo is what the caller learns about an embed client.
func (c *Client) EmbedInfo() EmbedConfig { return c.embedConfig() }

func (c *Client) embedConfig() EmbedConfig {
	e := c.cfg.Embed
	if e.Form == "" {
		e.Form = EmbedFormInput
		if c.cfg.API == APIVLLM {
			e.Form = EmbedFormMessages
		}
	}
	if e.Instruction == "" {
		e.Instruction = "Represent the user's input."
	}
	return e
}

// EmbedOne returns the L2-normalised (and, with Dimensions, truncated) vector of one input,
// through the same breaker, limiter, deadline and health as every call of the client.
func (c *Client) EmbedOne(ctx context.Context, in EmbedInput) ([]float32, error) {
	if c.role != RoleEmbed {
		return nil, &Error{Kind: KindBadRequest, Message: "cannot embed: this client's role is " + c.role}
	}
	if in.Text == "" && in.Image == "" {
		return nil, &Error{Kind: KindBadRequest, Message: "cannot embed: the input has neither text nor image"}
	}
	e := c.embedConfig()
	bp := c.getBuf()
	defer c.putBuf(bp)
	body, err := appendEmbedBody((*bp)[:0], cmp("", c.cfg.Model), e, in)
	if err != nil {
		return nil, err
	}
	*bp = body
	var vec []float32
	var tokens int
	err = c.call(ctx, body, func(b []byte) error {
		vs, _, t, err := decodeEmbeddings(b, 1)
		if err != nil {
			return err
		}
		vec, tokens = vs[0], t
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.met.promptTokens.Add(float64(tokens))
	return Normalize(vec, e.Dimensions)
}

// AppendEmbedBody appends the JSON body EmbedOne would send (for tests and debugging).
func (c *Client) AppendEmbedBody(dst []byte, in EmbedInput) ([]byte, error) {
	return appendEmbedBody(dst, c.cfg.Model, c.embedConfig(), in)
}

func appendEmbedBody(dst []byte, modelName string, e EmbedConfig, in EmbedInput) ([]byte, error) {
	dst = append(dst, '{')
	if modelName != "" {
		dst = append(dst, `"model":`...)
		dst = appendString(dst, modelName)
		dst = append(dst, ',')
	}
	switch e.Form {
	case EmbedFormMessages:
		var msgs []Message
		if e.Instruction != "-" {
			msgs = append(msgs, Message{Role: "system", Parts: []Part{TextPart(e.Instruction)}})
		}
		var parts []Part
		if in.Image != "" {
			parts = append(parts, ImagePart(in.Image))
		}
		if in.Text != "" {
			parts = append(parts, TextPart(in.Text))
		}
		msgs = append(msgs, Message{Role: "user", Parts: parts})
		dst = append(dst, `"messages":`...)
		dst = appendMessages(dst, msgs)
	case EmbedFormInput:
		if in.Image != "" && in.Text != "" {
			return nil, &Error{Kind: KindBadRequest, Message: "cannot embed an image and a text as one vector in the input form (use the messages form)"}
		}
		dst = append(dst, `"input":[`...)
		if in.Image != "" {
			dst = appendString(dst, in.Image)
		} else {
			dst = appendString(dst, in.Text)
		}
		dst = append(dst, ']')
	default:
		return nil, &Error{Kind: KindBadRequest, Message: fmt.Sprintf("cannot embed: unknown embed form %q (want input or messages)", e.Form)}
	}
	return append(dst, `,"encoding_format":"float"}`...), nil
}

// Normalize truncates v to dims components (dims ≤ 0 or ≥ len(v): all) and scales it to unit
// L2 norm, in place. A zero or non-finite vector is an error: it has no direction to search.
func Normalize(v []float32, dims int) ([]float32, error) {
	if dims > 0 && dims < len(v) {
		v = v[:dims]
	}
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return nil, badOutput("cannot use the embedding: its norm is %g", math.Sqrt(n))
	}
	inv := 1 / math.Sqrt(n)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return v, nil
}
