// Command paygate-bench is the load benchmark of issue 2: in one run it starts a
// fake OpenAI-compatible upstream, nginx as a plain reverse proxy (the floor one
// proxy hop reaches on this machine), a bare httputil.ReverseProxy with a tuned
// transport (the Go floor), paygate's own two HTTP layers passing requests
// through with none of paygate's work (the stack floor) and paygate itself,
// each as its own process, measures
// them in rotating order and prints a Markdown report with the targets
// computed as ratios of the same run.
//
//	go run ./cmd/paygate-bench -out BENCHMARKS.md
//
// nginx is required: the command fails rather than leave the floor out
// (Debian: apt-get install -y nginx-light). paygate is required as well; the
// command builds it with `go build -o tmp/paygate ./cmd/paygate` unless
// -paygate-bin names a binary.
//
// -compare-rev REV adds a sixth column, paygate-b, built from REV and run with
// the same config, so that a change is measured against its base in one run:
// only figures inside one run compare on a shared machine. -pgo-out FILE
// writes a CPU profile of paygate under non-stream and stream load, the
// profile-guided optimisation input cmd/paygate/default.pgo is made from.
//
// The same binary re-executes itself with the hidden -child flag to run the fake
// upstream and the two floors, so that each measured proxy is a process of its own
// whose CPU time and peak memory can be read from /proc.
//
// It is a tool, not a library: it talks to paygate only as a process, over
// HTTP. Of paygate it imports the two HTTP layers the stack floor is built
// from (proxy/h1, failover/h1) and, in a test that checks the generated
// config loads, the config package. Nothing of paygate imports it.
package main
