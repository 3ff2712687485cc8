#!/usr/bin/env bash
# The test command (README): everything the tests need, then vet and the race
# tests. Missing tools are installed or the run fails loudly; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s (%s)\n' "$*" "$(date -u +%T)"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# apt_install installs Debian packages: as root directly, else through sudo
# (a developer's machine); without either it says what to install.
apt_install() {
  command -v apt-get >/dev/null || die "$* missing and no apt-get to install it"
  local as=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "$* missing: install it (apt-get install $*), or run as root"
    as=(sudo)
  fi
  if [ -z "${_apt_updated:-}" ]; then "${as[@]}" apt-get update -qq >/dev/null; _apt_updated=1; fi
  "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v go >/dev/null || die "go is required (Go 1.26)"
# -trimpath for every go command here: without it the build cache keys each
# package of this module by its directory, so CI's fresh clone in a folder
# of its own compiled every one of them again (vet, -race, the tests without
# it, each fuzz target's package). With it a package an earlier run compiled
# at another path (CI's last run on this machine) is reused when its sources
# are the same. The tests' own go builds set GOFLAGS themselves.
export GOFLAGS="-trimpath${GOFLAGS:+ $GOFLAGS}"

# Redis: reuse 127.0.0.1:6379 when it answers, else start a private one there.
# redis-server and redis-cli are also needed by the store tests (a private
# server stopped mid-test, a three-node cluster).
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  say "installing redis-server"
  apt_install redis-server redis-tools
fi
if [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" != "PONG" ]; then
  say "starting a private redis-server on 127.0.0.1:6379"
  rdir=$(mktemp -d)
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$rdir" --logfile "$rdir/redis.log"
  for _ in $(seq 1 50); do
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" = "PONG" ] && break
    sleep 0.1
  done
  [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" = "PONG" ] || die "redis did not start (see $rdir/redis.log)"
fi

# nginx for the load benchmark's tests (cmd/paygate-bench checks its generated
# nginx.conf with nginx -t; the benchmark itself refuses to run without nginx)
# and for cmd/paygate's TestFront* (paygate behind nginx, README's config),
# which fail without it.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  say "installing nginx-light (the load benchmark's tests, paygate behind nginx)"
  apt_install nginx-light
fi

# squid for the tests of paygate behind an egress proxy (internal/squidtest:
# cmd/paygate's egress_proxy_*_test.go, payments/webhook's and
# payments/wechatpay's proxy_refusal_test.go), which fail without it.
if ! command -v squid >/dev/null && [ ! -x /usr/sbin/squid ]; then
  say "installing squid (paygate behind an egress proxy)"
  apt_install squid
fi

# The Node SDKs (openai, the Vercel AI SDK, LangChain.js) for the real-client tests.
command -v node >/dev/null && command -v npm >/dev/null || { say "installing nodejs"; apt_install nodejs npm; }
# The AI SDK 7 and LangChain.js 1.6 ask for Node 22 and are tested here on
# 20; Debian bookworm's own nodejs is 18, on which they are untested.
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node $(node --version) is too old for test/node's SDKs: install Node 20 or newer (NodeSource's nodejs package)"
say "installing the Node SDKs (test/node: openai, the Vercel AI SDK, LangChain.js)"
npm ci --prefix test/node --no-audit --no-fund --loglevel=error >/dev/null

# Headless Chromium for the admin console's browser test
# (cmd/paygate/console_e2e_test.go drives /usr/bin/chromium with chromedp).
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (the console's browser test)"
  apt_install chromium
fi

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/node/*'))
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
say "go vet"
go vet ./...
say "go test -race"
# Three packages at a time, not GOMAXPROCS's two: on two cores the run
# used 1.3 of them (the end-to-end packages wait on child processes,
# Redis servers, a browser). cmd/paygate alone ran 706 s on the slowest
# host seen, minutes after every other package had ended: it runs as a go
# test of its own beside the rest (three at a time), and the steps after
# -race (the tests without it, the fuzzing) run in that tail, not after
# it. Its job has a process group of its own (set -m), ended with the
# script however that ends. Its timeout is 17m, not 15m: 706 s was 78% of
# 15m, with nothing beside it in its last minutes, and 17m still ends it
# (with every goroutine's stack) inside CI's 20 minutes when the steps before
# it take less than 3. The rest went from two packages at a time to three
# when it became the longer of the two runs: 15 minutes of a 17m16s CI run
# at 8f48e4b3, cmd/paygate done 3.5 minutes before it, 1.37 CPUs busy on
# average over the whole run.
mod=$(go list -m)
others=$(go list ./... | grep -vx "$mod/cmd/paygate")
# The longest packages first: go test starts them in the order given. In
# import-path order the two longest, proxy and store/redis (314 s and 282 s
# under -race beside two other jobs), started 434 s and 491 s into a 774 s
# run and ended it: 1960 s of package time at -p 3, whose floor is 653 s.
# A package named here that is gone is left out; one not named runs after
# these.
slow_first="proxy store/redis payments deploy payments/webhook payments/audit failover store/embedded store/storetest"
first=$(for p in $slow_first; do grep -x "$mod/$p" <<<"$others" || true; done)
others="$first
$(grep -vxF "$first" <<<"$others" || true)"
# Both go commands would compile the packages they share under -race side
# by side on a cold build cache: built once here first (the libraries only,
# 3 s on a warm cache; linking the two commands took 13 s more).
go build -race $(go list -f '{{if ne .Name "main"}}{{.ImportPath}}{{end}}' ./...)
set -m
CI=${CI:-true} go test -race -count=1 -timeout 17m ./cmd/paygate &
paygate_pid=$!
set +m
trap 'kill -- -"$paygate_pid" 2>/dev/null || true' EXIT
# wait_paygate waits for cmd/paygate's run; a failure of it ends the script.
wait_paygate() {
  local rc=0
  wait "$paygate_pid" || rc=$?
  trap - EXIT
  [ "$rc" = 0 ] || die "go test -race ./cmd/paygate failed (exit $rc)"
}
rc=0
CI=${CI:-true} go test -race -count=1 -p 3 -timeout 15m $others || rc=$?
if [ "$rc" != 0 ]; then
  wait_paygate # its failures are printed too, as the one go test printed them
  die "go test -race failed (exit $rc)"
fi
# Tests that skip themselves under the race detector (allocation counts: its
# sync.Pool drops items at random) run here without it, or CI never runs them.
say "go test (packages with tests skipped under -race)"
# grep finding none exits 1, which pipefail and set -e would make a silent
# exit of the whole script: the die below is what says why.
norace=$({ grep -rl --include='*_test.go' 'if raceEnabled' . || true; } | xargs -r -n1 dirname | sort -u)
[ -n "$norace" ] || die "no test skips under -race any more: drop this step"
CI=${CI:-true} go test -count=1 -timeout 5m $norace
# Bounded fuzzing. The output is kept quiet on success and printed whole on
# failure, with the failing input the fuzzer wrote under testdata/fuzz, so a
# CI log is enough to reproduce it with `go test -run FuzzX/<name>`.
#
# Go's fuzzing engine has two known spurious failures (golang/go#51484: a bare
# "context deadline exceeded" when -fuzztime ends mid-exec; golang/go#56238: a
# worker reported hung on a loaded machine). A real finding is an input that
# fails when run again on its own, so that is what decides: the written input
# is replayed, and the seed corpus is replayed when none was written.
fuzz() {
  local name=$1 pkg=$2 log inputs f
  log=$(mktemp)
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime 10s "$pkg" >"$log" 2>&1; then
    rm -f "$log"; return
  fi
  grep -v '^fuzz: elapsed' "$log" >&2 || true
  inputs=$(git ls-files --others --exclude-standard -- "$pkg/testdata/fuzz/$name")
  for f in $inputs; do
    printf -- '--- input %s:\n' "$f" >&2; cat "$f" >&2
    if ! go test -count=1 -run "^${name}\$/^$(basename "$f")\$" "$pkg" >&2; then
      die "fuzzing $name in $pkg found a failing input: $f"
    fi
    printf 'test.sh: %s passes when replayed: a fuzzing-engine flake (golang/go#56238)\n' "$f" >&2
    rm -f "$f"
  done
  if [ -z "$inputs" ]; then
    grep -q 'context deadline exceeded' "$log" || die "fuzzing $name in $pkg failed without writing an input"
    go test -count=1 -run "^${name}\$" "$pkg" >&2 || die "the seed corpus of $name fails"
    printf 'test.sh: %s ended with a bare deadline error and no input: a fuzzing-engine flake (golang/go#51484)\n' "$name" >&2
  fi
  rm -f "$log"
}
say "fuzz (bounded)"
fuzz FuzzReaderChunking ./sse
fuzz FuzzCaptureChunking ./interceptors
fuzz FuzzCaptureArbitraryChunks ./interceptors
fuzz FuzzReadChat ./interceptors
fuzz FuzzRewriteChatUsesWhatReadChatFound ./interceptors
fuzz FuzzReadAnswer ./interceptors
# Differential fuzzers of the fast readers: each holds one to the full walk it
# stands in for (the answer's spans, the request validator's messages check,
# the capture's per-event call path and text path, the SSE reader to a plain
# reading of the standard, the plain-head readers and the server's Host,
# framing and obs-fold scanner to net/http), where a divergence is a wrong
# read.
fuzz FuzzScanAnswer ./failover
fuzz FuzzValidMembersCheck ./internal/jsonscan
# The body validator and its member walk against encoding/json, a Go-based
# provider's or bot's parser (FuzzValid holds them to gjson); the turn's
# tool-calls search against a plain reading of a key spelled with escapes.
fuzz FuzzValidAsGo ./internal/jsonscan
fuzz FuzzFinderInKey ./internal/jsonscan
fuzz FuzzCallPathMatchesSlowPath ./interceptors
fuzz FuzzTextPathMatchesSlowPath ./interceptors
fuzz FuzzReaderAsSpecSays ./sse
fuzz FuzzReadRequest ./internal/httpwire
fuzz FuzzReadResponse ./internal/httpwire
fuzz FuzzHostLine ./internal/httpwire
fuzz FuzzSplitForm ./proxy
say "waiting for go test -race ./cmd/paygate"
wait_paygate
# The image recipe outside Docker (scripts/build-image.sh on the repository's
# Dockerfile and .dockerignore) ran above, in go test: it is
# TestBuildImageScript's "the real Dockerfile" case in ./deploy, beside the
# broken Dockerfiles the script must refuse. Running it here again took 54 s.
