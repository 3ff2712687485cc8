package redis

import goredis "github.com/redis/go-redis/v9"

// Every script touches only the keys it is given, and every call passes keys
// of one hash tag, so each is one atomic step on one cluster slot.

// luaObState is shared by the scripts that change an outbox: it returns the
// outbox version and the head's score in {idx}:ob (noHead, -1, when empty).
// A head given a due time (a retry, a lease, an event enqueued for later)
// scores its next_ms. A fresh one (next_ms 0: due at once) scores its
// created_ms less freshBase: below every due time, so fresh heads come first
// as on every driver, oldest first, and due by any replica's clock. Scored
// 0, as earlier versions did, fresh heads came out by key name: with more
// due than one read takes, a proposal's queue or the default key waited
// behind every order's newer event. An element of an earlier version has
// no created_ms and scores as the oldest.
//
// obhead reads what the scripts look at of an element (id, next_ms,
// created_ms, its event's kind, a claim's lease) from the opening Go writes
// it with (obElem, then store.Event: every string of it that has no escape
// reads as cjson would read it), and decodes only an element that opens
// otherwise: one a script re-encoded (a retry, a lease; cjson orders keys
// as it likes), or an earlier version's. An audit event carries its turn's
// conversation: 7.1 MB queued for one of 4 MB, 15-20 ms a decode, and
// each read of the head and each ack decoded it whole, the server
// blocked for every replica. A Go-written element has no lease (only a
// script adds one), and one with a lease is decoded whole: cjson may write
// the opening in paygate's order with the lease after it (Redis 7.0 puts
// next_ms first; another build's tables may not), and the plain search
// for the key, which no string value can hold unescaped, runs at memchr's
// pace over a payload of base64 (no quote in it).
const luaObState = `
local fresh_base = ` + freshBaseLua + `
local function obhead(raw)
  local id, n, c, k = string.match(raw, '^{"id":"([^"\\]*)","next_ms":(%-?%d+),"created_ms":(%-?%d+),"ev":{"id":"[^"\\]*","kind":"([^"\\]*)"')
  if id and not string.find(raw, '"lease":', 1, true) then
    return {id = id, next_ms = tonumber(n), created_ms = tonumber(c), kind = k}
  end
  local e = cjson.decode(raw)
  return {id = e.id, next_ms = tonumber(e.next_ms), created_ms = tonumber(e.created_ms), kind = e.ev and e.ev.kind, lease = e.lease}
end
local function obstate(ob, obv)
  local v = tonumber(redis.call('GET', obv) or '0')
  local h = redis.call('LINDEX', ob, 0)
  if not h then return v, -1 end
  local e = obhead(h)
  local n = e.next_ms
  if n ~= 0 then return v, n end
  local c = math.min(math.max(e.created_ms or 0, 0), fresh_base - 2)
  return v, c - fresh_base
end
`

// freshBase is what a fresh head's creation time (unix ms) is scored less
// (luaObState): 2^50 ms is some 35,000 years, so every creation time scores
// below zero and above -2^53, where float64 scores are exact, and none
// scores noHead.
const (
	freshBase    = 1 << 50
	freshBaseLua = "1125899906842624"
)

// noHead is the head score of an empty outbox (luaObState).
const noHead = -1

// luaServerTime is shared by the scripts that read the server's clock: its
// time in unix milliseconds. Redis 5 and later replicate a script by its
// effects (the only way from Redis 7), so a script may read TIME and then
// write.
const luaServerTime = `
local function servertime()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// luaFence is shared by the scripts of a write that records an intent first
// (sync.go): the order scripts, the refund proposal scripts and the enqueue
// scripts. Their last ARGV is the intent's deadline (server time, unix ms;
// empty for a write without an intent), and once it has passed on this
// server's clock they refuse to write, with an error reply starting
// STALEINTENT, so Repair, which takes a note for abandoned only well after
// its deadline, never resyncs a member before a write its note stands for.
// Each script checks it just before its first write: after the checks that
// answer without writing, so a run re-sent after a lost reply still answers
// as the run that wrote did.
const luaFence = luaServerTime + `
local stale_intent = 'STALEINTENT the write intent is past its deadline: record a new one'
local function stale(deadline)
  return deadline ~= '' and servertime() > tonumber(deadline)
end
`

// luaHold is shared by the scripts that change a refund proposal's event
// queue (store.ProposalEventKey: ob and obv on the proposal's tag {r:ID}).
// Those keys are not kept like an order's: hold gives both an expiry of at
// least the proposal record's (rec, physically ttl + store.TombstoneTTL +
// expiryGrace) and at least min_ms from now, and only ever extends one.
// The Go side passes min_ms as TombstoneTTL + expiryGrace past the step (and
// past a retry's due time or a lease's end), so the bound is: a queue lives
// until its proposal's record is gone and at least 7 days and a minute after
// its last change. The audit worker drains an event within seconds and each
// retry re-extends the queue past its next attempt, so a pending event is
// dropped by expiry only if no worker touches its queue for 7 days.
// ob and obv get one expiry, the later of the two: the version must outlive
// the list, or a new queue would restart below the version {idx}:obv holds.
// An order's queue passes no rec and is left as it is.
const luaHold = `
local function hold(ob, obv, rec, min_ms)
  if not rec then return end
  local want = tonumber(min_ms)
  for _, k in ipairs({rec, ob, obv}) do
    local t = redis.call('PTTL', k)
    if t > want then want = t end
  end
  for _, k in ipairs({ob, obv}) do
    local t = redis.call('PTTL', k)
    if t == -1 or (t >= 0 and t < want) then redis.call('PEXPIRE', k, want) end
  end
end
`

// luaPushHeld (after luaHold) appends the n events ARGV[first+1..first+n] to
// a proposal's queue ob, raises its version obv and holds both (hold) as
// long as rec and at least min_ms: what putting a proposal and ending it
// both write with their step.
const luaPushHeld = `
local function pushheld(ob, obv, rec, min_ms, first, n)
  if n <= 0 then return end
  for i = 1, n do redis.call('RPUSH', ob, ARGV[first + i]) end
  redis.call('INCR', obv)
  hold(ob, obv, rec, min_ms)
end
`

// The order scripts record the write's intent token in the order's field w,
// and a run that finds its own token there answers as the run that wrote it
// did: go-redis re-sends a command whose reply was lost (a read timeout, a
// connection cut by a failover), and that second run must not report a
// write that was applied as a taken number or a conflict.

// KEYS: rec, ob, obv. ARGV: json, status, client, user, created_ns, token, n,
// elems..., deadline_ms. Returns {1, version, obv, next} or {0} when the
// number is taken.
const luaCreateOrder = luaObState + luaFence + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'w') ~= ARGV[6] then return {0} end
  local v, nx = obstate(KEYS[2], KEYS[3])
  return {1, 1, v, nx}
end
if stale(ARGV[#ARGV]) then return redis.error_reply(stale_intent) end
redis.call('HSET', KEYS[1], 'j', ARGV[1], 's', ARGV[2], 'c', ARGV[3], 'u', ARGV[4], 'ca', ARGV[5], 'v', 1, 'w', ARGV[6])
local n = tonumber(ARGV[7])
if n > 0 then
  for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[7 + i]) end
  redis.call('INCR', KEYS[3])
end
local v, nx = obstate(KEYS[2], KEYS[3])
return {1, 1, v, nx}
`

