#!/usr/bin/env bash
# Builds the container image's contents WITHOUT Docker (CI has no Docker
# engine), from the Dockerfile itself, so the recipe cannot rot:
#
#  1. the build context is a temp copy of the tree filtered by .dockerignore;
#  2. the build stage's ARG/ENV/WORKDIR/COPY lines are applied and its RUN
#     lines are run verbatim with /bin/sh -c, the build stage's absolute
#     directories (WORKDIR, COPY destinations, what the runtime stage copies
#     out) mapped under a temp root;
#  3. the binary is checked: statically linked, -trimpath, CGO_ENABLED=0, the
#     version from the VERSION build argument, `check-config -config
#     config.yaml` passes;
#  4. the runtime stage is checked: every COPY --from source exists, the user
#     is numeric and not root, the data directory (PAYGATE_STORE_PATH's
#     directory) is copied in owned by that user and declared a VOLUME, the
#     listen port is exposed, and ENTRYPOINT+CMD are run with the stage's ENV
#     (listeners moved to free loopback ports) until the HEALTHCHECK command,
#     which must read the config serve runs with (-config, not a fixed -url),
#     answers healthy, run as written with serve's ENV and PAYGATE_LISTEN set
#     to the address serve got; then SIGTERM must end it cleanly.
#
# Whatever step 4 can check from the Dockerfile alone (the user, the data
# directory, the listener, the health check's config, the Go version) is
# checked before the context is copied or anything built, so such a mistake
# fails in a second; what needs the build (COPY sources, the binary, the run)
# is checked after it.
#
# The build stage's golang:<version> must be go.mod's Go (its toolchain line,
# else its go line) exactly: the golang image sets GOTOOLCHAIN=local, so a
# cached older image of the same minor version would refuse to build.
#
# Any instruction or flag it does not understand is an error, never skipped.
# Environment: DOCKERFILE (default ./Dockerfile), DOCKERIGNORE (default
# ./.dockerignore), VERSION (the build arg), KEEP=1 keeps the temp root.
# The context is always this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dockerfile=${DOCKERFILE:-$repo/Dockerfile}
[[ $dockerfile = /* ]] || dockerfile=$repo/$dockerfile
dockerignore=${DOCKERIGNORE:-$repo/.dockerignore}

say() { printf '== build-image: %s\n' "$*"; }
die() { printf 'build-image.sh: %s\n' "$*" >&2; exit 1; }

[ -f "$dockerfile" ] || die "no Dockerfile at $dockerfile"
command -v go >/dev/null || die "go is required"
if ! command -v file >/dev/null; then
  command -v apt-get >/dev/null || die "'file' is missing and there is no apt-get to install it"
  say "installing file"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq file >/dev/null
fi
command -v ldd >/dev/null || die "ldd is required"

work=$(mktemp -d)
root=$work/root     # the build stage's filesystem
ctx=$work/context   # the filtered build context
mkdir -p "$root" "$ctx"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- parsing -----------------------------------------------------------------

# Logical instructions: comment lines dropped, continuations joined.
instructions=()
buf=""
while IFS= read -r line || [ -n "$line" ]; do
  [[ $line =~ ^[[:space:]]*# ]] && continue
  if [[ $line =~ \\[[:space:]]*$ ]]; then
    buf+="${line%\\*} "
    continue
  fi
  buf+=$line
  if [[ -n ${buf//[[:space:]]/} ]]; then
    buf=${buf#"${buf%%[![:space:]]*}"}
    instructions+=("$buf")
  fi
  buf=""
done <"$dockerfile"
[ -z "${buf//[[:space:]]/}" ] || die "Dockerfile ends inside a line continuation"

# Stage boundaries: the last stage is the runtime image, the one before it the
# build stage; exactly two.
stage_starts=()
for i in "${!instructions[@]}"; do
  read -r word _ <<<"${instructions[$i]}"
  [[ ${word^^} = FROM ]] && stage_starts+=("$i")
done
[ "${#stage_starts[@]}" -eq 2 ] || die "want exactly two stages (build, runtime); found ${#stage_starts[@]}"
build_from=${stage_starts[0]}
run_from=${stage_starts[1]}

# json_array TEXT: the strings of a JSON array of plain strings, one a line.
json_array() {
  local s=$1 out=()
  [[ $s =~ ^[[:space:]]*\[(.*)\][[:space:]]*$ ]] || die "not a JSON array: $s"
  s=${BASH_REMATCH[1]}
  while [[ $s =~ ^[[:space:]]*\"([^\"\\]*)\"[[:space:]]*(,|$) ]]; do
    out+=("${BASH_REMATCH[1]}")
    s=${s:${#BASH_REMATCH[0]}}
  done
  [[ -z ${s//[[:space:]]/} ]] || die "unsupported JSON array (escapes?): $1"
  printf '%s\n' "${out[@]}"
}


# ---- the build stage ---------------------------------------------------------

# Absolute build-stage directories are mapped under $root: the WORKDIR, COPY
# destinations, and the top directory of everything the runtime stage copies
# out of the build stage.
declare -A mapped=()
map_top() { local p=$1; p=${p#/}; mapped["/${p%%/*}"]=1; }
for ((i = run_from; i < ${#instructions[@]}; i++)); do
  read -r -a w <<<"${instructions[$i]}"
  [[ ${w[0]^^} = COPY ]] || continue
  for t in "${w[@]:1}"; do
    [[ $t = --from=* ]] || continue
    for s in "${w[@]:1}"; do [[ $s = /* ]] && { map_top "$s"; break; }; done
  done
done
for ((i = build_from; i < run_from; i++)); do
  read -r -a w <<<"${instructions[$i]}"
  case ${w[0]^^} in
  WORKDIR) [[ ${w[1]} = /* ]] && map_top "${w[1]}" ;;
  COPY) [[ ${w[-1]} = /* ]] && map_top "${w[-1]}" ;;
  esac
done

# host PATH: a build-stage path under $root when it is mapped.
host() {
  local p=$1 top="/${1#/}"
  top="/$(cut -d/ -f2 <<<"$top")"
  if [[ $p = /* && -n ${mapped[$top]:-} ]]; then printf '%s' "$root$p"; else printf '%s' "$p"; fi
}

# map_cmd TEXT: TEXT with every mapped absolute path moved under $root.
map_cmd() {
  local s=$1 d
  for d in "${!mapped[@]}"; do
    s=$(ROOT=$root D=$d perl -pe 's{(^|[\s=:"\x27])\Q$ENV{D}\E(?=/|[\s"\x27;&|)]|$)}{$1$ENV{ROOT}$ENV{D}}g' <<<"$s")
  done
  printf '%s' "$s"
}

declare -A vars=()  # ARG and ENV values visible to RUN
workdir=/
build_cmd=""
read -r -a w <<<"${instructions[$build_from]}"
# FROM golang:X.Y[...] AS name: the local toolchain must be that Go.
[ "${#w[@]}" -eq 4 ] && [[ ${w[2]^^} = AS ]] || die "build stage: want 'FROM image AS name', got: ${instructions[$build_from]}"
image=${w[1]}
[[ $image =~ ^(docker\.io/(library/)?)?golang:([0-9]+\.[0-9]+(\.[0-9]+)?)(-.*)?$ ]] || die "build stage image $image is not golang:<version>"
image_go=${BASH_REMATCH[3]}
want_go=go$image_go
mod_go=$(awk '$1 == "toolchain" { sub(/^go/, "", $2); t = $2 } $1 == "go" { g = $2 } END { print (t != "" ? t : g) }' "$repo/go.mod")
[ -n "$mod_go" ] || die "go.mod names no Go version"
[ "$image_go" = "$mod_go" ] || die "build stage image $image is not go.mod's Go $mod_go: write golang:$mod_go (the image sets GOTOOLCHAIN=local, so a cached older golang:${image_go%.*}… cannot build go.mod's $mod_go)"
have_go=$(go env GOVERSION)
[[ $have_go = "$want_go" || $have_go = "$want_go".* ]] || die "the Dockerfile builds with $image but the local toolchain is $have_go"
build_stage=${w[3]}
say "build stage '$build_stage' from $image (local $have_go)"


# ---- the runtime stage -------------------------------------------------------

# Read, and checked as far as the Dockerfile alone tells, before the context
# is copied and the build stage run: a wrong user, listener, data directory or
# health check fails in a second, not after a build.

read -r -a w <<<"${instructions[$run_from]}"
runtime_image=${w[1]}
declare -A copies=()   # runtime path -> host path
declare -A chowns=()   # runtime path -> --chown value
declare -A copy_srcs=() # runtime path -> build-stage path
declare -A renv=()     # ENV of the runtime stage
user="" entrypoint=() cmdline=() health=() exposed=() volumes=()
for ((i = run_from + 1; i < ${#instructions[@]}; i++)); do
  ins=${instructions[$i]}
  read -r word rest <<<"$ins"
  case ${word^^} in
  COPY)
    read -r -a w <<<"$rest"
    from="" chown=""
    while [[ ${w[0]} = --* ]]; do
      case ${w[0]} in
      --from=*) from=${w[0]#--from=} ;;
      --chown=*) chown=${w[0]#--chown=} ;;
      *) die "runtime stage: unsupported COPY flag ${w[0]}" ;;
      esac
      w=("${w[@]:1}")
    done
    [ "$from" = "$build_stage" ] || die "runtime stage: COPY must come --from=$build_stage: $ins"
    [ "${#w[@]}" -eq 2 ] || die "runtime stage: want COPY --from=$build_stage SRC DEST: $ins"
    [[ ${w[0]} = /* && ${w[1]} = /* ]] || die "runtime stage: write absolute paths in COPY --from (a source is relative to the build stage's root, not its WORKDIR): $ins"
    copies[${w[1]%/}]=$(host "${w[0]}")
    copy_srcs[${w[1]%/}]=${w[0]}
    [ -n "$chown" ] && chowns[${w[1]%/}]=$chown
    ;;
  USER) user=$rest ;;
  ENV)
    read -r -a kvs <<<"$rest"
    for kv in "${kvs[@]}"; do
      [[ $kv =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "unsupported ENV (want KEY=VALUE): $ins"
      renv[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    done
    ;;
  EXPOSE) read -r -a exposed <<<"$rest" ;;
  VOLUME) mapfile -t volumes < <(json_array "$rest") ;;
  ENTRYPOINT) mapfile -t entrypoint < <(json_array "$rest") ;;
  CMD) mapfile -t cmdline < <(json_array "$rest") ;;
  HEALTHCHECK)
    [[ $rest =~ (^|[[:space:]])CMD[[:space:]]+(\[.*\])[[:space:]]*$ ]] || die "HEALTHCHECK must use the exec form CMD [...] (distroless has no shell): $ins"
    mapfile -t health < <(json_array "${BASH_REMATCH[2]}")
    ;;
  WORKDIR | LABEL | ARG) ;;
  RUN) die "runtime stage: RUN cannot work on a distroless image (no shell): $ins" ;;
  *) die "runtime stage: unsupported instruction: $ins" ;;
  esac
done

# rhost PATH: the host file behind a runtime-image path, via the COPY lines.
rhost() {
  local p=$1 d
  for d in "${!copies[@]}"; do
    if [ "$p" = "$d" ]; then printf '%s' "${copies[$d]}"; return; fi
    if [[ $p = "$d"/* ]]; then printf '%s' "${copies[$d]}${p#"$d"}"; return; fi
  done
  return 1
}

# ---- checks of the Dockerfile -------------------------------------------------

fail=0
bad() { printf 'build-image.sh: FAIL: %s\n' "$*" >&2; fail=1; }

[ "${#entrypoint[@]}" -ge 1 ] || die "runtime stage: no ENTRYPOINT"
bin_path=${entrypoint[0]}
bin=$(rhost "$bin_path") || die "ENTRYPOINT $bin_path is not copied from the build stage"

# The user: numeric (runAsNonRoot can verify it) and not root.
[[ $user =~ ^([0-9]+)(:([0-9]+))?$ ]] || bad "USER '$user' is not numeric uid[:gid]"
uid=${BASH_REMATCH[1]:-0}
[ "$uid" != 0 ] || bad "the image runs as root"
[[ $runtime_image = *distroless/static* ]] || bad "runtime image $runtime_image is not distroless static (CA certificates, nonroot user)"

# The data directory: PAYGATE_STORE_PATH's directory, copied in as a directory
# owned by the user, declared a volume.
store=${renv[PAYGATE_STORE_PATH]:-}
[ -n "$store" ] || bad "runtime ENV does not set PAYGATE_STORE_PATH"
datadir=$(dirname "${store:-/x}")
if [ -z "${copies[$datadir]:-}" ]; then
  bad "the data directory $datadir is not created by a COPY (WORKDIR would make it root-owned)"
else
  [ "${chowns[$datadir]:-}" = "$user" ] || bad "the data directory $datadir is owned by '${chowns[$datadir]:-root}'; want --chown=$user"
fi
[[ " ${volumes[*]} " = *" $datadir "* ]] || bad "$datadir is not declared a VOLUME"

# The listener: every interface, its port exposed, the health check on it.
listen=${renv[PAYGATE_LISTEN]:-}
[[ $listen =~ ^0\.0\.0\.0:([0-9]+)$ ]] || bad "PAYGATE_LISTEN='$listen'; want 0.0.0.0:PORT"
port=${BASH_REMATCH[1]:-8080}
[[ " ${exposed[*]} " = *" $port "* || " ${exposed[*]} " = *" $port/tcp "* ]] || bad "port $port is not EXPOSEd"
[ "${#health[@]}" -ge 2 ] || die "no HEALTHCHECK CMD"
[ "${health[0]}" = "$bin_path" ] || bad "HEALTHCHECK runs ${health[0]}; want the binary $bin_path"
# The health check reads server.listen from the config serve runs with (a
# fixed -url misses a PAYGATE_LISTEN or a mounted config that moves the port).
flag_value() { # flag_value FLAG ARG...: the value after the last FLAG
  local f=$1 v="" j
  shift
  local a=("$@")
  for ((j = 1; j < ${#a[@]}; j++)); do
    if [ "${a[$j - 1]}" = "$f" ]; then v=${a[$j]}; fi
  done
  printf '%s' "$v"
}
hconfig=$(flag_value -config "${health[@]}")
sconfig=$(flag_value -config "${entrypoint[@]:1}" "${cmdline[@]}")
if [ -n "$(flag_value -url "${health[@]}")" ]; then
  bad "HEALTHCHECK asks a fixed -url: a PAYGATE_LISTEN or a mounted config that moves the port would fail it; give -config $sconfig"
elif [ -z "$hconfig" ]; then
  bad "HEALTHCHECK gives no -config: it would ask 127.0.0.1:8080 whatever server.listen says"
elif [ "$hconfig" != "$sconfig" ]; then
  bad "HEALTHCHECK reads $hconfig, but serve runs with -config ${sconfig:-(none)}"
elif ! rhost "$hconfig" >/dev/null; then
  bad "HEALTHCHECK reads $hconfig, which no COPY puts in the image"
fi
[ "$fail" = 0 ] || die "the Dockerfile fails the checks above (nothing was built)"

# ---- the build context -------------------------------------------------------

ignore=()
if [ -f "$dockerignore" ]; then
  while IFS= read -r p || [ -n "$p" ]; do
    p=${p%$'\r'}
    [[ $p =~ ^[[:space:]]*(#|$) ]] && continue
    p=${p#"${p%%[![:space:]]*}"}; p=${p%"${p##*[![:space:]]}"}
    [[ $p = '!'* ]] && die ".dockerignore: exceptions (\"$p\") are not supported here"
    p=${p#/}; p=${p%/}
    ignore+=("$p")
  done <"$dockerignore"
fi

# ignored REL: whether .dockerignore drops REL. A bash glob's * also matches
# "/", so this drops at least what Docker drops: a build that passes here has
# every file it needs in Docker's context too.
ignored() {
  local rel=$1 p
  for p in "${ignore[@]}"; do
    # shellcheck disable=SC2053 # $p is a glob on purpose
    [[ $rel == $p ]] && return 0
    [[ $p = '**/'* && $rel == ${p#'**/'} ]] && return 0
  done
  return 1
}

copy_context() { # copy_context REL-DIR ("" for the root)
  local dir=$1 entry rel
  shopt -s dotglob nullglob
  for entry in "$repo/$dir"*; do
    rel=${entry#"$repo/"}
    ignored "$rel" && continue
    if [ -d "$entry" ] && [ ! -L "$entry" ]; then
      mkdir -p "$ctx/$rel"
      copy_context "$rel/"
    else
      cp -P --preserve=mode,timestamps "$entry" "$ctx/$rel"
    fi
  done
}
say "context: $(basename "$repo") filtered by .dockerignore"
copy_context ""
for ((i = build_from + 1; i < run_from; i++)); do
  ins=${instructions[$i]}
  read -r word rest <<<"$ins"
  case ${word^^} in
  ARG)
    [[ $rest =~ ^([A-Za-z_][A-Za-z0-9_]*)(=(.*))?$ ]] || die "unsupported ARG: $ins"
    name=${BASH_REMATCH[1]}
    if [[ -n ${!name+x} ]]; then vars[$name]=${!name}; else vars[$name]=${BASH_REMATCH[3]}; fi
    ;;
  ENV)
    read -r -a kvs <<<"$rest"
    for kv in "${kvs[@]}"; do
      [[ $kv =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "unsupported ENV (want KEY=VALUE): $ins"
      vars[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    done
    ;;
  WORKDIR)
    [[ $rest = /* ]] && workdir=$rest || workdir=${workdir%/}/$rest
    mkdir -p "$(host "$workdir")"
    ;;
  COPY)
    read -r -a w <<<"$rest"
    [[ ${w[0]} = --* ]] && die "build stage: COPY flags are not supported: $ins"
    [ "${#w[@]}" -ge 2 ] || die "bad COPY: $ins"
    dest=${w[-1]}
    [[ $dest = /* ]] || dest=${workdir%/}/$dest
    hdest=$(host "$dest")
    srcs=("${w[@]:0:${#w[@]}-1}")
    [ "${#srcs[@]}" -eq 1 ] || [[ $dest = */ ]] || die "COPY with several sources needs a destination ending in /: $ins"
    for s in "${srcs[@]}"; do
      [[ $s = *[*?[]* ]] && die "COPY globs are not supported: $ins"
      [ -e "$ctx/$s" ] || die "COPY $s: not in the build context (check .dockerignore)"
      if [ -d "$ctx/$s" ]; then
        mkdir -p "$hdest" && cp -a "$ctx/$s/." "$hdest/"
      elif [[ $dest = */ ]]; then
        mkdir -p "$hdest" && cp -a "$ctx/$s" "$hdest"
      else
        mkdir -p "$(dirname "$hdest")" && cp -a "$ctx/$s" "$hdest"
      fi
    done
    say "COPY ${srcs[*]} -> $dest"
    ;;
  RUN)
    [[ $rest = \[* ]] && die "build stage: exec-form RUN is not supported: $ins"
    [[ $rest = --* ]] && die "build stage: RUN flags are not supported: $ins"
    cmd=$(map_cmd "$rest")
    if [[ $rest =~ (^|[[:space:]])go[[:space:]]+build[[:space:]] ]]; then
      # The build line itself must ask for what the binary checks verify, so
      # a host without a C compiler (where Go falls back to CGO_ENABLED=0)
      # cannot hide a missing flag. Checked before the (slow) build.
      [[ $rest =~ (^|[[:space:]])CGO_ENABLED=0([[:space:]]|$) ]] || die "the go build line does not set CGO_ENABLED=0: $rest"
      [[ $rest =~ (^|[[:space:]])-trimpath([[:space:]]|$) ]] || die "the go build line does not use -trimpath: $rest"
      build_cmd=$rest
    fi
    say "RUN $rest"
    rc=0
    (
      cd "$(host "$workdir")"
      # The golang image sets none of these; neither does the host.
      unset GOFLAGS CGO_ENABLED GOOS GOARCH GOAMD64 GOEXPERIMENT
      for k in "${!vars[@]}"; do export "$k=${vars[$k]}"; done
      exec /bin/sh -c "$cmd"
    ) || rc=$?
    [ "$rc" = 0 ] || die "RUN failed (exit $rc): $rest"
    ;;
  *) die "build stage: unsupported instruction: $ins" ;;
  esac
done
[ -n "$build_cmd" ] || die "the build stage has no 'go build' RUN line"

# ---- checks of what the build made ---------------------------------------------

for d in "${!copies[@]}"; do
  [ -e "${copies[$d]}" ] || die "runtime stage: COPY source ${copy_srcs[$d]} was not produced by the build stage"
done
[ -x "$bin" ] || die "ENTRYPOINT $bin_path is not an executable"
say "binary $bin_path ($(du -h "$bin" | cut -f1))"
[ -d "${copies[$datadir]}" ] || bad "the data directory's COPY source is not a directory"

ftype=$(file -b "$bin")
[[ $ftype = *ELF* && $ftype = *"statically linked"* ]] || bad "not a static ELF binary: $ftype"
if ldd_out=$(ldd "$bin" 2>&1); then bad "ldd lists dynamic libraries: $ldd_out"; fi
[[ $ldd_out = *"not a dynamic executable"* || $ldd_out = *"statically linked"* ]] || bad "ldd: $ldd_out"
buildinfo=$(go version -m "$bin")
grep -qE '^\s+build\s+-trimpath=true$' <<<"$buildinfo" || bad "binary not built with -trimpath"
grep -qE '^\s+build\s+CGO_ENABLED=0$' <<<"$buildinfo" || bad "binary not built with CGO_ENABLED=0"
grep -qE '^\s+build\s+GOOS=linux$' <<<"$buildinfo" || bad "binary not built for GOOS=linux"
got_version=$("$bin" version) || bad "'paygate version' failed"
[ "$got_version" = "paygate ${vars[VERSION]:-dev}" ] || bad "version: got '$got_version'; want 'paygate ${vars[VERSION]:-dev}'"
"$bin" check-config -config "$repo/config.yaml" >/dev/null || bad "check-config -config config.yaml failed"

[ "$fail" = 0 ] || exit 1

# ---- run it ------------------------------------------------------------------

# ENTRYPOINT+CMD with image paths replaced by their COPY sources; the stage's
# ENV with paths mapped the same way and listeners on free loopback ports.
argv=()
for a in "${entrypoint[@]:1}" "${cmdline[@]}"; do
  if [[ $a = /* ]] && m=$(rhost "$a"); then argv+=("$m"); else argv+=("$a"); fi
done
data=$work/data
cp -a "${copies[$datadir]}" "$data"
runenv=()
for k in "${!renv[@]}"; do
  v=${renv[$k]}
  [[ $v = "$datadir"/* ]] && v=$data${v#"$datadir"}
  runenv+=("$k=$v")
done
runenv+=("PAYGATE_LISTEN=127.0.0.1:0" "PAYGATE_ADMIN_LISTEN=127.0.0.1:0")
say "run: ${entrypoint[*]} ${cmdline[*]}"
log=$work/serve.log
(cd "$data" && exec env "${runenv[@]}" "$bin" "${argv[@]}") >"$log" 2>&1 &
server_pid=$!
addr=""
deadline=$((SECONDS + 30))
while [ -z "$addr" ]; do
  addr=$(grep -o '"listener":"main","addr":"[^"]*"' "$log" 2>/dev/null | head -1 | sed 's/.*"addr":"\([^"]*\)"/\1/' || true)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "paygate serve exited before listening"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$log" >&2; die "paygate serve did not listen within 30s"; }
  sleep 0.1
done
# The HEALTHCHECK as written, image paths replaced by their COPY sources, in
# serve's directory and environment, with PAYGATE_LISTEN the address serve
# got (in the container both read the image's ENV, and serve listens on it).
hc=("$bin")
for a in "${health[@]:1}"; do
  if [[ $a = /* ]] && m=$(rhost "$a"); then hc+=("$m"); else hc+=("$a"); fi
done
say "HEALTHCHECK ${health[*]:1} (PAYGATE_LISTEN=$addr)"
(cd "$data" && exec env "${runenv[@]}" "PAYGATE_LISTEN=$addr" "${hc[@]}") || { cat "$log" >&2; die "the HEALTHCHECK command failed against the running server"; }
[ -f "$data/$(basename "$store")" ] || die "the store was not created in the data directory"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" = 0 ] || { cat "$log" >&2; die "paygate serve exited $rc on SIGTERM"; }
say "ok: static $bin_path, runtime stage consistent, healthy, clean shutdown"
