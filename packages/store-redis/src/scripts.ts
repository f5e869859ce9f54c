/**
 * The key layout and the Lua scripts, in one place. Every key of a store starts with `{prefix}:` so that
 * all of them share one Redis Cluster hash slot and a script may touch any of them:
 *
 *   {prefix}:token:<id>                          hash: Zoho's column names → values (absent fields not stored)
 *   {prefix}:ids                                 sorted set: every id, scored by insertion order
 *   {prefix}:seq                                 counter behind those scores
 *   {prefix}:idx:<column>:<sha1 hex of value>    sorted set: ids whose <column> holds that value
 *   {prefix}:lock:<sha256 hex of lock key>       string: the owner token of the lock's holder, expiring with its lease
 *
 * Index keys name a digest, never the value itself: values can be 64 KB, binary-unsafe for tools, and are
 * secrets. Lookups compare the stored value too, so a digest collision can never return the wrong token.
 * Lock keys name a digest too: a lock key is any string of up to 512 characters, glob characters included.
 * Locks are not tokens: deleteTokens leaves them to their holders, and no token script reads them.
 *
 * Each script runs atomically on the server, so a save's read-merge-write and its index updates can never
 * interleave with another client's. For the token scripts KEYS[1] is always `{prefix}:ids` (it routes the
 * script to the right cluster node); ARGV[1] is `{prefix}:`, from which the other key names of the same slot
 * are built. The lock scripts touch their one lock key, KEYS[1].
 *
 * The token scripts that write (save, delete, purge) take their deadline as ARGV[2], in microseconds of the
 * server's clock (clock.ts), and compare it with `TIME` before anything else: a script that reaches the
 * server after it (held up on the network, or by a server that stalled before reading its socket) returns
 * `{'expired'}` having written nothing. The store has then already answered BACKEND_UNAVAILABLE, or answers
 * it now. `TIME` before a write is allowed since scripts replicate their effects, not themselves (Redis 5
 * and later; the only mode of Redis 7).
 */
import { createHash } from 'node:crypto';
import { LOOKUP_COLUMNS, TOKEN_COLUMNS, type TokenColumn, type TokenRow } from '@crm/core/store-kit';

export const DEFAULT_PREFIX = 'crm-tokens';

/** Letters, digits and `: _ . -`: nothing that is a glob character, a hash-tag brace, a quote or a space. */
export const PREFIX_PATTERN = /^[A-Za-z0-9:_.-]{1,100}$/;
export const PREFIX_RULE = '1 to 100 characters of letters, digits, ":", "_", "." or "-"';

/** The columns with an index, from core's lookup rules. */
const INDEXED_COLUMNS = Object.values(LOOKUP_COLUMNS);

export interface StoreKeys {
  /** `{prefix}:`, the start of every key; the scripts build the other names from it. */
  base: string;
  ids: string;
  seq: string;
  /** SCAN MATCH pattern for every key of this store and no other. */
  scanPattern: string;
  token(id: string): string;
  lock(key: string): string;
}

/** Escapes Redis glob characters, so a pattern matches its text literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export function storeKeys(prefix: string): StoreKeys {
  const base = `{${prefix}}:`;
  return {
    base,
    ids: `${base}ids`,
    seq: `${base}seq`,
    scanPattern: `${escapeGlob(base)}*`,
    token: (id) => `${base}token:${id}`,
    // UTF-16 code units, as the key is: two keys that differ only in a lone surrogate stay two locks.
    lock: (key) => `${base}lock:${createHash('sha256').update(key, 'utf16le').digest('hex')}`,
  };
}

/** A row with every column absent: one object shape for every row read, which tokenFromRow reads fastest. */
function emptyRow(): TokenRow {
  return {
    id: null,
    user_name: null,
    client_id: null,
    client_secret: null,
    refresh_token: null,
    access_token: null,
    grant_token: null,
    expiry_time: null,
    redirect_url: null,
    api_domain: null,
  };
}

/** The find script's reply, a flat `[column, value, ...]` HGETALL, as the row `tokenFromRow` reads; other fields are left out. */
export function rowFromPairs(pairs: string[]): TokenRow {
  const row = emptyRow();
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const column = pairs[i] as TokenColumn;
    if (Object.hasOwn(row, column)) row[column] = pairs[i + 1] as string;
  }
  return row;
}

