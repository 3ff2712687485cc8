package main

import (
	"bufio"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestStreamFinalChunkOrderIsTheOrdersAPIs: the order_created action a
// streaming client reads on the chunk that carries the final finish_reason
// (SPEC 2.3) holds the same order object, member for member, as GET
// /v1/paygate/orders/{no} read after it, and request_payment parameters for
// the same prepay_id that wx.requestPayment takes: appId the client's app,
// timeStamp a string of the Unix seconds, nonceStr of at most 32
// characters, signType RSA, and paySign WeChat Pay verifies with the
// merchant's public key over "appId\ntimeStamp\nnonceStr\npackage\n". The
// API's are signed afresh (another nonce), the order and its package the
// same. TestOrderObjectSameOnEverySurface holds the non-stream answer to
// this; nothing held the stream's.
func TestStreamFinalChunkOrderIsTheOrdersAPIs(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, a := paymentApp(t, up.URL, "")
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"premium please"}]}`)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var final gjson.Result
	carriers := 0
	for sc.Scan() {
		l, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || l == "[DONE]" {
			continue
		}
		c := gjson.Parse(l)
		if c.Get("paygate").Exists() {
			carriers++
			final = c
		}
	}
	if carriers != 1 || final.Get("choices.0.finish_reason").Str != "stop" {
		t.Fatalf("%d chunks carry paygate, the last %s; want one, the final finish_reason's", carriers, final.Raw)
	}
	act := final.Get("paygate.actions.0")
	no := act.Get("order.order_no").Str
	if act.Get("type").Str != "order_created" || no == "" {
		t.Fatalf("action %s; want order_created", act.Raw)
	}
	status, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, testOpenID)
	if status != http.StatusOK {
		t.Fatalf("GET order: %d %s", status, one.Raw)
	}
	for _, k := range orderMembers {
		if got, want := act.Get("order."+k), one.Get(k); !got.Exists() || got.Raw != want.Raw {
			t.Errorf("order.%s in the stream %s; the orders API says %s", k, got.Raw, want.Raw)
		}
	}
	for _, c := range []struct {
		where string
		rp    gjson.Result
	}{{"stream", act.Get("request_payment")}, {"GET", one.Get("request_payment")}} {
		rp := c.rp
		ts, err := strconv.ParseInt(rp.Get("timeStamp").Str, 10, 64)
		if rp.Get("timeStamp").Type != gjson.String || err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
			t.Errorf("%s: timeStamp %s; want a string of the Unix seconds now", c.where, rp.Get("timeStamp").Raw)
		}
		if n := len(rp.Get("nonceStr").Str); n == 0 || n > 32 {
			t.Errorf("%s: nonceStr %q; want 1 to 32 characters", c.where, rp.Get("nonceStr").Str)
		}
		if rp.Get("appId").Str != a.sim.AppID() || rp.Get("signType").Str != "RSA" || rp.Get("package").Str != act.Get("request_payment.package").Str ||
			!strings.HasPrefix(rp.Get("package").Str, "prepay_id=wx") {
			t.Errorf("%s: request_payment %s; want app %s, RSA and the stream's package", c.where, rp.Raw, a.sim.AppID())
		}
		msg := rp.Get("appId").Str + "\n" + rp.Get("timeStamp").Str + "\n" + rp.Get("nonceStr").Str + "\n" + rp.Get("package").Str + "\n"
		sig, err := base64.StdEncoding.DecodeString(rp.Get("paySign").Str)
		sum := sha256.Sum256([]byte(msg))
		if err != nil || rsa.VerifyPKCS1v15(&a.sim.Keys().MerchantKey.PublicKey, crypto.SHA256, sum[:], sig) != nil {
			t.Errorf("%s: paySign does not verify with the merchant's public key over %q", c.where, msg)
		}
		if one.Get("code_url").Exists() || act.Get("code_url").Exists() {
			t.Errorf("a jsapi order carries a code_url: %s / %s", act.Raw, one.Raw)
		}
	}
}
