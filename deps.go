//go:build deps

// Package main pins dependencies until the packages that use them exist.
package main
import (
 _ "github.com/valyala/fasthttp"
 _ "github.com/tidwall/gjson"
 _ "github.com/tidwall/sjson"
 _ "github.com/olivere/elastic/v7"
 _ "github.com/hashicorp/golang-lru/v2"
 _ "github.com/HdrHistogram/hdrhistogram-go"
 _ "github.com/VictoriaMetrics/metrics"
 _ "go.yaml.in/yaml/v3"
 _ "golang.org/x/image/webp"
 _ "github.com/opensearch-project/opensearch-go/v4"
)
func main(){}