// KEYS: rec, ob, obv. ARGV: json, status, expect, client, user, created_ns,
// version read, token, n, elems..., deadline_ms. Returns {1, version, obv,
// next}, {-1} not found, {-2, status, version} conflict, {-3} immutable field
// changed.
const luaUpdateOrder = luaObState + luaFence + `
local cur = redis.call('HMGET', KEYS[1], 's', 'v', 'c', 'u', 'ca', 'w')
if not cur[1] then return {-1} end
if cur[6] == ARGV[8] then
  local v, nx = obstate(KEYS[2], KEYS[3])
  return {1, tonumber(cur[2]), v, nx}
end
if cur[1] ~= ARGV[3] or tonumber(cur[2]) ~= tonumber(ARGV[7]) then return {-2, cur[1], tonumber(cur[2])} end
if cur[3] ~= ARGV[4] or cur[4] ~= ARGV[5] or cur[5] ~= ARGV[6] then return {-3} end
if stale(ARGV[#ARGV]) then return redis.error_reply(stale_intent) end
local ver = tonumber(cur[2]) + 1
redis.call('HSET', KEYS[1], 'j', ARGV[1], 's', ARGV[2], 'v', ver, 'w', ARGV[8])
local n = tonumber(ARGV[9])
if n > 0 then
  for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[9 + i]) end
  redis.call('INCR', KEYS[3])
end
local v, nx = obstate(KEYS[2], KEYS[3])
return {1, ver, v, nx}
`

// KEYS: ob, obv, this call's token key[, rec]. ARGV: n, elems..., token_ms,
// hold_ms, deadline_ms. Returns {obv, next}. rec is given for a refund
// proposal's queue (see luaHold). The run that appends sets the token key
// for token_ms: a run go-redis re-sends after losing the first one's reply
// finds it and answers as the first run did, appending nothing; it queued
// the events a second time (an erasure's audit record twice).
const luaEnqueue = luaObState + luaHold + luaFence + `
if redis.call('EXISTS', KEYS[3]) == 0 then
  if stale(ARGV[#ARGV]) then return redis.error_reply(stale_intent) end
  local n = tonumber(ARGV[1])
  for i = 1, n do redis.call('RPUSH', KEYS[1], ARGV[1 + i]) end
  redis.call('INCR', KEYS[2])
  hold(KEYS[1], KEYS[2], KEYS[4], ARGV[n + 3])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[n + 2])
end
local v, nx = obstate(KEYS[1], KEYS[2])
return {v, nx}
`

// KEYS: ob, obv, this call's token key[, rec]. ARGV: nids, ids..., n,
// elems..., token_ms, hold_ms, deadline_ms. Appends the n elems unless an
// event with one of the ids is queued. Returns {obv, next, ids queued...}:
// none when it appended, else each of the ids found queued, in the order
// given (as the embedded store answers). The run that appends sets the
// token key for token_ms: a run go-redis re-sends after losing the first
// one's reply finds it and answers as the first run did, having appended;
// it found its own events queued and answered them pending, so a
// webhook resend that queued them (and their audit record) told the
// operator they were already waiting and that it queued nothing.
const luaEnqueueOnceAll = luaObState + luaHold + luaFence + `
local nids = tonumber(ARGV[1])
local n = tonumber(ARGV[nids + 2])
local found = {}
if redis.call('EXISTS', KEYS[3]) == 0 then
  local want, queued = {}, {}
  for i = 1, nids do want[ARGV[1 + i]] = true end
  for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    local id = obhead(raw).id
    if want[id] then queued[id] = true end
  end
  for i = 1, nids do
    if queued[ARGV[1 + i]] then found[#found + 1] = ARGV[1 + i] end
  end
  if #found == 0 then
    if stale(ARGV[#ARGV]) then return redis.error_reply(stale_intent) end
    for i = 1, n do redis.call('RPUSH', KEYS[1], ARGV[nids + 2 + i]) end
    redis.call('INCR', KEYS[2])
    hold(KEYS[1], KEYS[2], KEYS[4], ARGV[nids + n + 4])
    redis.call('SET', KEYS[3], '1', 'PX', ARGV[nids + n + 3])
  end
end
local v, nx = obstate(KEYS[1], KEYS[2])
local out = {v, nx}
for _, id in ipairs(found) do out[#out + 1] = id end
return out
`

// KEYS: ob, obv[, rec]. ARGV: kind, now_ms, until_ms, until (RFC 3339),
// token, hold_ms.
// Leases the head when it is of kind and due: next_ms and ev.next_at become
// the lease's end, and the claim's token is kept in the element, so that a
// re-sent run of the same claim (a lost reply) answers as the first did.
// Returns {1, obv, next, head} leased, {0, obv, next} not.
const luaClaimEvent = luaObState + luaHold + `
local h = redis.call('LINDEX', KEYS[1], 0)
if h then
  local hd = obhead(h)
  if hd.lease == ARGV[5] then
    local v, nx = obstate(KEYS[1], KEYS[2])
    return {1, v, nx, h}
  end
  if hd.kind == ARGV[1] and hd.next_ms <= tonumber(ARGV[2]) then
    local e = cjson.decode(h)
    e.next_ms = tonumber(ARGV[3])
    e.ev.next_at = ARGV[4]
    e.lease = ARGV[5]
    local raw = cjson.encode(e)
    redis.call('LSET', KEYS[1], 0, raw)
    redis.call('INCR', KEYS[2])
    hold(KEYS[1], KEYS[2], KEYS[3], ARGV[6])
    local v, nx = obstate(KEYS[1], KEYS[2])
    return {1, v, nx, raw}
  end
end
local v, nx = obstate(KEYS[1], KEYS[2])
return {0, v, nx}
`

// KEYS: rec, ob, obv. ARGV: [head_max]. Returns {json|false,
// version|false, obv, next, head|false, queue length, head length}: the
// order (if any) and the outbox state of one tag, read atomically. Given
// head_max above 0, a head longer than head_max bytes is not returned
// (false), only its length: DueEvents reads many tags in one pipeline,
// and a head of a conversation of megabytes among them is read in a
// pipeline of its own size, not beside hundreds like it; resync, which
// needs no head, gives 1.
const luaReadTag = luaObState + `
local r = redis.call('HMGET', KEYS[1], 'j', 'v')
local v, nx = obstate(KEYS[2], KEYS[3])
local h = redis.call('LINDEX', KEYS[2], 0)
local size = 0
if h then size = string.len(h) end
local most = tonumber(ARGV[1] or '0') or 0
if h and most > 0 and size > most then h = false end
return {r[1], r[2], v, nx, h, redis.call('LLEN', KEYS[2]), size}
`

