package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// TestExtraArgumentNamesLoggedWithoutNumbers: an argument outside the
// schema is logged by its name, which is the model's words and may quote
// the user: a name such as "my phone is 13800138000" put the user's phone
// number in the log (a card or ID number the same), typed in full-width
// digits or Chinese numerals as often as not. A run of four or more digits
// of any of these in a logged name is masked; the names a model gives of itself
// (amount_fen, price2) are logged as they are.
func TestExtraArgumentNamesLoggedWithoutNumbers(t *testing.T) {
	var buf bytes.Buffer
	tools := &Tools{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	tools.ignoreExtra(context.Background(), "create_order",
		`{"sku":"a","amount_fen":1,"price2":1,"my phone is 13800138000":1,"卡号6222020200112233445":1,"电话１３８００１３８０００":1,"手机一三八〇〇一三八〇〇〇":1,"一个":1}`, map[string]bool{"sku": true})
	var rec struct {
		Fields string `json:"fields"`
		Count  int    `json:"count"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if regexp.MustCompile(`[0-9０-９〇一二三四五六七八九零]{4}`).MatchString(rec.Fields) {
		t.Errorf("the line names %q: the user's numbers in the log", rec.Fields)
	}
	if !strings.HasPrefix(rec.Fields, "amount_fen,price2,") || !strings.HasSuffix(rec.Fields, ",一个") || rec.Count != 7 {
		t.Errorf("the line %s; want amount_fen, price2 and 一个 named as they are, count 7", buf.String())
	}
}