/** The save script's `['saved', value, ...]` reply, one value per TOKEN_COLUMNS entry in order, as a row. */
export function rowFromValues(reply: string[]): TokenRow {
  const row = emptyRow();
  for (const [i, column] of TOKEN_COLUMNS.entries()) row[column] = reply[i + 1] as string;
  return row;
}

export interface LuaScript {
  name: string;
  lua: string;
  sha: string;
}

const luaList = (names: readonly string[]) => `{${names.map((name) => `'${name}'`).join(', ')}}`;

/** Key names, from ARGV[1]. */
const NAMES = `
local base = ARGV[1]
local function token_key(id) return base .. 'token:' .. id end
local function index_key(column, value) return base .. 'idx:' .. column .. ':' .. redis.sha1hex(value) end
`;

/** The reply of a write script that reached the server after its deadline (ARGV[2]) and wrote nothing. */
export const EXPIRED = 'expired';

/** What the scripts that write share; they start with the deadline check, before any read or write. */
const COMMON = `${NAMES}
local deadline_at = redis.call('TIME')
if tonumber(deadline_at[1]) * 1000000 + tonumber(deadline_at[2]) >= tonumber(ARGV[2]) then return {'${EXPIRED}'} end
local ids_key = KEYS[1]
local INDEXED = ${luaList(INDEXED_COLUMNS)}
-- A script is not rolled back when a command fails in it: every key it will write is checked first, so that a
-- key of the wrong type (written by someone else) fails the script before anything changed.
local function expect_type(key, wanted)
  local found = redis.call('TYPE', key).ok
  if found ~= 'none' and found ~= wanted then
    error({err = 'WRONGTYPE Operation against a key holding the wrong kind of value'})
  end
end
local function delete_token(id)
  local key = token_key(id)
  local values = redis.call('HMGET', key, unpack(INDEXED))
  for i, column in ipairs(INDEXED) do
    if values[i] then expect_type(index_key(column, values[i]), 'zset') end
  end
  for i, column in ipairs(INDEXED) do
    if values[i] then redis.call('ZREM', index_key(column, values[i]), id) end
  end
  redis.call('DEL', key)
  redis.call('ZREM', ids_key, id)
end
`;

/**
 * The lookup both find and save start with. \`first(column, value)\` returns the id and the flat HGETALL reply
 * of the first token (in insertion order) whose column holds exactly value, and the index entries after it
 * (whose tokens were not read). One ZRANGE and, as nearly always, one HGETALL: the hash is read whole at
 * once, since the caller needs it anyway, rather than one HGET to compare and another HGETALL to return it.
 */
const FIRST = `
local function field_of(flat, column)
  for i = 1, #flat, 2 do
    if flat[i] == column then return flat[i + 1] end
  end
  return nil
end
local function first(column, value)
  local candidates = redis.call('ZRANGE', index_key(column, value), 0, -1)
  for position, id in ipairs(candidates) do
    local flat = redis.call('HGETALL', token_key(id))
    if field_of(flat, column) == value then
      local unread = {}
      for i = position + 1, #candidates do unread[#unread + 1] = candidates[i] end
      return id, flat, unread
    end
  end
  return nil, nil, {}
end
`;

/** ARGV: base, column, value. The stored hash (flat HGETALL reply) of the first token whose column holds value, or nil. */
const FIND = `${NAMES}${FIRST}
local id, flat = first(ARGV[2], ARGV[3])
return flat
`;

/**
 * ARGV: base, deadline, lookup column or '', lookup value, a fresh id, then the token's value for each
 * TOKEN_COLUMNS entry, id first ('' = absent). Returns {'saved', value, ...} with the stored value of every
 * TOKEN_COLUMNS entry in order ('' = absent), {'conflict'}, {'id-taken'} when the fresh id already exists (the
 * caller retries with another), or {'expired'}. The plan is core's planSave, restated in Lua so the read, the merge and the write are
 * one atomic step. It writes only what changed: a refreshed access token is one HSET of two fields and the
 * move of one index entry.
 */