// KEYS: rec, ob, obv. Returns {obv, next, kind|false}: the outbox state of
// one tag and its head's kind, without the head, which may carry a
// conversation of megabytes (ClaimEvents looks past the heads of other
// kinds with it).
const luaHeadKind = luaObState + `
local v, nx = obstate(KEYS[2], KEYS[3])
local h = redis.call('LINDEX', KEYS[2], 0)
local k = false
if h then k = obhead(h).kind or false end
return {v, nx, k}
`

// KEYS: ob, obv[, rec]. ARGV: id, hold_ms. Returns {1, obv, next}, or {0,
// obv, next} when not queued: the outbox's state either way, so that a run
// go-redis re-sends after losing the first one's reply (which took the
// event off) still brings {idx}:ob up to the queue's next head; left at the
// acknowledged event's lease end, its next event (an order's next webhook)
// waited for the lease to run out.
const luaAck = luaObState + luaHold + `
local found = false
local h = redis.call('LINDEX', KEYS[1], 0)
if h and obhead(h).id == ARGV[1] then
  redis.call('LPOP', KEYS[1])
  found = true
else
  for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    if obhead(e).id == ARGV[1] then
      redis.call('LREM', KEYS[1], 1, e)
      found = true
      break
    end
  end
end
if not found then
  local v, nx = obstate(KEYS[1], KEYS[2])
  return {0, v, nx}
end
redis.call('INCR', KEYS[2])
hold(KEYS[1], KEYS[2], KEYS[3], ARGV[2])
local v, nx = obstate(KEYS[1], KEYS[2])
return {1, v, nx}
`

// KEYS: ob, obv[, rec]. ARGV: id, created_at, hold_ms. Removes the event
// queued under id only when its created_at is ARGV[2]. Returns {1, obv,
// next}, or {0, obv, next} when not removed (the outbox's state either
// way, as luaAck).
const luaAckAt = luaObState + luaHold + `
local function kept()
  local v, nx = obstate(KEYS[1], KEYS[2])
  return {0, v, nx}
end
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if obhead(raw).id == ARGV[1] then
    local e = cjson.decode(raw)
    if e.ev.created_at ~= ARGV[2] then return kept() end
    redis.call('LREM', KEYS[1], 1, raw)
    redis.call('INCR', KEYS[2])
    hold(KEYS[1], KEYS[2], KEYS[3], ARGV[3])
    local v, nx = obstate(KEYS[1], KEYS[2])
    return {1, v, nx}
  end
end
return kept()
`

// KEYS: ob, obv[, rec]. ARGV: id, next_ms, attempts, last_error, next_at,
// failed_at (stamped only when attempts grows: a lease given back is no
// failure), hold_ms (past next_at for a proposal's queue, so the event is
// still there when it is due). Returns {1, obv, next} or {0} when not queued.
// The event's lease (luaClaimEvent) ends with it: an event with a lease
// token is one a claimer still handles (luaReschedule leaves it alone).
// Given leased_until (ARGV[8], RFC 3339: Store.RetryClaimedEvent), it
// writes only while the event's next_at is that, and returns {2} when it
// is another, unless that is the write itself (a re-sent run), which
// answers as written.
const luaRetry = luaObState + luaHold + `
local all = redis.call('LRANGE', KEYS[1], 0, -1)
for i, raw in ipairs(all) do
  if obhead(raw).id == ARGV[1] then
    local e = cjson.decode(raw)
    if (ARGV[8] or '') ~= '' and e.ev.next_at ~= ARGV[8] then
      if e.ev.next_at == ARGV[5] and tonumber(e.ev.attempts) == tonumber(ARGV[3]) and (e.ev.last_error or '') == ARGV[4] then
        local v, nx = obstate(KEYS[1], KEYS[2])
        return {1, v, nx}
      end
      return {2}
    end
    e.lease = nil
    e.next_ms = tonumber(ARGV[2])
    if tonumber(ARGV[3]) > (tonumber(e.ev.attempts) or 0) then e.ev.failed_at = ARGV[6] end
    e.ev.attempts = tonumber(ARGV[3])
    e.ev.last_error = ARGV[4]
    e.ev.next_at = ARGV[5]
    redis.call('LSET', KEYS[1], i - 1, cjson.encode(e))
    redis.call('INCR', KEYS[2])
    hold(KEYS[1], KEYS[2], KEYS[3], ARGV[7])
    local v, nx = obstate(KEYS[1], KEYS[2])
    return {1, v, nx}
  end
end
return {0}
`

// KEYS: uo (no -> json), uv (no -> version), ur (no -> created µs), uu
// (no -> updated µs, only the newest keep). ARGV: no, version, json,
// created_us, updated_us, keep, slack_us. Applies only a newer version. uu
// keeps the orders of the keep-th's microsecond too: which of them are the
// newest only their exact times tell (luaLoadUser). It also keeps every
// order updated within slack_us of its newest, the most replica clocks
// differ by (userUpdatedSlack): an update on a replica whose clock is
// behind scores an order lower than its last update, and the orders such
// updates move back past one that left uu would leave it among the newest
// updated but out of uu for good (a paid order the user's turn never saw
// again); one updated more than the slack before uu's newest never comes
// back among them.
//
// The copies (uo) are kept of the orders luaLoadUser reads only: the
// keep newest created (to the end of the keep-th's microsecond) and those
// in uu. A copy is dropped as its order leaves both: as it leaves uu, or
// is among the few just below the newest created (a create pushes one
// out). Every copy was kept before, a second copy of every order for good;
// a store written so keeps those it has. The version of a dropped copy
// stays in uv (a few dozen bytes an order, as in {idx}:v), so a copy
// replayed late is refused by its version as before, not by its time: a
// replica whose clock is behind the last writer's scores an update before
// the version it replaces, and that version, replayed once the order was
// dropped, was among the newest updated and read for the order. A newer
// version brings the copy back; one of an order in neither set is
// dropped again at once.
const luaSyncUser = `
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
local keep = tonumber(ARGV[6])
local created = redis.call('ZREVRANGE', KEYS[3], keep - 1, keep - 1, 'WITHSCORES')
local function drop(no)
  if not created[2] then return end
  local c = redis.call('ZSCORE', KEYS[3], no)
  if not c or tonumber(c) >= tonumber(created[2]) then return end
  if redis.call('ZSCORE', KEYS[4], no) then return end
  redis.call('HDEL', KEYS[1], no)
end
local cut = redis.call('ZREVRANGE', KEYS[4], keep - 1, keep - 1, 'WITHSCORES')
if cut[2] then
  local top = redis.call('ZREVRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  local below = string.format('%.0f', math.min(tonumber(cut[2]), tonumber(top[2]) - tonumber(ARGV[7])))
  local leaving = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. below)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. below)
  for _, no in ipairs(leaving) do drop(no) end
end
if created[2] then
  for _, no in ipairs(redis.call('ZREVRANGEBYSCORE', KEYS[3], '(' .. created[2], '-inf', 'LIMIT', 0, 4)) do drop(no) end
end
return 1
`

