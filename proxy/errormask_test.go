package proxy

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging"
)

// TestSSEErrorMask: a forwarded stream's error events have their secrets
// masked and its comment lines are dropped, wherever the reads split the
// stream; every other event, the answer, goes on byte for byte, a secret
// it quotes included (a model may repeat what a user typed).
func TestSSEErrorMask(t *testing.T) {
	const key = "sk-provider-secret-key-123"
	const m = logging.Mask
	tests := []struct {
		name, in, want string
	}{
		{"Responses error event",
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"error\":null}}\n\n" +
				"event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_auth\",\"message\":\"auth failed for key " + key + "\"}\n\n",
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"error\":null}}\n\n" +
				"event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_auth\",\"message\":\"auth failed for key " + m + "\"}\n\n"},
		{"type error without the event name",
			"data: {\"type\":\"error\",\"message\":\"key " + key + "\"}\n\n",
			"data: {\"type\":\"error\",\"message\":\"key " + m + "\"}\n\n"},
		{"an event named error, whatever its data",
			"event:error\ndata: {\"message\":\"key " + key + "\"}\n\ndata: {\"text\":\"" + key + "\"}\n\n",
			"event:error\ndata: {\"message\":\"key " + m + "\"}\n\ndata: {\"text\":\"" + key + "\"}\n\n"},
		{"response.failed",
			"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"key " + key + "\"}}}\n\n",
			"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"key " + m + "\"}}}\n\n"},
		{"legacy completion's error object",
			"data: {\"error\":{\"message\":\"Authorization: Bearer sk-unknown-aggregator-key\"}}\n\n",
			"data: {\"error\":{\"message\":\"Authorization: Bearer " + m + "\"}}\n\n"},
		{"a choice's error, after a null one the bot reads past",
			"data: {\"choices\":[{\"index\":0,\"text\":\"\",\"error\":null,\"error\":{\"message\":\"key " + key + "\"},\"finish_reason\":\"error\"}]}\n\n",
			"data: {\"choices\":[{\"index\":0,\"text\":\"\",\"error\":null,\"error\":{\"message\":\"key " + m + "\"},\"finish_reason\":\"error\"}]}\n\n"},
		{"the second choice's error",
			"data: {\"choices\":[{\"index\":0,\"text\":\"ok\"},{\"index\":1,\"text\":\"\",\"error\":{\"message\":\"key " + key + "\"}}]}\n\n",
			"data: {\"choices\":[{\"index\":0,\"text\":\"ok\"},{\"index\":1,\"text\":\"\",\"error\":{\"message\":\"key " + m + "\"}}]}\n\n"},
		{"the first choice's error, the second's none",
			"data: {\"choices\":[{\"index\":0,\"text\":\"\",\"error\":{\"message\":\"key " + key + "\"}},{\"index\":1,\"text\":\"ok\"}]}\n\n",
			"data: {\"choices\":[{\"index\":0,\"text\":\"\",\"error\":{\"message\":\"key " + m + "\"}},{\"index\":1,\"text\":\"ok\"}]}\n\n"},
		// A choice whose error is null or false has none: its text is the
		// answer, untouched.
		{"a choice's null and false errors are none",
			"data: {\"choices\":[{\"index\":0,\"text\":\"" + key + "\",\"error\":null},{\"index\":1,\"text\":\"" + key + "\",\"error\":false}]}\n\n",
			"data: {\"choices\":[{\"index\":0,\"text\":\"" + key + "\",\"error\":null},{\"index\":1,\"text\":\"" + key + "\",\"error\":false}]}\n\n"},
		{"CRLF line ends",
			"event: error\r\ndata: {\"message\":\"key " + key + "\"}\r\n\r\ndata: {\"text\":\"" + key + "\"}\r\n\r\n",
			"event: error\r\ndata: {\"message\":\"key " + m + "\"}\r\n\r\ndata: {\"text\":\"" + key + "\"}\r\n\r\n"},
		{"CR line ends",
			"event: error\rdata: {\"message\":\"key " + key + "\"}\r\rdata: {\"text\":\"" + key + "\"}\r\r",
			"event: error\rdata: {\"message\":\"key " + m + "\"}\r\rdata: {\"text\":\"" + key + "\"}\r\r"},
		{"the answer quoting a secret",
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"you typed " + key + " error\"}\n\n",
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"you typed " + key + " error\"}\n\n"},
		{"a function named error",
			"data: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"name\":\"error\",\"arguments\":\"" + key + "\"}}\n\n",
			"data: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"name\":\"error\",\"arguments\":\"" + key + "\"}}\n\n"},
		{"comment lines dropped with their ends",
			": OPENROUTER PROCESSING\n\ndata: {\"text\":\"a: b\"}\n\n:\r\n\r\n: keep-alive\r\rdata: x\n\n",
			"\ndata: {\"text\":\"a: b\"}\n\n\r\n\rdata: x\n\n"},
		{"a comment within an error event",
			"event: error\n: note " + key + "\ndata: {\"message\":\"key " + key + "\"}\n\n",
			"event: error\ndata: {\"message\":\"key " + m + "\"}\n\n"},
		// After a bare CR the client waits for a possible LF: the mask
		// sends it in the comment's place, so that the blank line after
		// the comment still ends the event, for the client as for the
		// provider. The data line is then the next event's, not the
		// error event's, and goes on as any answer's.
		{"a comment after a bare CR, then LF",
			"event: error\r: x\n\ndata: {\"message\":\"bad key " + key + "\"}\n\n",
			"event: error\r\n\ndata: {\"message\":\"bad key " + key + "\"}\n\n"},
		{"comments after a bare CR, ended at CRLF and LF",
			"event: error\r: x\r\n: y\n\ndata: {\"message\":\"bad key " + key + "\"}\n\n",
			"event: error\r\n\ndata: {\"message\":\"bad key " + key + "\"}\n\n"},
		{"a comment after a bare CR, ended at CRLF, then LF",
			"event: error\r: x\r\n\ndata: {\"message\":\"bad key " + key + "\"}\n\n",
			"event: error\r\n\ndata: {\"message\":\"bad key " + key + "\"}\n\n"},
		{"a comment after a bare CR within an error event",
			"event: error\r: x\ndata: {\"message\":\"bad key " + key + "\"}\n\n",
			"event: error\r\ndata: {\"message\":\"bad key " + m + "\"}\n\n"},
		{"a last comment without its end",
			"data: x\n\n: bye",
			"data: x\n\n"},
		// A client joins an event's data lines with "\n" and reads the
		// error of the whole: each line of it is masked.
		{"an error member over two data lines",
			"data: {\"error\":\ndata: {\"message\":\"key " + key + "\"}}\n\ndata: {\"text\":\"" + key + "\"}\n\n",
			"data: {\"error\":\ndata: {\"message\":\"key " + m + "\"}}\n\ndata: {\"text\":\"" + key + "\"}\n\n"},
		{"type error over three data lines, an id among them, CR ends",
			"data: {\"type\":\rid: 7\rdata: \"error\",\r\ndata: \"message\":\"" + key + "\"}\r\r",
			"data: {\"type\":\rid: 7\rdata: \"error\",\r\ndata: \"message\":\"" + m + "\"}\r\r"},
		{"an answer over two data lines",
			"event: message\ndata: {\"text\":\ndata: \"" + key + " error\"}\n\ndata: [DONE]\n\n",
			"event: message\ndata: {\"text\":\ndata: \"" + key + " error\"}\n\ndata: [DONE]\n\n"},
		{"a comment between two data lines of an error",
			"data: {\"error\":\n: note\ndata: \"key " + key + "\"}\n\n",
			"data: {\"error\":\ndata: \"key " + m + "\"}\n\n"},
		{"an error over two data lines without the last blank line",
			"data: {\"error\":\ndata: \"key " + key + "\"}",
			"data: {\"error\":\ndata: \"key " + m + "\"}"},
		// The event's name may come after its data: the client names
		// the event at its blank line, and reads its data as the error.
		{"a data line before event: error",
			"data: {\"message\":\"key " + key + "\"}\nevent: error\n\ndata: {\"text\":\"" + key + "\"}\n\n",
			"data: {\"message\":\"key " + m + "\"}\nevent: error\n\ndata: {\"text\":\"" + key + "\"}\n\n"},
		{"two data lines, an id, then event:error, CRLF ends",
			"data: {\"text\":\r\nid: 7\r\ndata: \"key " + key + "\"}\r\nevent:error\r\n\r\n",
			"data: {\"text\":\r\nid: 7\r\ndata: \"key " + m + "\"}\r\nevent:error\r\n\r\n"},
		{"a data line, a comment, then event: error at the stream's end",
			"data: {\"message\":\"Bearer sk-unknown-aggregator-key\"}\r: x\nevent: error",
			"data: {\"message\":\"Bearer " + m + "\"}\r\nevent: error"},
		// An answer over several data lines goes on byte for byte.
		{"an answer's data lines: no space, empty, id and retry between, CR ends",
			"\ufeffdata:{\"text\":\rdata\rid: 7\rretry: 10\rdata:\rdata:  \"" + key + " error\"}\r\revent: message\ndata: [DONE]\n\n",
			"data:{\"text\":\rdata\rid: 7\rretry: 10\rdata:\rdata:  \"" + key + " error\"}\r\revent: message\ndata: [DONE]\n\n"},
		{"an answer's data lines, event: message after them",
			"data: {\"text\":\r\ndata: \"" + key + "\"}\r\nevent: message\r\n\r\n",
			"data: {\"text\":\r\ndata: \"" + key + "\"}\r\nevent: message\r\n\r\n"},
		// vLLM's error mid-stream: "object" says it, no "error" member.
		{"vLLM's error object",
			"data: {\"object\":\"error\",\"message\":\"key " + key + "\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}\n\n",
			"data: {\"object\":\"error\",\"message\":\"key " + m + "\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}\n\n"},
		// Go's encoding/json reads a key in another case, escaped or not,
		// as "error": go-openai takes such a member for the error.
		{"an error key in another case",
			"data: {\"ERROR\":{\"message\":\"key " + key + "\"}}\n\n",
			"data: {\"ERROR\":{\"message\":\"key " + m + "\"}}\n\n"},
		{"an error key in another case, escaped",
			"data: {\"\\u0045rror\":{\"message\":\"key " + key + "\"}}\n\n",
			"data: {\"\\u0045rror\":{\"message\":\"key " + m + "\"}}\n\n"},
		{"a last line without its end",
			"data: {\"type\":\"error\",\"message\":\"key " + key + "\"}",
			"data: {\"type\":\"error\",\"message\":\"key " + m + "\"}"},
	}
	redact := logging.NewRedactorMin([]string{key}, logging.ClientMinSecret)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Split in two reads at every offset, and one byte a read.
			for i := 0; i <= len(tc.in); i++ {
				if got := maskReads(redact, []string{tc.in[:i], tc.in[i:]}); got != tc.want {
					t.Fatalf("split at %d: got\n%q\nwant\n%q", i, got, tc.want)
				}
			}
			if got := maskReads(redact, strings.Split(tc.in, "")); got != tc.want {
				t.Fatalf("a byte a read: got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestSSEErrorMaskLongLine: a line over maxMaskedLine (an image in an
// event) is relayed as it comes rather than held whole, its configured
// secrets masked wherever the reads split them, and never split by a part
// relayed: reads here end inside a secret, and right after one.
func TestSSEErrorMaskLongLine(t *testing.T) {
	const key = "sk-provider-secret-key-123"
	redact := logging.NewRedactorMin([]string{key}, logging.ClientMinSecret)
	reads := []string{`data: {"type":"response.image_generation_call.partial_image","partial_image_b64":"` + strings.Repeat("A", maxMaskedLine)}
	rest := ""
	for j := range 3 * len(key) {
		cut := j % len(key)
		reads = append(reads, rest+strings.Repeat("A", 40)+key+strings.Repeat("A", j%(2*len(key)))+key[:cut])
		rest = key[cut:]
	}
	reads = append(reads, rest+"\"}\n\n")
	in := strings.Join(reads, "")
	want := strings.ReplaceAll(in, key, logging.Mask)
	got := maskReads(redact, reads)
	if got != want {
		t.Errorf("%d bytes out, %d secrets left; want %d bytes, none", len(got), strings.Count(got, key), len(want))
	}
	m := &sseErrorMask{redact: redact}
	if out := m.next([]byte(reads[0])); len(out) == 0 {
		t.Error("a line over maxMaskedLine was held back whole")
	}
}

// TestSSEErrorMaskLongEvent: an event of many data lines, over
// maxMaskedLine as a whole, is not held to its blank line: it is relayed
// as it comes, as a long line is, its configured secrets masked, those of
// its lines after the bound too.
func TestSSEErrorMaskLongEvent(t *testing.T) {
	const key = "sk-provider-secret-key-123"
	redact := logging.NewRedactorMin([]string{key}, logging.ClientMinSecret)
	line := "data: " + strings.Repeat("A", 1<<10) + key + "\n"
	for _, first := range []string{"", "data: {\"error\":\n"} {
		m := &sseErrorMask{redact: redact}
		var out strings.Builder
		in := first + strings.Repeat(line, maxMaskedLine/len(line)+2)
		out.Write(m.next([]byte(in)))
		if out.Len() == 0 {
			t.Fatalf("%q: an event over maxMaskedLine was held back whole", first)
		}
		out.Write(m.next([]byte(line + "\n")))
		out.Write(m.end())
		if want := strings.ReplaceAll(in+line+"\n", key, logging.Mask); out.String() != want {
			t.Errorf("%q: %d bytes out, %d secrets left; want %d bytes, none", first, out.Len(), strings.Count(out.String(), key), len(want))
		}
	}
}

// TestSSEErrorMaskLongEventAtOnce: held data lines and a line not ended
// yet, over maxMaskedLine together, are relayed at that read, not held
// on (m.out grew with each read of the line); the event's later data
// lines are then relayed at their ends, not held again.
func TestSSEErrorMaskLongEventAtOnce(t *testing.T) {
	const key = "sk-provider-secret-key-123"
	m := &sseErrorMask{redact: logging.NewRedactorMin([]string{key}, logging.ClientMinSecret)}
	if got := m.next([]byte("data: a\n")); len(got) != 0 {
		t.Fatalf("a data line was relayed before its event's end: %q", got)
	}
	long := "data: " + strings.Repeat("A", maxMaskedLine-10) // 4 short of the bound
	if got := string(m.next([]byte(long))); !strings.HasPrefix(got, "data: a\ndata: AAA") {
		t.Fatalf("held lines and a line over maxMaskedLine with them: relayed %d bytes %.20q; want them at once", len(got), got)
	}
	if got := string(m.next([]byte("\ndata: " + key + "\n"))); !strings.HasSuffix(got, "A\ndata: "+logging.Mask+"\n") {
		t.Fatalf("a data line after the event went over maxMaskedLine: relayed %q; want it at its end, masked", got)
	}
}

// TestSSEErrorMaskCutEvent: the lines of an event a stream is cut inside,
// before its blank line, are relayed (pipeUpstreamBody, sseErrorMask.cut),
// an error over several data lines masked; a line not ended is not.
func TestSSEErrorMaskCutEvent(t *testing.T) {
	const key = "sk-provider-secret-key-123"
	redact := logging.NewRedactorMin([]string{key}, logging.ClientMinSecret)
	for _, tc := range []struct{ in, want string }{
		{"data: {\"error\":\ndata: {\"message\":\"" + key + "\"}}\n", "data: {\"error\":\ndata: {\"message\":\"" + logging.Mask + "\"}}\n"},
		{"data: {\"text\":\ndata: \"" + key + "\"}\r\ndata: x", "data: {\"text\":\ndata: \"" + key + "\"}\r\n"},
		{"data: x\n\ndata: y", "data: x\n\n"},
		{"data: {\"message\":\"" + key + "\"}\nevent: error\n", "data: {\"message\":\"" + logging.Mask + "\"}\nevent: error\n"},
		{"data: {\"text\":\"" + key + "\"}\nevent: message\n", "data: {\"text\":\"" + key + "\"}\nevent: message\n"},
	} {
		for i := 0; i <= len(tc.in); i++ {
			m := &sseErrorMask{redact: redact}
			got := string(m.next([]byte(tc.in[:i])))
			got += string(m.next([]byte(tc.in[i:])))
			if got += string(m.cut()); got != tc.want {
				t.Fatalf("%q split at %d: relayed %q at the cut; want %q", tc.in, i, got, tc.want)
			}
		}
	}
}

// maskReads relays reads through an sseErrorMask as pipeUpstreamBody does.
func maskReads(redact *logging.Redactor, reads []string) string {
	m := &sseErrorMask{redact: redact}
	var out bytes.Buffer
	for _, r := range reads {
		out.Write(m.next([]byte(r)))
	}
	out.Write(m.end())
	return out.String()
}

// TestSSEErrorMaskAsClientsParse: whatever the mix of line ends, comment
// lines and events, the relayed stream, parsed as a client parses one (a
// line ends at CR, LF or CRLF; a blank line ends the event), holds no
// comment line and no secret in an error-shaped data line or in a line
// after "event: error" in its event, nor in a data line of an event the
// client names error (its last "event:" line, before or after its data).
// Random streams of such pieces, each split over random reads.
func TestSSEErrorMaskAsClientsParse(t *testing.T) {
	const key = "sk-provider-secret-key-123"
	redact := logging.NewRedactorMin([]string{key}, logging.ClientMinSecret)
	ends := []string{"\n", "\r", "\r\n"}
	lines := []string{"event: error", "event: message", ": keep-alive", ":", "data: {\"message\":\"key " + key + "\"}",
		"data: {\"type\":\"error\",\"message\":\"" + key + "\"}", "data: {\"text\":\"hi\"}", "",
		"data: {\"error\":", "data: {\"message\":\"key " + key + "\"}}", "id: 7"}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 20000 {
		var in strings.Builder
		for range 1 + rng.IntN(8) {
			in.WriteString(lines[rng.IntN(len(lines))])
			in.WriteString(ends[rng.IntN(len(ends))])
		}
		src := in.String()
		var reads []string
		for rest := src; rest != ""; {
			k := 1 + rng.IntN(len(rest))
			reads, rest = append(reads, rest[:k]), rest[k:]
		}
		out := maskReads(redact, reads)
		for _, ev := range clientEvents(out) {
			for _, l := range ev {
				if strings.HasPrefix(l, ":") {
					t.Fatalf("stream %d %q: relayed %q holds the comment line %q", n, src, out, l)
				}
			}
			named := false // the event's last "event:" line, which names it, names error
			for _, l := range ev {
				if strings.HasPrefix(l, "event:") {
					named = l == "event: error"
				}
			}
			for _, l := range ev {
				if strings.Contains(l, key) && (named && strings.HasPrefix(l, "data:") || strings.Contains(l, `"type":"error"`)) {
					t.Fatalf("stream %d %q: relayed %q: the client reads an error event whose line %q holds the secret", n, src, out, l)
				}
			}
			// The event's data, joined as a client joins it.
			var data []string
			for _, l := range ev {
				if v, ok := strings.CutPrefix(l, "data: "); ok {
					data = append(data, v)
				}
			}
			if joined := strings.Join(data, "\n"); len(data) > 1 && strings.Contains(joined, key) && gjson.Valid(joined) && gjson.Get(joined, "error").IsObject() {
				t.Fatalf("stream %d %q: relayed %q: the client reads the error %q, the secret in it", n, src, out, joined)
			}
		}
	}
}

// clientEvents parses an event stream as a client does: lines end at CR,
// LF or CRLF, and a blank line ends an event. An event is its lines.
func clientEvents(s string) [][]string {
	var evs [][]string
	var cur []string
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			cur = append(cur, s)
			break
		}
		line := s[:i]
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
		if line == "" {
			evs, cur = append(evs, cur), nil
			continue
		}
		cur = append(cur, line)
	}
	return append(evs, cur)
}

// TestSSEErrorMaskKeepsEvents: dropping a forwarded stream's comment lines
// changes none of its events as a client parses them (a line ends at CR,
// LF or CRLF; a blank line ends an event): the relayed stream holds the
// provider's events, their lines and their ends, whatever the mix of line
// ends and wherever the reads split it. A comment after a line ended by a
// bare CR, then a blank line ended by LF: dropped with nothing in its
// place, the client read the CR and that LF as one CRLF, so the event did
// not end there; the provider's next event was read as part of it, or,
// at the stream's end, the event (a Response's response.completed) was
// never dispatched.
func TestSSEErrorMaskKeepsEvents(t *testing.T) {
	redact := logging.NewRedactorMin([]string{"sk-provider-secret-key-123"}, logging.ClientMinSecret)
	ends := []string{"\n", "\r", "\r\n"}
	lines := []string{"event: response.completed", "event: error", "id: 7", ": keep-alive", ":",
		`data: {"type":"response.completed"}`, `data: {"text":"hi"}`, ""}
	// events is what a client dispatches from s: its events ended by a
	// blank line (clientEvents' last is the lines after the last one),
	// their lines without comment lines, events left with none dropped.
	events := func(s string) [][]string {
		var out [][]string
		evs := clientEvents(s)
		for _, ev := range evs[:len(evs)-1] {
			var kept []string
			for _, l := range ev {
				if !strings.HasPrefix(l, ":") {
					kept = append(kept, l)
				}
			}
			if len(kept) > 0 {
				out = append(out, kept)
			}
		}
		return out
	}
	check := func(src string, reads []string) {
		t.Helper()
		out := maskReads(redact, reads)
		if got, want := events(out), events(src); !slices.EqualFunc(got, want, slices.Equal[[]string]) {
			t.Fatalf("stream %q relayed as %q: the client reads the events\n%q\nwant\n%q", src, out, got, want)
		}
	}
	// The stream ends right after the event: the client must still
	// dispatch it.
	check("data: {\"type\":\"response.completed\"}\r: keep-alive\n\n", []string{"data: {\"type\":\"response.completed\"}\r: keep-alive\n\n"})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var in strings.Builder
		for range 1 + rng.IntN(8) {
			in.WriteString(lines[rng.IntN(len(lines))])
			in.WriteString(ends[rng.IntN(len(ends))])
		}
		src := in.String()
		var reads []string
		for rest := src; rest != ""; {
			k := 1 + rng.IntN(len(rest))
			reads, rest = append(reads, rest[:k]), rest[k:]
		}
		check(src, reads)
	}
}
