package enrich

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/vlproxy/vlproxy/model"
)

// PromptVersion names the catalogue prompt; record it with enriched indices.
const PromptVersion = "enrich-1"

const system = "You describe product photos for an e-commerce search index. Reply with JSON only."

const user = "Describe the product in this photo with up to %d short keyword phrases a shopper might search for " +
	"(product type, colour, material, pattern, style, occasion), most important first. " +
	"Also give its category and the attributes you can tell (colour, material, pattern, style, gender, season, usage)."

var responseFormat = json.RawMessage(`{"type":"json_schema","json_schema":{"name":"catalogue_keywords","strict":true,"schema":{"type":"object","properties":{"keywords":{"type":"array","items":{"type":"string"}},"category":{"type":"string"},"attributes":{"type":"object","properties":{"colour":{"type":"string"},"material":{"type":"string"},"pattern":{"type":"string"},"style":{"type":"string"},"gender":{"type":"string"},"season":{"type":"string"},"usage":{"type":"string"}}}},"required":["keywords"]}}}`)

var seed int64 = 42

func chatRequest(jpg []byte, maxKeywords int) *model.ChatRequest {
	uri := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpg)
	return &model.ChatRequest{
		Messages: []model.Message{
			{Role: "system", Text: system},
			{Role: "user", Parts: []model.Part{model.ImagePart(uri), model.TextPart(fmt.Sprintf(user, maxKeywords))}},
		},
		MaxTokens:      256,
		Temperature:    0.2,
		TopP:           0.8,
		Seed:           &seed,
		ResponseFormat: responseFormat,
	}
}

// videoMaxSegments caps the segments asked for and kept per video.
const videoMaxSegments = 32

const videoSystem = "You index product videos for an e-commerce search index. Reply with JSON only."

const videoUser = "This product video lasts %.1f seconds. Split it into at most %d consecutive segments, " +
	"starting a new one wherever what is shown changes (the product, a pose or action of the model, a colour, a close-up). " +
	"For each segment give start and end in seconds from the beginning of the video, a short description of what is seen, " +
	"and up to 5 keyword phrases a shopper might search for."

var videoResponseFormat = json.RawMessage(`{"type":"json_schema","json_schema":{"name":"vlproxy_video_segments","strict":true,"schema":{"type":"object","properties":{"segments":{"type":"array","items":{"type":"object","properties":{"start":{"type":"number"},"end":{"type":"number"},"description":{"type":"string"},"keywords":{"type":"array","items":{"type":"string"}}},"required":["start","end","description"]}}},"required":["segments"]}}}`)

// videoRequest asks for the time-coded segments of one clip (a data:video/mp4 URI).
func videoRequest(uri string, seconds float64) *model.ChatRequest {
	return &model.ChatRequest{
		Messages: []model.Message{
			{Role: "system", Text: videoSystem},
			{Role: "user", Parts: []model.Part{model.VideoPart(uri), model.TextPart(fmt.Sprintf(videoUser, seconds, videoMaxSegments))}},
		},
		MaxTokens:      1536,
		Temperature:    0.2,
		TopP:           0.8,
		Seed:           &seed,
		ResponseFormat: videoResponseFormat,
	}
}