// KEYS: uo, ur, uu, ua. ARGV: n. The copies of the user's n newest created
// orders and of their n newest updated, each once, and the announcement
// marks of the same orders (luaAnnounce), in the same order: one round
// trip. The indexes score microseconds, and orders of one microsecond come
// out of them by number, not by time: so each set is read to the end of
// its n-th order's microsecond, and LoadUserState cuts it by the exact
// times. Returns {copies, marks, sets}, copies and marks false where there
// is none, sets 1 for an order of the newest created, 2 of the newest
// updated, 3 of both.
const luaLoadUser = `
local n = tonumber(ARGV[1])
local nos, sets, at = {}, {}, {}
local function newest(key, bit)
  local top = redis.call('ZREVRANGE', key, n - 1, n - 1, 'WITHSCORES')
  local found
  if top[2] then
    found = redis.call('ZREVRANGEBYSCORE', key, '+inf', top[2])
  else
    found = redis.call('ZREVRANGE', key, 0, -1)
  end
  for _, no in ipairs(found) do
    local i = at[no]
    if i then
      sets[i] = sets[i] + bit
    else
      nos[#nos + 1] = no
      sets[#nos] = bit
      at[no] = #nos
    end
  end
end
newest(KEYS[2], 1)
newest(KEYS[3], 2)
if #nos == 0 then return {{}, {}, {}} end
return {redis.call('HMGET', KEYS[1], unpack(nos)), redis.call('HMGET', KEYS[4], unpack(nos)), sets}
`

// KEYS: ua (the user's announcement marks: order number -> JSON object of
// kind -> {u = until_ms, t = token}), uap (how many marks ua kept after its
// last pass). ARGV: order_no, kind, now_ms, until_ms, physical_ms, token.
// Records the mark of kind on order_no unless a live one is there; returns
// 1 when it did, also to the same call re-sent after a lost reply (its
// token is kept in the mark), else 0. The marks past their until are
// dropped in a pass over every mark once ua holds twice what it kept after
// the last pass (and at least 2 * announcePruneFloor): each claim decodes
// its own order's marks and, on average, one more, and ua holds no more
// than twice the user's marks of the last ttl. A pass on every claim
// decoded every mark of the user each time, Redis blocked meanwhile. The
// hash outlives its newest mark; uap expires with it, and one gone (or
// never set, as earlier versions, which pass on every claim, set none)
// counts as 0. ua's fields are order numbers and nothing else: LoadUserState
// reads them by number and earlier versions decode every one.
const luaAnnounce = `
local now = tonumber(ARGV[3])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local m = {}
if raw then m = cjson.decode(raw) end
local e = m[ARGV[2]]
if e and e.t == ARGV[6] then return 1 end
if e and tonumber(e.u) > now then return 0 end
local kept = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('HLEN', KEYS[1]) >= 2 * math.max(kept, ` + announcePruneFloor + `) then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if f ~= ARGV[1] then
      local live = false
      for _, v in pairs(cjson.decode(redis.call('HGET', KEYS[1], f))) do
        if tonumber(v.u) > now then live = true end
      end
      if not live then redis.call('HDEL', KEYS[1], f) end
    end
  end
  redis.call('SET', KEYS[2], redis.call('HLEN', KEYS[1]), 'PX', ARGV[5])
end
for k, v in pairs(m) do
  if tonumber(v.u) <= now then m[k] = nil end
end
m[ARGV[2]] = {u = ARGV[4], t = ARGV[6]}
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(m))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  if redis.call('PTTL', KEYS[2]) >= 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
end
return 1
`

// announcePruneFloor: a user's announcement marks are not passed over
// (luaAnnounce) while they are fewer than twice this.
const announcePruneFloor = "8"

// idxFixedKeys is the number of KEYS of luaSyncIndex before the status sets.
const idxFixedKeys = 7

// KEYS: v, all, ob, obv, notes, the order's client's index, cv, then one
// sorted set per status in store.Statuses() order.
// ARGV: no, version (empty skips the order part), status index (1-based;
// 0 for a status this version does not know, which a later version wrote
// in a rolling upgrade: the order goes in no status set, slot 0 being
// no status's), created_us, obkey, obv (empty skips the outbox part), the
// head's score (luaObState; noHead removes the key), then the repair notes
// this sync stands for (removed from notes; none keeps all).
// The client's index and cv (the orders it holds: clientIndexed) are
// written whatever the version: an order's client and creation time never
// change, and an order an earlier version indexed gets its entry from the
// first sync of this one.
const luaSyncIndex = `
if ARGV[2] ~= '' then
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if tonumber(ARGV[2]) > cur then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    for i = 8, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
    local st = tonumber(ARGV[3])
    if st > 0 then redis.call('ZADD', KEYS[7 + st], ARGV[4], ARGV[1]) end
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
  end
  redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[7], ARGV[1], '1')
end
if ARGV[6] ~= '' then
  local cur = tonumber(redis.call('HGET', KEYS[4], ARGV[5]) or '-1')
  if tonumber(ARGV[6]) > cur then
    if tonumber(ARGV[7]) == -1 then
      redis.call('ZREM', KEYS[3], ARGV[5])
      redis.call('HDEL', KEYS[4], ARGV[5])
    else
      redis.call('ZADD', KEYS[3], ARGV[7], ARGV[5])
      redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
    end
  end
end
for i = 8, #ARGV do redis.call('ZREM', KEYS[5], ARGV[i]) end
return 1
`

// KEYS: v, cv, a client's index, and a status's set or none. Returns
// their lengths (0 for no status set): clientListIndex's check, in one
// step, as the ACL the README gives allows (@scripting, no MULTI) and a
// read-only Store runs (readScripts).
const luaClientIndexed = `
local out = {redis.call('HLEN', KEYS[1]), redis.call('HLEN', KEYS[2]), redis.call('ZCARD', KEYS[3]), 0}
if #KEYS > 3 then out[4] = redis.call('ZCARD', KEYS[4]) end
return out
`

// KEYS: cv, then the client index of each order. ARGV: each order's number
// and created_us, in pairs. Enters orders an earlier version indexed into
// their clients' indexes (indexClients); the same as luaSyncIndex writes, so
// a run again after a lost reply, or beside a sync, changes nothing.
const luaIndexClients = `
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2 * i - 2], ARGV[2 * i - 3])
  redis.call('HSET', KEYS[1], ARGV[2 * i - 3], '1')
end
return #KEYS - 1
`

// KEYS: notes, seq. ARGV: member, fence_ms. Records a write intent as a
// repair note of its own, "member|token", scored with the time of the server
// holding {idx}, and returns {token, deadline_ms}: that time plus fence_ms,
// after which the write's script refuses to write (luaFence). A note per
// writer, not per member: a writer that fails its compare-and-set must not
// be able to remove the note of one that committed and died before its
// sync. The server's clock, not the writer's: Repair judges a note's age by
// that same clock (luaIdxTime), so the replicas' clocks do not matter.
const luaIntent = luaServerTime + `
local t = tostring(redis.call('INCR', KEYS[2]))
local now = servertime()
redis.call('ZADD', KEYS[1], now, ARGV[1] .. '|' .. t)
return {t, now + tonumber(ARGV[2])}
`

