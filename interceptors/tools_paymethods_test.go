package interceptors

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestPaymentToolsOfferOnlyEnabledMethods: create_order offers only the
// pay methods the merchant activated (payments.pay_methods). With both,
// pay_method's enum is in the configured order and its description names
// the first as the default; with one, there is no pay_method parameter
// (a one-value enum is a choice that is none, which models fill from the
// user's words), and create_order's description says how the user pays
// and that the other way cannot be had, in strict mode too.
func TestPaymentToolsOfferOnlyEnabledMethods(t *testing.T) {
	for _, strict := range []bool{false, true} {
		spec := testSpec
		spec.Strict = strict

		spec.PayMethods = []string{"native", "jsapi"}
		co := gjson.ParseBytes(PaymentTools(spec)).Get("0.function")
		if got := co.Get("parameters.properties.pay_method.enum").Raw; strict && got != `["native","jsapi",null]` || !strict && got != `["native","jsapi"]` {
			t.Errorf("strict %v, native first: enum %s", strict, got)
		}
		if d := co.Get("parameters.properties.pay_method.description").String(); !strings.Contains(d, `Defaults to "native"`) {
			t.Errorf("strict %v, native first: description %q; want it to default to native", strict, d)
		}

		for m, says := range map[string]string{"jsapi": "no QR code can be offered", "native": "scanning a QR code"} {
			spec.PayMethods = []string{m}
			tools := PaymentTools(spec)
			if !gjson.ValidBytes(tools) {
				t.Fatalf("%s only: not valid JSON: %s", m, tools)
			}
			co := gjson.ParseBytes(tools).Get("0.function")
			if co.Get("parameters.properties.pay_method").Exists() {
				t.Errorf("strict %v, %s only: pay_method offered: %s", strict, m, co.Get("parameters.properties.pay_method").Raw)
			}
			if req := co.Get("parameters.required").Raw; strings.Contains(req, "pay_method") {
				t.Errorf("strict %v, %s only: required %s", strict, m, req)
			}
			d := co.Get("description").String()
			if !strings.Contains(d, says) {
				t.Errorf("strict %v, %s only: description %q; want it to say %q", strict, m, d, says)
			}
			if len(d) > 1024 {
				t.Errorf("strict %v, %s only: description of %d characters; OpenAI refused past 1024", strict, m, len(d))
			}
		}
	}
	// Unset: both, jsapi first, as before.
	if a, b := PaymentTools(testSpec), func() []byte { s := testSpec; s.PayMethods = []string{"jsapi", "native"}; return PaymentTools(s) }(); string(a) != string(b) {
		t.Errorf("unset pay methods differ from [jsapi native]:\n%s\n%s", a, b)
	}
}
