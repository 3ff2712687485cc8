package audit

import (
	"testing"
)

func TestCanonicalizeJSON(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "keys sorted, whitespace dropped", in: `{ "b": 1, "a": [ true, null, "x" ] }`, want: `{"a":[true,null,"x"],"b":1}`},
		{name: "nested objects sorted", in: `{"z":{"y":1,"x":2},"a":{}}`, want: `{"a":{},"z":{"x":2,"y":1}}`},
		{name: "whole numbers as integers", in: `[1.0, 1e2, -0.0, 9007199254740993]`, want: `[1,100,0,9007199254740993]`},
		{name: "integers beyond 64 bits kept exactly", in: `[18446744073709551617, -18446744073709551617, 12345678901234567000, 1e19]`,
			want: `[18446744073709551617,-18446744073709551617,12345678901234567000,10000000000000000000]`},
		{name: "fractions shortest round trip", in: `[0.1, 0.70, 1.5e-7, 1e21, 3.14159]`, want: `[0.1,0.7,1.5e-7,1e+21,3.14159]`},
		{name: "no HTML escaping", in: `{"s":"<a href='x'>&</a>"}`, want: `{"s":"<a href='x'>&</a>"}`},
		{name: "unicode kept, controls escaped", in: `{"s":"支付成功\u0001\n"}`, want: `{"s":"支付成功\u0001\n"}`},
		{name: "escaped solidus and unicode escapes normalised", in: `{"s":"a\/b\u00e9"}`, want: `{"s":"a/bé"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CanonicalizeJSON([]byte(c.in))
			if err != nil {
				t.Fatalf("canonicalize: %v", err)
			}
			if string(got) != c.want {
				t.Errorf("got %s; want %s", got, c.want)
			}
			again, err := CanonicalizeJSON(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %s -> %s (%v)", got, again, err)
			}
		})
	}
}

func TestCanonicalizeJSONRejects(t *testing.T) {
	cases := []struct{ name, in string }{
		{name: "trailing data", in: `{} {}`},
		{name: "not json", in: `{"a":`},
		{name: "number out of range", in: `[1e400]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, err := CanonicalizeJSON([]byte(c.in)); err == nil {
				t.Errorf("got %s, nil; want an error", got)
			}
		})
	}
}

func FuzzCanonicalIdempotent(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1.5,"x",null]}`, `"\u2028"`, `[1e-7,123456789012345678]`, `{"":{"":0}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		once, err := CanonicalizeJSON(in)
		if err != nil {
			return
		}
		twice, err := CanonicalizeJSON(once)
		if err != nil || string(twice) != string(once) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, once, twice, err)
		}
	})
}