// KEYS: a key on {idx}, so that a cluster runs it on the server whose clock
// scored the notes. Returns that server's time in unix milliseconds.
const luaIdxTime = luaServerTime + `
return servertime()
`

// KEYS: dirty, dirtyat (the intent log of earlier versions, one token per
// member). ARGV: member, token read before the member was resynced. Removes
// the member's entry unless a writer of an earlier version re-recorded it
// since; that one is replayed by a later pass.
const luaDropLegacy = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cur ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`

// KEYS: claim, gen. ARGV: candidate, ttl_ms, now_ms, from (-1: a plain claim),
// retention_ms, grace_ms, token. Returns {order_no, generation, created}.
// The call that binds the claim keeps its token in it (field tok), so the
// same call re-sent after a lost reply answers created as its first run
// did; every other call that finds the claim live gets created 0, also
// when the claim names its candidate (payments passes existing order
// numbers). A claim an earlier version rebound may keep a stale tok; only
// a re-sent run of the call that wrote it could match it, and only with
// the number it bound.
const luaClaim = `
local now, ttl, from = tonumber(ARGV[3]), tonumber(ARGV[2]), tonumber(ARGV[4])
local grace = tonumber(ARGV[6])
local c = redis.call('HMGET', KEYS[1], 'no', 'gen', 'until', 'tok')
local live = c[1] and tonumber(c[3]) > now
if live and c[4] == ARGV[7] and c[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'until', now + ttl)
  redis.call('PEXPIRE', KEYS[1], ttl + grace)
  return {c[1], tonumber(c[2]), 1}
end
if live and (from < 0 or tonumber(c[2]) ~= from) then
  redis.call('HSET', KEYS[1], 'until', now + ttl)
  redis.call('PEXPIRE', KEYS[1], ttl + grace)
  return {c[1], tonumber(c[2]), 0}
end
local g = redis.call('HMGET', KEYS[2], 'gen', 'until')
local prev = 0
if g[1] and tonumber(g[2]) > now then prev = tonumber(g[1]) end
local cg = 0
if live then cg = tonumber(c[2]) end
local nxt = math.max(prev, cg, from) + 1
redis.call('HSET', KEYS[1], 'no', ARGV[1], 'gen', nxt, 'until', now + ttl, 'tok', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ttl + grace)
local ret = tonumber(ARGV[5])
redis.call('HSET', KEYS[2], 'gen', nxt, 'until', now + ttl + ret)
redis.call('PEXPIRE', KEYS[2], ttl + ret + grace)
return {ARGV[1], nxt, 1}
`

// KEYS: key. ARGV: now_ms, until_ms, physical_ms, token. Returns 1 on first
// sighting, also to the same call re-sent (its token is stored after the
// time: "until_ms token"; a value without one is an older record).
const luaSeen = `
local u = redis.call('GET', KEYS[1])
if u then
  local untl, tok = string.match(u, '^(%d+) ?(.*)$')
  if tok == ARGV[4] then return 1 end
  if tonumber(untl) > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[3])
return 1
`

// KEYS: key. ARGV: now_ms, ttl_ms, grace_ms, token. Returns the new count.
// Each call's token is kept with the count it got (field "w:token"), so a call
// that go-redis re-sends after losing its reply gets that count again instead
// of counting twice: a "first time" announcement would otherwise read 2 and
// never be sent.
const luaCounter = `
local w = 'w:' .. ARGV[4]
local r = redis.call('HMGET', KEYS[1], 'n', 'until', w)
local now = tonumber(ARGV[1])
if not r[2] or tonumber(r[2]) <= now then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'n', 1, 'until', now + tonumber(ARGV[2]), w, 1)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]))
  return 1
end
if r[3] then return tonumber(r[3]) end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], w, n)
return n
`

// KEYS: lease (a hash: holder h, until). ARGV: holder, now_ms, ttl_ms,
// grace_ms. Takes the lease for the holder, or extends the holder's own,
// unless another holder's is live. Returns 1 when the holder has it now,
// else 0; run twice for one holder, it answers 1 both times.
const luaLease = `
local r = redis.call('HMGET', KEYS[1], 'h', 'until')
local now = tonumber(ARGV[2])
if r[1] and r[1] ~= ARGV[1] and r[2] and tonumber(r[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'until', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
return 1
`

// KEYS: key. ARGV: now_ms, token. Gives back one count of the live window,
// never below zero; the token is kept (field "d:token"), so a give-back sent
// twice takes one. Returns 1 when it took one back, else 0.
const luaUncount = `
local d = 'd:' .. ARGV[2]
local r = redis.call('HMGET', KEYS[1], 'n', 'until', d)
if not r[2] or tonumber(r[2]) <= tonumber(ARGV[1]) or r[3] then return 0 end
if not r[1] or tonumber(r[1]) <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', -1)
redis.call('HSET', KEYS[1], d, 1)
return 1
`

// KEYS: key (a sorted set of admitted events, scored by time). ARGV: now_ms,
// window_ms, limit, token, grace_ms. Returns 1 when the event is admitted
// (or was, under the same token), else 0.
const luaWindow = `
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[5]))
return 1
`

// KEYS: key. ARGV: delta, now_ms, ttl_ms, grace_ms, token. Returns the new sum
// as a string. HINCRBY keeps the sum an exact 64-bit integer; its reply, a Lua
// number (a double), would not be, so the stored string is returned. A call
// re-sent after a lost reply adds nothing: the tokens of the last 32 calls are
// kept in field "r" (" tok" each). Only the last few are needed, since
// go-redis re-sends within a second, before more than a few other turns of
// the same conversation can come in; keeping every call's token (a field
// each) grew a conversation's tally by a field per turn for 30 days. A sum
// HINCRBY would take past int64's end stops there, as the embedded store's
// does: refused, the add (a writer's batch of a conversation's turns) was
// lost whole and the conversation's paid order carried less than the sum.
// The tokens outlive the sum: a take (luaTakeTally) keeps them, and a sum
// started again from zero (taken or expired) starts with them, so that a
// call re-sent after a take took its first run adds nothing and answers
// "0" (what is left of that sum): starting from no tokens, the re-send
// added the turn again, to the next order, the paid one having taken it.
const luaAddTally = `
local tok = ' ' .. ARGV[5]
local r = redis.call('HMGET', KEYS[1], 'until', 'r')
local seen = r[2] and string.find(r[2] .. ' ', tok .. ' ', 1, true)
if not r[1] or tonumber(r[1]) <= tonumber(ARGV[2]) then
  if seen then return '0' end
  redis.call('DEL', KEYS[1])
elseif seen then
  return redis.call('HGET', KEYS[1], 'n')
