-- session-vault's Redis protocol: every request a host sends for the key-value
-- component's imports (wasi:keyvalue store, atomics and batch, and session-vault's
-- indexes) is this one script, run with EVALSHA (EVAL the first time a server lacks it).
-- The Rust host (host/src/keyvalue/commands.rs) and the npm package
-- (packages/node/src/redis/) both load this file: there is no second copy to drift.
--
-- ARGV[1] names the operation; the keys are full keys (`{name}:` + the name inside the
-- bucket) and every key a request touches is in KEYS, so the script runs on a Redis
-- Cluster too (a bucket's keys share the hash tag `{name}`). Scores are decimal
-- milliseconds: a member's score at or above 2^53 (a Redis score is a double, exact up to
-- there) is stored as 2^53, and a bound at or above it is +inf. The batch operations
-- take any number of keys (they run in chunks inside).
--
--   op              KEYS                          ARGV after the op       reply
--   get             key                           -                       value or nil
--   get-many        key...                        -                       array (nil: absent)
--   set             key                           value                   OK
--   set-many        key...                        value... (one a key)    OK
--   delete-many     key...                        -                       removed count
--   exists          key                           -                       0 or 1
--   increment       key                           delta                   the sum
--   scan            fence (routes the request)    cursor, pattern, count  {cursor, keys}
--   commit          key, added index..., removed  see `commit` below      1, 0 or 2
--                   index..., ledger, fence
--   ledger          ledger                        after, limit            {last, max-deleted,
--                                                                          last-generated,
--                                                                          frame...}
--   read            key, ledger                   after, limit            {value, last,
--                                                                          max-deleted,
--                                                                          last-generated,
--                                                                          frame...}
--   trim-ledger     ledger                        before                  frames removed
--   add             index... (one an entry)       member, score, ...      number added
--   remove          index... (one a member)       member...               number removed
--   range           index                         min, max, limit         members
--   members-after   index                         after ('' = first), lim members
--   count           index                         min, max                count
--
-- The ledger is a stream of frames (field `f`), read after a stream id (exclusive);
-- `last` is the id of the last frame returned ('' if none), `max-deleted` the highest id
-- ever taken out of the stream, `last-generated` the highest it ever gave ('0-0' for no
-- stream). A read's value is nil when the key is absent.
--
-- Needs Redis 7.0 (PEXPIRETIME, XINFO's max-deleted-entry-id).

local MAX_SCORE = 9007199254740992
-- Keys per Redis call of a batch: Lua's unpack is bounded.
local CHUNK = 1000

-- A member's score.
local function score(text)
  if tonumber(text) >= MAX_SCORE then return '9007199254740992' end
  return text
end

-- A bound of a score range.
local function bound(text)
  if tonumber(text) >= MAX_SCORE then return '+inf' end
  return text
end

-- `command` on `args` CHUNK at a time; `each(reply)` for every call's reply.
local function chunked(command, args, step, each)
  for first = 1, #args, CHUNK * step do
    local last = math.min(first + CHUNK * step - 1, #args)
    each(redis.call(command, unpack(args, first, last)))
  end
end

-- Up to `limit` frames of ledger `key` after stream id `after`, with `prefix` in front.
local function ledger_page(key, after, limit, prefix)
  local page = prefix
  local head = #page
  page[head + 1] = ''
  page[head + 2] = '0-0'
  page[head + 3] = '0-0'
  if redis.call('EXISTS', key) == 0 then return page end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info - 1, 2 do
    if info[i] == 'max-deleted-entry-id' then page[head + 2] = info[i + 1] end
    if info[i] == 'last-generated-id' then page[head + 3] = info[i + 1] end
  end
  local entries = redis.call('XRANGE', key, '(' .. after, '+', 'COUNT', limit)
  for i = 1, #entries do
    page[head + 1] = entries[i][1]
    page[#page + 1] = entries[i][2][2] or ''
  end
  return page
end

local op = ARGV[1]

if op == 'get' then
  return redis.call('GET', KEYS[1])
elseif op == 'get-many' then
  local values = {}
  chunked('MGET', KEYS, 1, function(reply)
    for i = 1, #reply do values[#values + 1] = reply[i] end
  end)
  return values
elseif op == 'set' then
  return redis.call('SET', KEYS[1], ARGV[2])
elseif op == 'set-many' then
  local pairs = {}
  for i = 1, #KEYS do
    pairs[2 * i - 1] = KEYS[i]
    pairs[2 * i] = ARGV[i + 1]
  end
  chunked('MSET', pairs, 2, function() end)
  return redis.status_reply('OK')
elseif op == 'delete-many' then
  local removed = 0
  chunked('DEL', KEYS, 1, function(reply) removed = removed + reply end)
  return removed
elseif op == 'exists' then
  return redis.call('EXISTS', KEYS[1])
elseif op == 'increment' then
  return redis.call('INCRBY', KEYS[1], ARGV[2])
elseif op == 'scan' then
  return redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', ARGV[4])
elseif op == 'commit' then
  -- Compares KEYS[1] with what the handle read (ARGV[2] '1': the value ARGV[3]; '0':
  -- absent), sets it (ARGV[4] 'set' to ARGV[5], with PXAT ARGV[6] unless empty) or
  -- deletes it, then ZADDs ARGV[7] (member, score) pairs to KEYS[2..] (a new index, or
  -- one expiring earlier, takes the TTL ARGV[6]), ZREMs the count that follows from
  -- the keys after, and appends the frame in the last ARGV (unless empty) to the
  -- ledger, the key before the last. The last key is the bucket's fence: while it
  -- exists nothing is applied and the reply is 2. 1 if applied, 0 if the key changed
  -- (nothing applied).
  -- Every index is checked to be a sorted set before anything is written (Redis does
  -- not undo a script that fails part way), so a failure applies nothing. Redis runs a
  -- script alone, so no reader sees the record without its index entries.
  if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return 2 end
  local current = redis.call('GET', KEYS[1])
  if ARGV[2] == '1' then
    if current ~= ARGV[3] then return 0 end
  elseif current then
    return 0
  end
  local expires = ARGV[6]
  if expires ~= '' and tonumber(expires) >= MAX_SCORE then expires = '9007199254740992' end
  local adds = tonumber(ARGV[7])
  local removals = tonumber(ARGV[8 + 2 * adds])
  local frame = ARGV[9 + 2 * adds + removals]
  local ledger = KEYS[#KEYS - 1]
  if frame ~= '' then
    local kind = redis.call('TYPE', ledger)['ok']
    if kind ~= 'stream' and kind ~= 'none' then
      return redis.error_reply('ledger ' .. ledger .. ' holds a ' .. kind)
    end
  end
  local extend = {}
  for i = 1, adds + removals do
    local kind = redis.call('TYPE', KEYS[i + 1])['ok']
    if kind ~= 'zset' and kind ~= 'none' then
      return redis.error_reply('index ' .. KEYS[i + 1] .. ' holds a ' .. kind)
    end
    if i <= adds and expires ~= '' then
      -- A new index takes this expiry; one with a later expiry keeps it; one with none
      -- (rebuilt by check) keeps none.
      local t = redis.call('PEXPIRETIME', KEYS[i + 1])
      extend[i] = (t == -2) or (t >= 0 and t < tonumber(expires))
    end
  end
  -- The frame first: if the server refuses it, nothing else is written (Redis does not
  -- undo a script that fails part way).
  if frame ~= '' then
    redis.call('XADD', ledger, '*', 'f', frame)
  end
  if ARGV[4] == 'set' then
    if expires ~= '' then
      redis.call('SET', KEYS[1], ARGV[5], 'PXAT', expires)
    else
      redis.call('SET', KEYS[1], ARGV[5])
    end
  else
    redis.call('DEL', KEYS[1])
  end
  for i = 1, adds do
    redis.call('ZADD', KEYS[i + 1], score(ARGV[7 + 2 * i]), ARGV[6 + 2 * i])
    if extend[i] then
      redis.call('PEXPIREAT', KEYS[i + 1], expires)
    end
  end
  for i = 1, removals do
    redis.call('ZREM', KEYS[adds + i + 1], ARGV[8 + 2 * adds + i])
  end
  return 1
elseif op == 'ledger' then
  return ledger_page(KEYS[1], ARGV[2], ARGV[3], {})
elseif op == 'read' then
  return ledger_page(KEYS[2], ARGV[2], ARGV[3], {redis.call('GET', KEYS[1])})
elseif op == 'trim-ledger' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
elseif op == 'add' then
  local added = 0
  for i = 1, #KEYS do
    added = added + redis.call('ZADD', KEYS[i], score(ARGV[2 * i + 1]), ARGV[2 * i])
  end
  return added
elseif op == 'remove' then
  local removed = 0
  for i = 1, #KEYS do
    removed = removed + redis.call('ZREM', KEYS[i], ARGV[i + 1])
  end
  return removed
elseif op == 'range' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], bound(ARGV[2]), bound(ARGV[3]), 'LIMIT', 0, ARGV[4])
elseif op == 'members-after' then
  local start = '-'
  if ARGV[2] ~= '' then start = '(' .. ARGV[2] end
  return redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, ARGV[3])
elseif op == 'count' then
  return redis.call('ZCOUNT', KEYS[1], bound(ARGV[2]), bound(ARGV[3]))
end
return redis.error_reply('session-vault bucket script: no operation ' .. tostring(op))
