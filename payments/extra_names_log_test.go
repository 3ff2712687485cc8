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
// number in the log (a card or ID number the same). A run of four or more
// digits in a logged name is masked; the names a model gives of itself
// (amount_fen, price2) are logged as they are.
func TestExtraArgumentNamesLoggedWithoutNumbers(t *testing.T) {
	var buf bytes.Buffer
	tools := &Tools{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	tools.ignoreExtra(context.Background(), "create_order",
		`{"sku":"a","amount_fen":1,"price2":1,"my phone is 13800138000":1,"卡号6222020200112233445":1}`, map[string]bool{"sku": true})
	var rec struct {
		Fields string `json:"fields"`
		Count  int    `json:"count"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if regexp.MustCompile(`[0-9]{4}`).MatchString(rec.Fields) {
		t.Errorf("the line names %q: the user's numbers in the log", rec.Fields)
	}
	if !strings.HasPrefix(rec.Fields, "amount_fen,price2,") || rec.Count != 4 {
		t.Errorf("the line %s; want amount_fen and price2 named as they are, count 4", buf.String())
	}
}