end
local recent = (r[2] or '') .. tok
if #recent > 32 * #tok then recent = string.sub(recent, -32 * #tok) end
local inc = redis.pcall('HINCRBY', KEYS[1], 'n', ARGV[1])
if type(inc) == 'table' and inc.err then
  if not string.find(inc.err, 'overflow', 1, true) then return redis.error_reply(inc.err) end
  if string.sub(ARGV[1], 1, 1) == '-' then
    redis.call('HSET', KEYS[1], 'n', '-9223372036854775808')
  else
    redis.call('HSET', KEYS[1], 'n', '9223372036854775807')
  end
end
redis.call('HSET', KEYS[1], 'until', tonumber(ARGV[2]) + tonumber(ARGV[3]), 'r', recent)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
return redis.call('HGET', KEYS[1], 'n')
`

// KEYS: key, took (this take's own key, named by its token, on key's tag).
// ARGV: now_ms. Returns the sum as a string ("0" when absent or expired),
// exact, and removes it. What it took stays a minute in took, so a take
// re-sent after a lost reply returns the same sum, not "0" nor what was
// added since. took is not key: an AddTally between the take and its
// re-send starts key from zero (DEL), and with key went a memory kept
// there, so the re-sent take took that add and the first sum was lost.
// The adds' tokens ("r") stay in key, alone, for a minute: an add whose
// reply was lost and whose first run this take took is re-sent after it.
const luaTakeTally = `
local t = redis.call('GET', KEYS[2])
if t then return t end
local r = redis.call('HMGET', KEYS[1], 'n', 'until', 'r')
local out = '0'
if r[1] and r[2] and tonumber(r[2]) > tonumber(ARGV[1]) then out = r[1] end
redis.call('DEL', KEYS[1])
if r[3] then
  redis.call('HSET', KEYS[1], 'r', r[3])
  redis.call('PEXPIRE', KEYS[1], 60000)
end
redis.call('SET', KEYS[2], out, 'PX', 60000)
return out
`

// KEYS: key. ARGV: data, until_ms, physical_ms.
const luaPutExchange = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'until', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`

// KEYS: rec (an order's record), key (its refund record, on its tag).
// ARGV: version, data, until_ms, physical_ms. Writes the refund record as
// luaPutExchange does only while the order is at version. Returns {1}
// written, {-1} no such order, {-2, version} the order at another version.
const luaPutRefundRecord = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return {-1} end
if tonumber(v) ~= tonumber(ARGV[1]) then return {-2, tonumber(v)} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'd', ARGV[2], 'until', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1}
`

// KEYS: key (an order's refund record where an earlier version keeps it).
// ARGV: data, until_ms, physical_ms. Writes the record as luaPutExchange
// does, marked a copy (copy=1; that version's own write, a DEL and HSET,
// drops the mark), unless the key holds one with a later until: a record
// written later (every refund record has the same ttl), which a late copy
// of an earlier one must not replace. Returns 1 written, 0 left.
const luaCopyRefundRecord = `
local u = tonumber(redis.call('HGET', KEYS[1], 'until'))
if u and u > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'until', ARGV[2], 'copy', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`

// KEYS: key, ob, obv (the proposal's event queue, on its tag). ARGV: json,
// user, expires_ms, physical_ms, token, n, elems..., deadline_ms. Returns
// {1, obv, next}, also to the same call re-sent (its token is kept in w), or
// {0} when the id is taken. The queue gets the record's expiry (luaHold).
const luaPutRefund = luaObState + luaHold + luaPushHeld + luaFence + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'w') ~= ARGV[5] then return {0} end
  local v, nx = obstate(KEYS[2], KEYS[3])
  return {1, v, nx}
end
if stale(ARGV[#ARGV]) then return redis.error_reply(stale_intent) end
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'st', 'live', 'u', ARGV[2], 'exp', ARGV[3], 'w', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
pushheld(KEYS[2], KEYS[3], KEYS[1], ARGV[4], 6, tonumber(ARGV[6]))
local v, nx = obstate(KEYS[2], KEYS[3])
return {1, v, nx}
`

// KEYS: key (a refund proposal). ARGV: now_ms. A live proposal whose exp
// is at or before now_ms becomes 'expired'. Returns {1, json, state after},
// {-1} not found.
const luaExpireRefund = `
local r = redis.call('HMGET', KEYS[1], 'j', 'st', 'exp')
if not r[1] then return {-1} end
if r[2] == 'live' and tonumber(r[3]) <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'st', 'expired')
  r[2] = 'expired'
end
return {1, r[1], r[2]}
`

// KEYS: key, ob, obv (the proposal's event queue, on its tag). ARGV: user,
// new_state, now_ms, tombstone_ms, token, n, elems..., deadline_ms. Returns
// {1, json, obv, next}, also to the same call re-sent (its token is kept in
// by; its events are not pushed again), {-1} not found (or another user's),
// {-2} gone. Only the call that ends the proposal pushes its events, in the
// same step as the tombstone; the queue gets the tombstone's expiry
// (luaHold).
const luaFinishRefund = luaObState + luaHold + luaPushHeld + luaFence + `
local r = redis.call('HMGET', KEYS[1], 'j', 'st', 'u', 'exp', 'by')
if not r[1] or r[3] ~= ARGV[1] then return {-1} end
if r[2] == ARGV[2] and r[5] == ARGV[5] then -- this call's own answer, re-sent
  local v, nx = obstate(KEYS[2], KEYS[3])
  return {1, r[1], v, nx}
end
if r[2] ~= 'live' or tonumber(r[4]) <= tonumber(ARGV[3]) then return {-2} end
if stale(ARGV[#ARGV]) then return redis.error_reply(stale_intent) end
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'by', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
pushheld(KEYS[2], KEYS[3], KEYS[1], ARGV[4], 6, tonumber(ARGV[6]))
local v, nx = obstate(KEYS[2], KEYS[3])
return {1, r[1], v, nx}
`

// KEYS: head, rec, this call's token key. ARGV: seq, prev_hash, hash, json,
// token_ms. 0 when not the next link; -1 when a record is already stored at
// seq (the head was moved back past it), which is never written over. The
// token key is set for token_ms by the run that appends: a run go-redis
// re-sends after losing the first one's reply finds it and answers 1, as
// the first run did, also when another replica appended meanwhile; it
// answered 0, a conflict, for the append it had made.
const luaAppendAudit = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
local h = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local seq = tonumber(h[1] or '0')
if tonumber(ARGV[1]) ~= seq + 1 or ARGV[2] ~= (h[2] or '') then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'hash', ARGV[3])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[5])
return 1
`

// KEYS: head, rec, this call's token key. ARGV: token_ms, then seq,
// prev_hash, hash, json of each record of the batch in order (linked
// among themselves, checked before the call: store.CheckAuditBatch).
// luaAppendAudit for the lot in one run: 1 appended (or the token found:
// a re-sent run of the call that appended), 0 when the first record is not
// the next link, -i when the batch's i-th record's place already holds a
// record (the head was moved back past it). Every check is made before the
// first write, so a refusal appends nothing of the batch.
const luaAppendAuditBatch = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
local h = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local seq = tonumber(h[1] or '0')
local n = (#ARGV - 1) / 4
if n < 1 then return 1 end
if tonumber(ARGV[2]) ~= seq + 1 or ARGV[3] ~= (h[2] or '') then return 0 end
for i = 0, n - 1 do
  if redis.call('HEXISTS', KEYS[2], ARGV[2 + 4 * i]) == 1 then return -(i + 1) end
end
for i = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[2 + 4 * i], ARGV[5 + 4 * i])
end
redis.call('HSET', KEYS[1], 'seq', ARGV[2 + 4 * (n - 1)], 'hash', ARGV[4 + 4 * (n - 1)])
redis.call('SET', KEYS[3], ARGV[2 + 4 * (n - 1)], 'PX', ARGV[1])
return 1
`

