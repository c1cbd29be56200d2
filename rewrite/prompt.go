package rewrite

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/vlproxy/vlproxy/model"
)

// PromptVersion names the prompts below. It is part of every keyword cache key:
// change it whenever a prompt or the schema changes.
const PromptVersion = "kw-2"

// attributeNames are the attributes the model is asked for.
var attributeNames = []string{"colour", "material", "style", "gender", "pattern", "season", "usage"}

type prompts struct {
	system, imageText, imageOnly, textOnly, attributes string
}

var promptsByLanguage = map[string]prompts{
	"en": {
		system: "You turn shopping queries into search keywords for an e-commerce catalogue. " +
			"Keywords are short noun phrases a product title or description would contain " +
			"(product type, colour, material, pattern, style, fit, occasion). " +
			"Never invent brands you cannot see. Reply with JSON only.",
		imageText: "The shopper sent this photo with the query: %q. " +
			"Give up to %d keyword phrases for products that match both the photo and the query, most important first.",
		imageOnly: "The shopper sent this photo. Give up to %d keyword phrases describing the product in it, most important first.",
		textOnly: "The shopper typed: %q. Give up to %d keyword phrases for products that satisfy it, most important first. " +
			"Turn needs and occasions into concrete product words.",
		attributes: " Also give the product category and the attributes you can tell (colour, material, style, gender, pattern, season, usage); leave out unknown ones.",
	},
	"zh": {
		system: "你负责把购物查询转换成电商商品目录的搜索关键词。" +
			"关键词是商品标题或描述中会出现的简短名词短语（商品类型、颜色、材质、图案、风格、版型、场合）。" +
			"不要编造看不到的品牌。只用 JSON 回答。",
		imageText: "顾客发送了这张图片和查询：%q。请给出最多 %d 个同时符合图片和查询的商品关键词短语，按重要性排序。",
		imageOnly: "顾客发送了这张图片。请给出最多 %d 个描述图中商品的关键词短语，按重要性排序。",
		textOnly:  "顾客输入：%q。请给出最多 %d 个满足该需求的商品关键词短语，按重要性排序。把需求和场合转换成具体的商品词。",
		attributes: "另外给出商品类别以及能判断出的属性（colour 颜色、material 材质、style 风格、gender 性别、pattern 图案、season 季节、usage 用途），" +
			"不确定的属性不要填写。",
	},
}

// hasCJK reports whether s contains Han, Hiragana, Katakana or Hangul characters.
func hasCJK(s string) bool {
	for _, r := range s {
		if r >= 0x2E80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
			unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)) {
			return true
		}
	}
	return false
}

// language resolves the prompt language of a clause.
func (r *Rewriter) language(c *clause) string {
	if c.Language == "en" || c.Language == "zh" {
		return c.Language
	}
	if hasCJK(c.Text) {
		return "zh"
	}
	return r.cfg.Prompt.Language
}

// chatRequest builds the keyword request for a clause.
func (r *Rewriter) chatRequest(c *clause, lang, imageURI string) *model.ChatRequest {
	p := promptsByLanguage[lang]
	n := r.cfg.MaxKeywords
	var user string
	switch {
	case imageURI != "" && c.Text != "":
		user = fmt.Sprintf(p.imageText, c.Text, n)
	case imageURI != "":
		user = fmt.Sprintf(p.imageOnly, n)
	default:
		user = fmt.Sprintf(p.textOnly, c.Text, n)
	}
	if c.Attributes {
		user += p.attributes
	}
	parts := make([]model.Part, 0, 2)
	if imageURI != "" {
		parts = append(parts, model.ImagePart(imageURI))
	}
	parts = append(parts, model.TextPart(user))
	return &model.ChatRequest{
		Messages: []model.Message{
			{Role: "system", Text: p.system},
			{Role: "user", Parts: parts},
		},
		MaxTokens:      r.cfg.MaxTokens,
		Temperature:    r.cfg.Temperature,
		TopP:           r.cfg.TopP,
		Seed:           &seed,
		ResponseFormat: responseFormat(n, c.Attributes),
	}
}

var seed int64 = 42

var (
	formatKeywords   = buildResponseFormat(false)
	formatAttributes = buildResponseFormat(true)
)

func responseFormat(n int, attrs bool) json.RawMessage {
	f := formatKeywords
	if attrs {
		f = formatAttributes
	}
	return json.RawMessage(strings.Replace(f, `"maxItems":0`, `"maxItems":`+strconv.Itoa(n), 1))
}

func buildResponseFormat(attrs bool) string {
	props := map[string]any{
		"keywords": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "maxItems": 0},
	}
	if attrs {
		ap := map[string]any{}
		for _, a := range attributeNames {
			ap[a] = map[string]any{"type": "string"}
		}
		props["category"] = map[string]any{"type": "string"}
		props["attributes"] = map[string]any{"type": "object", "properties": ap, "additionalProperties": false}
	}
	f := map[string]any{
		"type": "json_schema",
		"json_schema": map[string]any{
			"name":   "search_keywords",
			"strict": true,
			"schema": map[string]any{"type": "object", "properties": props, "required": []string{"keywords"}},
		},
	}
	b, err := json.Marshal(f) // map keys are sorted: the format is stable
	if err != nil {
		panic(err)
	}
	return string(b)
}
