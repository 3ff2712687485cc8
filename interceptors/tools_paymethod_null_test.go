package interceptors

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestPaymentToolsStrictPayMethodSaysWhatNullDoes: in strict mode every
// property is sent, so create_order's pay_method is never left out: a
// model that does not choose a method sends null. paygate reads null as
// it reads a left-out pay_method (the purchase's open order keeps its
// method), so the description says so of null too. It said only "left
// out" keeps the open order and, after it, "Null means the default"
// (jsapi): a strict-mode model sending null for a user who asked to pay
// inside WeChat after a QR code expected a JSAPI order and was handed the
// QR order again.
func TestPaymentToolsStrictPayMethodSaysWhatNullDoes(t *testing.T) {
	spec := testSpec
	spec.Strict = true
	d := gjson.GetBytes(PaymentTools(spec), `0.function.parameters.properties.pay_method.description`).String()
	own := strings.TrimSuffix(d, " Null means the default.")
	if own == d {
		t.Fatalf("pay_method description %q lacks strict mode's note on null", d)
	}
	if !strings.Contains(strings.ToLower(own), "null") || !strings.Contains(own, "keeps") {
		t.Errorf("pay_method description %q does not say that null keeps the open order's method", d)
	}
}