// KEYS: head, rec. The first place (a field of decimal digits) after the
// head's seq holding a value, as a string; 0 when none. HLEN first: only a
// chain with more fields than its head's seq is scanned.
const luaStrayAudit = `
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') or 0
if redis.call('HLEN', KEYS[2]) <= seq then return '0' end
local first, firstN = '0', nil
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.match(f, '^%d+$') then
    local n = tonumber(f)
    if n > seq and (firstN == nil or n < firstN) then first, firstN = f, n end
  end
end
return first
`

// KEYS: text, client_user_set, client_user_erased, user_erased (an earlier
// version's mark), client_user_kept (how many numbers the set held after
// its last pass). ARGV: seq, user, text, until_ms, physical_ms, said_ms,
// client. 0 when the record's text belongs to another user; 2 when the
// user's texts were erased at or after said_ms (the text is not kept); 3
// when it kept the text and the set holds twice what it kept after its
// last pass (and at least 2 * textPruneFloor): the caller passes over it
// (pruneTexts), and the count is raised to the set's size meanwhile, so
// that the puts beside it do not pass too. Each put extends the set's
// expiry, so without the passes an active user's set kept every number
// ever written, their texts long run out (audit.retain_text); with them it
// holds at most about twice the user's kept texts, and a put reads about
// two members on average. The count expires with the set; one gone (or
// never set, as by earlier versions, which never pass) counts as 0.
const luaPutText = `
for i = 3, 4 do
  local e = redis.call('GET', KEYS[i])
  if e and tonumber(ARGV[6]) <= tonumber(e) then return 2 end
end
local u = redis.call('HGET', KEYS[1], 'u')
if u and u ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[2], 'c', ARGV[7], 'x', ARGV[3], 'until', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  if redis.call('PTTL', KEYS[5]) >= 0 then redis.call('PEXPIRE', KEYS[5], ARGV[5]) end
end
local n = redis.call('SCARD', KEYS[2])
local kept = tonumber(redis.call('GET', KEYS[5]) or '0')
if n >= 2 * math.max(kept, ` + textPruneFloor + `) then
  redis.call('SET', KEYS[5], n, 'PX', ARGV[5])
  return 3
end
return 1
`

// textPruneFloor: a user's set of text numbers is not passed over
// (pruneTexts) while it holds fewer than twice this.
const textPruneFloor = "8"

// KEYS: a set of text numbers (keys.auditClientUser), then text keys.
// ARGV: now_ms, grace_ms, then the numbers of the text keys. Deletes each
// text whose until is grace_ms or more before now_ms (as Redis's own expiry,
// which adds that grace, would) and takes the number of each text deleted or
// gone off the set; a text still kept keeps its number, so an erasure, which
// reads the set, still reaches it. Returns how many numbers it took off.
const luaPruneTexts = `
local limit = tonumber(ARGV[1]) - tonumber(ARGV[2])
local n = 0
for i = 2, #KEYS do
  local u = redis.call('HGET', KEYS[i], 'until')
  if not u or tonumber(u) <= limit then
    redis.call('DEL', KEYS[i])
    redis.call('SREM', KEYS[1], ARGV[i + 1])
    n = n + 1
  end
end
return n
`

// KEYS: text keys. ARGV: now_ms, grace_ms, then each text's end under the
// retention in force (its record's time plus retain, ms). A text kept
// longer is deleted when that end is past, as its expiry would; otherwise
// its until, and its expiry (until plus grace, as luaPutText sets it), are
// brought forward to the end. No text is made to expire later. A text's
// number stays in its user's set, which pruneTexts and erasures drop once
// they find the text gone. Returns how many it deleted.
const luaRetainTexts = `
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  local u = redis.call('HGET', KEYS[i], 'until')
  local e = tonumber(ARGV[i + 2])
  if u and tonumber(u) > e then
    if e <= now then
      redis.call('DEL', KEYS[i])
      n = n + 1
    else
      redis.call('HSET', KEYS[i], 'until', ARGV[i + 2])
      redis.call('PEXPIREAT', KEYS[i], e + tonumber(ARGV[2]))
    end
  end
end
return n
`

// KEYS: index set, this call's token key, then text keys. ARGV: user,
// client, token_ms, then the seqs of the text keys. Deletes each text of
// user whose client is client (a text of an earlier version names none: the
// caller matched it through its chain record) and takes its seq off the
// set. Returns how many were erased. The count is kept under the call's
// token for token_ms: a run go-redis re-sends after losing the first one's
// reply finds the texts gone, and answered 0, so the erasure's chain record
// and the admin API said no text was erased while the first run had erased
// them; it answers the first run's count.
const luaEraseText = `
local done = redis.call('GET', KEYS[2])
if done then return tonumber(done) end
local n = 0
for i = 3, #KEYS do
  local t = redis.call('HMGET', KEYS[i], 'u', 'c')
  if t[1] == ARGV[1] and (not t[2] or t[2] == ARGV[2]) then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
  redis.call('SREM', KEYS[1], ARGV[i + 1])
end
redis.call('SET', KEYS[2], n, 'PX', ARGV[3])
return n
`

// KEYS: a secret (keys.one("s", name)). ARGV: fresh, or "" to only read.
// Returns the secret Redis holds, setting it to fresh first when there is
// none; "" when there is none and fresh is "". Run by runMoney, so the
// generation raise and WAIT go behind it, found or made (GetOrCreateSecret).
const luaSecret = `
local v = redis.call('GET', KEYS[1])
if v then return v end
if ARGV[1] == '' then return '' end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`

// KEYS: the epoch marker. ARGV: expected, replacement. Replaces the marker
// only while it is the expected one; returns 1 if it did. Run once, by EVAL,
// when a Store finds that Redis went back to an earlier state (markLost).
const luaReplaceMarker = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`

// KEYS: the user's proposal index (keys.userRefunds). ARGV: id,
// expires_ms, now_ms, keep_ms. Adds id scored by its expiry, drops the ids
// expired by now, and keeps the set at least keep_ms, as long as its newest
// proposal can be confirmed.
const luaIndexRefund = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
`

