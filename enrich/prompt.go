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
