package modeltest

import (
	"encoding/json"
	"strconv"
	"strings"
)

// TableSchema is the json_schema name of vlproxy's table extraction requests.
const TableSchema = "vlproxy_table_rows"

// TableRow is one row of a table answer.
type TableRow struct {
	Item       string            `json:"item" yaml:"item"`
	Attributes map[string]string `json:"attributes,omitempty" yaml:"attributes"`
	Quantity   float64           `json:"quantity,omitempty" yaml:"quantity"`
	Price      float64           `json:"price,omitempty" yaml:"price"`
}

var tableColumns = map[string]string{
	"item": "item", "name": "item", "product": "item", "description": "item",
	"colour": "colour", "color": "colour", "size": "size", "brand": "brand",
	"qty": "quantity", "quantity": "quantity", "price": "price",
}

// tableRows answers a table request, {"rows":[…]}: the rows of Config.Images
// for each image, then rows read from the text, where lines of cells
// separated by " | " follow a header line naming an item column.
func tableRows(cfg *Config, text string, images []string) string {
	rows := []TableRow{}
	for _, h := range images {
		rows = append(rows, cfg.Images[h].Rows...)
	}
	var cols []string
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 2 {
			continue
		}
		head := make([]string, len(cells))
		isHead := false
		for i, c := range cells {
			head[i] = tableColumns[strings.ToLower(strings.TrimSpace(c))]
			isHead = isHead || head[i] == "item"
		}
		if isHead {
			cols = head
			continue
		}
		if cols == nil {
			continue
		}
		var r TableRow
		for i, c := range cells {
			if i >= len(cols) {
				break
			}
			c = strings.TrimSpace(c)
			switch cols[i] {
			case "item":
				r.Item = c
			case "colour", "size", "brand":
				if r.Attributes == nil {
					r.Attributes = map[string]string{}
				}
				r.Attributes[cols[i]] = c
			case "quantity":
				r.Quantity, _ = strconv.ParseFloat(c, 64)
			case "price":
				r.Price, _ = strconv.ParseFloat(strings.TrimLeft(c, "$€£¥"), 64)
			}
		}
		if r.Item != "" {
			rows = append(rows, r)
		}
	}
	b, _ := json.Marshal(map[string][]TableRow{"rows": rows})
	return string(b)
}