// KEYS: the write probe's key. ARGV: ttl_ms. Ping's write probe
// (probeWrite): a write made as money writes are, reading the server's
// clock as the order scripts do (an ACL of categories lacks TIME).
const luaProbe = luaServerTime + `
redis.call('SET', KEYS[1], servertime(), 'PX', ARGV[1])
return 1
`

// KEYS: a key on an order's tag (Store.ConfirmOrder). A write that leaves
// nothing behind, made so that the WAIT behind it in the same pipeline
// waits for an offset past every earlier write to the order: a connection
// that wrote nothing has nothing for WAIT to wait for.
const luaConfirm = `
redis.call('SET', KEYS[1], '1')
redis.call('DEL', KEYS[1])
return 1
`

// KEYS: ob, obv[, rec]. ARGV: id, from (next_at as RFC 3339), next_ms,
// next_at, hold_ms. Moves the event queued under id to next_at only when
// its next_at is ARGV[2] (not claimed, retried or moved since it was read)
// and it is not leased (a claim's token, which luaRetry clears: its next_at
// is the lease's end, which a caller may have read, as the embedded
// store's lease record says). An event already at ARGV[4] answers as
// moved: go-redis re-sends a run whose reply was lost, and that second run,
// answering "not moved", left {idx}:ob at the old time (no index sync), where
// no claim looked for the event until then. Returns {1, obv, next} or {0}
// when not moved.
const luaReschedule = luaObState + luaHold + `
for i, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if obhead(raw).id == ARGV[1] then
    local e = cjson.decode(raw)
    if e.lease then return {0} end
    if e.ev.next_at == ARGV[4] then
      local v, nx = obstate(KEYS[1], KEYS[2])
      return {1, v, nx}
    end
    if e.ev.next_at ~= ARGV[2] then return {0} end
    e.next_ms = tonumber(ARGV[3])
    e.ev.next_at = ARGV[4]
    redis.call('LSET', KEYS[1], i - 1, cjson.encode(e))
    redis.call('INCR', KEYS[2])
    hold(KEYS[1], KEYS[2], KEYS[3], ARGV[5])
    local v, nx = obstate(KEYS[1], KEYS[2])
    return {1, v, nx}
  end
end
return {0}
`

// scripts are created per Store (no package-level mutable state).
type scripts struct {
	createOrder, updateOrder, enqueue, readTag, headKind, ack, retry  *goredis.Script
	ackAt, reschedule                                                 *goredis.Script
	enqueueOnceAll, claimEvent                                        *goredis.Script
	syncUser, loadUser, syncIndex, intent, dropLegacy                 *goredis.Script
	idxTime, indexClients, clientIndexed                              *goredis.Script
	claim, seen, counter, uncount, window, lease, putExchange         *goredis.Script
	announce                                                          *goredis.Script
	addTally, takeTally                                               *goredis.Script
	putRefund, finishRefund, appendAudit, appendBatch, putText, erase *goredis.Script
	pruneTexts                                                        *goredis.Script
	retainTexts                                                       *goredis.Script
	putRecord, copyRecord                                             *goredis.Script
	strayAudit                                                        *goredis.Script
	indexRefund, expireRefund                                         *goredis.Script
	secret, probe, confirm                                            *goredis.Script
}

func newScripts() *scripts {
	return &scripts{
		createOrder:    goredis.NewScript(luaCreateOrder),
		updateOrder:    goredis.NewScript(luaUpdateOrder),
		enqueue:        goredis.NewScript(luaEnqueue),
		enqueueOnceAll: goredis.NewScript(luaEnqueueOnceAll),
		claimEvent:     goredis.NewScript(luaClaimEvent),
		readTag:        goredis.NewScript(luaReadTag),
		headKind:       goredis.NewScript(luaHeadKind),
		ack:            goredis.NewScript(luaAck),
		ackAt:          goredis.NewScript(luaAckAt),
		reschedule:     goredis.NewScript(luaReschedule),
		retry:          goredis.NewScript(luaRetry),
		syncUser:       goredis.NewScript(luaSyncUser),
		loadUser:       goredis.NewScript(luaLoadUser),
		syncIndex:      goredis.NewScript(luaSyncIndex),
		intent:         goredis.NewScript(luaIntent),
		idxTime:        goredis.NewScript(luaIdxTime),
		indexClients:   goredis.NewScript(luaIndexClients),
		clientIndexed:  goredis.NewScript(luaClientIndexed),
		dropLegacy:     goredis.NewScript(luaDropLegacy),
		claim:          goredis.NewScript(luaClaim),
		announce:       goredis.NewScript(luaAnnounce),
		seen:           goredis.NewScript(luaSeen),
		counter:        goredis.NewScript(luaCounter),
		uncount:        goredis.NewScript(luaUncount),
		window:         goredis.NewScript(luaWindow),
		lease:          goredis.NewScript(luaLease),
		addTally:       goredis.NewScript(luaAddTally),
		takeTally:      goredis.NewScript(luaTakeTally),
		putExchange:    goredis.NewScript(luaPutExchange),
		putRefund:      goredis.NewScript(luaPutRefund),
		putRecord:      goredis.NewScript(luaPutRefundRecord),
		copyRecord:     goredis.NewScript(luaCopyRefundRecord),
		finishRefund:   goredis.NewScript(luaFinishRefund),
		indexRefund:    goredis.NewScript(luaIndexRefund),
		expireRefund:   goredis.NewScript(luaExpireRefund),
		appendAudit:    goredis.NewScript(luaAppendAudit),
		appendBatch:    goredis.NewScript(luaAppendAuditBatch),
		strayAudit:     goredis.NewScript(luaStrayAudit),
		putText:        goredis.NewScript(luaPutText),
		erase:          goredis.NewScript(luaEraseText),
		pruneTexts:     goredis.NewScript(luaPruneTexts),
		retainTexts:    goredis.NewScript(luaRetainTexts),
		secret:         goredis.NewScript(luaSecret),
		probe:          goredis.NewScript(luaProbe),
		confirm:        goredis.NewScript(luaConfirm),
	}
}

func (s *scripts) all() []*goredis.Script {
	return []*goredis.Script{
		s.createOrder, s.updateOrder, s.enqueue, s.enqueueOnceAll, s.claimEvent, s.readTag, s.headKind, s.ack, s.retry,
		s.syncUser, s.loadUser, s.syncIndex, s.intent, s.idxTime, s.dropLegacy, s.claim, s.announce, s.seen, s.counter, s.uncount, s.window, s.lease,
		s.addTally, s.takeTally, s.putExchange, s.putRefund, s.finishRefund, s.appendAudit, s.appendBatch, s.putText, s.erase,
		s.indexRefund, s.expireRefund, s.strayAudit, s.secret, s.probe, s.confirm, s.putRecord,
		s.copyRecord, s.ackAt, s.reschedule, s.indexClients, s.clientIndexed, s.pruneTexts, s.retainTexts,
	}
}