const SAVE = `${COMMON}${FIRST}
local COLUMNS = ${luaList(TOKEN_COLUMNS)}
local lookup_column, lookup_value, fresh_id, given_id = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local id, flat, unread = nil, nil, nil
if given_id ~= '' then
  flat = redis.call('HGETALL', token_key(given_id))
  if #flat > 0 then id = given_id end
end
if not id and lookup_column ~= '' then id, flat, unread = first(lookup_column, lookup_value) end
local stored = {}
if id then
  for i = 1, #flat, 2 do stored[flat[i]] = flat[i + 1] end
elseif given_id ~= '' then
  id = given_id
else
  id = fresh_id
  if redis.call('EXISTS', token_key(id)) == 1 then return {'id-taken'} end
end
-- present values replace stored ones, absent ones keep theirs; the id stays the stored one
local merged, reply, changed = {}, {'saved'}, {}
for i, column in ipairs(COLUMNS) do
  local value = ARGV[5 + i]
  if value == '' then value = stored[column] end
  if column == 'id' then value = id end
  merged[column] = value
  reply[i + 1] = value or ''
  if value and value ~= stored[column] then
    changed[#changed + 1] = column
    changed[#changed + 1] = value
  end
end
-- no other token may hold the user name: a lookup by it has already read the index up to the token found
local user_name = merged['user_name']
if user_name then
  local others = unread
  if lookup_column ~= 'user_name' or not unread then others = redis.call('ZRANGE', index_key('user_name', user_name), 0, -1) end
  for _, owner in ipairs(others) do
    if owner ~= id and redis.call('HGET', token_key(owner), 'user_name') == user_name then return {'conflict'} end
  end
end
-- read before any write, on every save: a key of the wrong type fails the script here, having changed nothing
for _, column in ipairs(INDEXED) do
  local old, new = stored[column], merged[column]
  if old ~= new then
    if old then expect_type(index_key(column, old), 'zset') end
    if new then expect_type(index_key(column, new), 'zset') end
  end
end
if #changed > 0 then expect_type(token_key(id), 'hash') end
local score = redis.call('ZSCORE', ids_key, id)
if not score then expect_type(base .. 'seq', 'string') end
if not score then
  score = redis.call('INCR', base .. 'seq')
  redis.call('ZADD', ids_key, score, id)
end
for _, column in ipairs(INDEXED) do
  local old, new = stored[column], merged[column]
  if old ~= new then
    if old then redis.call('ZREM', index_key(column, old), id) end
    if new then redis.call('ZADD', index_key(column, new), score, id) end
  end
end
if #changed > 0 then redis.call('HSET', token_key(id), unpack(changed)) end
return reply
`;

/** ARGV: base, deadline, id. Removes the token and its index entries: 1, or {'expired'}. */
const DELETE = `${COMMON}
delete_token(ARGV[3])
return 1
`;

/**
 * KEYS[2..]: keys a SCAN of this store's prefix returned. A token key removes its token whole (hash, index
 * entries, id); an index key keeps only entries of tokens that still exist (a save may have run since);
 * the id set empties itself as tokens go; the counter goes once no token is left; a lock key stays;
 * anything else is removed. ARGV: base, deadline. Returns 1, or {'expired'}.
 */
const PURGE = `${COMMON}
local token_prefix, index_prefix, seq_key = base .. 'token:', base .. 'idx:', base .. 'seq'
local lock_prefix = base .. 'lock:'
for i = 2, #KEYS do
  local key = KEYS[i]
  if key:sub(1, #lock_prefix) == lock_prefix then
    -- a lock belongs to its holder, who may be refreshing a token right now; its lease ends it
  elseif key:sub(1, #token_prefix) == token_prefix then
    delete_token(key:sub(#token_prefix + 1))
  elseif key:sub(1, #index_prefix) == index_prefix then
    for _, id in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if redis.call('EXISTS', token_key(id)) == 0 then redis.call('ZREM', key, id) end
    end
  elseif key == seq_key then
    if redis.call('EXISTS', ids_key) == 0 then redis.call('DEL', key) end
  elseif key ~= ids_key then
    redis.call('DEL', key)
  end
end
return 1
`;

/** KEYS[1]: a lock key; ARGV: owner, lease in ms. Extends the lease only while this owner holds it: 1, else 0. */
const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
`;

/** KEYS[1]: a lock key; ARGV: owner. Deletes the lock only while this owner holds it: 1, else 0. */
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
`;

/** KEYS[1]: `{prefix}:ids`, so that a Cluster asks the node that runs the store's scripts. The server's clock. */
const TIME = `
return redis.call('TIME')
`;

function script(name: string, lua: string): LuaScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

export const SCRIPTS = {
  find: script('find', FIND),
  save: script('save', SAVE),
  delete: script('delete', DELETE),
  purge: script('purge', PURGE),
  renewLock: script('renewLock', RENEW_LOCK),
  releaseLock: script('releaseLock', RELEASE_LOCK),
  time: script('time', TIME),
};
