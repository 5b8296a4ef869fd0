-- MaaS gateway step for Envoy's Lua filter (standalone mode).
-- The chart prepends a generated table: TIERS, KEYS_FILE_ENV, RELOAD_SECONDS.
--
-- Request: strip client-sent identity headers, resolve the API key from the key file (mounted
-- Secret; path from an env var, never inline), set the identity as dynamic metadata (read by
-- the rate limit descriptors, so a client cannot spoof it), add window buckets, and add
-- stream_options.include_usage to streaming requests so their usage can be charged.
-- Response: turn the two rate limit filters' X-RateLimit-* headers into
-- x-ratelimit-{limit,remaining,reset}-{requests,tokens}, add x-ratelimit-consumed-tokens to
-- JSON responses and Retry-After to the gateway's own 429s.
-- Lua state is per worker: the key table is loaded once per worker (and re-read every
-- RELOAD_SECONDS); counters never live here, they live in the rate limit service.

local NS = "maas"
local USAGE_NS = "maas.usage"

-- Headers a client could use to claim an identity; removed before anything else.
local STRIP_PREFIX = "x-maas-"
local STRIP_EXACT = {
  ["x-user"] = true, ["x-user-id"] = true, ["x-tier"] = true, ["x-api-tier"] = true, ["x-user-tier"] = true,
  ["x-api-key-user"] = true,
  ["x-auth-request-user"] = true, ["x-auth-request-email"] = true, ["x-forwarded-user"] = true,
  ["x-remote-user"] = true, ["x-authenticated-userid"] = true, ["x-consumer-username"] = true,
}

local keys_by_value = nil
local keys_loaded_at = nil

local function json_escape(s)
  return (tostring(s):gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end))
end

local function error_json(message, etype, code)
  return string.format('{"error":{"message":"%s","type":"%s","param":null,"code":"%s"}}',
    json_escape(message), etype, code)
end

-- Parse "<tier> <user> <key>" lines; returns nil when the file cannot be read.
local function read_key_file(handle)
  local path = os.getenv(KEYS_FILE_ENV)
  if path == nil or path == "" then
    handle:logErr("maas: env " .. KEYS_FILE_ENV .. " is not set; every request is rejected")
    return nil
  end
  local f, err = io.open(path, "r")
  if f == nil then
    handle:logErr("maas: cannot read the API key file: " .. tostring(err))
    return nil
  end
  local t, n = {}, 0
  for line in f:lines() do
    if not line:match("^%s*#") then
      local tier, user, key = line:match("^%s*(%S+)%s+(%S+)%s+(%S+)%s*$")
      if tier ~= nil then
        if TIERS[tier] ~= nil then
          t[key] = { user = user, tier = tier }
          n = n + 1
        else
          handle:logWarn("maas: ignoring the key of user " .. user .. ": unknown tier " .. tier)
        end
      end
    end
  end
  f:close()
  handle:logInfo("maas: loaded " .. n .. " API keys")
  return t
end

local function key_table(handle)
  local now = os.time()
  local stale = keys_loaded_at == nil or (RELOAD_SECONDS > 0 and now - keys_loaded_at >= RELOAD_SECONDS)
  if stale then
    -- Keep the previous table if the file is briefly unreadable (Secret update in progress).
    keys_by_value = read_key_file(handle) or keys_by_value or {}
    keys_loaded_at = now
  end
  return keys_by_value
end

local function strip_identity_headers(headers)
  local drop = {}
  for name, _ in pairs(headers) do
    local n = string.lower(name)
    if n:sub(1, #STRIP_PREFIX) == STRIP_PREFIX or STRIP_EXACT[n] then
      drop[#drop + 1] = name
    end
  end
  for _, name in ipairs(drop) do
    headers:remove(name)
  end
end

local function credential(headers)
  local auth = headers:get("authorization")
  if auth == nil then return nil end
  local scheme, value = auth:match("^%s*(%S+)%s+(%S+)%s*$")
  if scheme == nil then return nil end
  scheme = string.lower(scheme)
  if scheme == "apikey" or scheme == "bearer" then return value end
  return nil
end

local function seconds_to_reset(window, now)
  return window - (now % window)
end

local function is_models_path(path)
  local p = path:match("^[^?]*")
  return p == "/v1/models" or p:sub(1, 11) == "/v1/models/"
end

-- Make a streaming request report usage in its final chunk (OpenAI stream_options).
local function with_include_usage(body)
  if not body:find('"stream"%s*:%s*true') then return body end
  if body:find('"include_usage"%s*:%s*true') then return body end
  local out, n = body:gsub('"include_usage"%s*:%s*false', '"include_usage":true', 1)
  if n > 0 then return out end
  out, n = body:gsub('"stream_options"%s*:%s*null', '"stream_options":{"include_usage":true}', 1)
  if n > 0 then return out end
  out, n = body:gsub('"stream_options"%s*:%s*{%s*}', '"stream_options":{"include_usage":true}', 1)
  if n > 0 then return out end
  out, n = body:gsub('"stream_options"%s*:%s*{', '"stream_options":{"include_usage":true,', 1)
  if n > 0 then return out end
  out, n = body:gsub('^%s*{', '{"stream_options":{"include_usage":true},', 1)
  return out
end

local function reject(handle, status, body, extra)
  local h = { [":status"] = tostring(status), ["content-type"] = "application/json" }
  for k, v in pairs(extra or {}) do h[k] = v end
  handle:respond(h, body)
end

function envoy_on_request(handle)
  local headers = handle:headers()
  strip_identity_headers(headers)

  local key = credential(headers)
  local id = nil
  if key ~= nil then id = key_table(handle)[key] end
  if id == nil then
    local msg = "Invalid API key provided."
    if key == nil then
      msg = "Missing API key. Send 'Authorization: Bearer <key>' or 'Authorization: APIKEY <key>'."
    end
    reject(handle, 401, error_json(msg, "invalid_api_key", "invalid_api_key"),
      { ["www-authenticate"] = 'Bearer realm="maas"' })
    return
  end

  local tier = TIERS[id.tier]
  local now = os.time()
  local path = headers:get(":path") or "/"
  local models = is_models_path(path)

  -- A token budget of 0 allows nothing; the rate limit service would still admit the first
  -- request (it checks tokens before they are known), so deny it here.
  if not models and tier.tokens_limit == 0 then
    local reset = seconds_to_reset(tier.tokens_window, now)
    reject(handle, 429, error_json("Token rate limit of tier '" .. id.tier .. "' is 0: no requests allowed.",
      "rate_limit_exceeded", "rate_limit_exceeded"), {
        ["retry-after"] = tostring(reset),
        ["x-ratelimit-limit-tokens"] = "0",
        ["x-ratelimit-remaining-tokens"] = "0",
        ["x-ratelimit-reset-tokens"] = tostring(reset),
      })
    return
  end

  local md = handle:streamInfo():dynamicMetadata()
  md:set(NS, "user", id.user)
  md:set(NS, "tier", id.tier)
  md:set(NS, "route", models and "models" or "model")
  md:set(NS, "requests_bucket", tostring(math.floor(now / tier.requests_window)))
  md:set(NS, "tokens_bucket", tostring(math.floor(now / tier.tokens_window)))
  md:set(NS, "started", tostring(now))

  -- The model server sees who is calling, but never the gateway key.
  headers:remove("authorization")
  headers:replace("x-maas-user", id.user)
  headers:replace("x-maas-tier", id.tier)

  local ctype = headers:get("content-type") or ""
  if not models and headers:get(":method") == "POST" and ctype:find("json", 1, true) then
    -- body() suspends the stream; header handles taken before it are invalid afterwards.
    local body = handle:body()
    if body ~= nil and body:length() > 0 then
      local raw = body:getBytes(0, body:length())
      local changed = with_include_usage(raw)
      if changed ~= raw then
        body:setBytes(changed)
        handle:headers():replace("content-length", tostring(#changed))
      end
    end
  end
end

-- Values of one X-RateLimit-* header per rate limit filter, keyed by the limit name
-- ("requests" / "tokens") that the rate limit service puts into X-RateLimit-Limit.
local function collect_ratelimit_headers(headers)
  local out = {}
  local n = headers:getNumValues("x-ratelimit-limit")
  for i = 0, n - 1 do
    local limit = headers:getAtIndex("x-ratelimit-limit", i) or ""
    local remaining = headers:getAtIndex("x-ratelimit-remaining", i)
    local name = limit:match('name="([^"]+)"')
    if name ~= nil then
      out[name] = { limit = tonumber(limit:match("^%s*(%d+)")), remaining = tonumber(remaining) }
    end
  end
  headers:remove("x-ratelimit-limit")
  headers:remove("x-ratelimit-remaining")
  headers:remove("x-ratelimit-reset")
  return out
end

local function consumed_tokens(handle)
  local usage = handle:streamInfo():dynamicMetadata():get(USAGE_NS)
  if usage == nil or usage["total_tokens"] == nil then return nil end
  return math.floor(tonumber(usage["total_tokens"]))
end

function envoy_on_response(handle)
  local md = handle:streamInfo():dynamicMetadata():get(NS)
  if md == nil or md["tier"] == nil then return end
  local headers = handle:headers()
  local tier = TIERS[md["tier"]]
  local now = os.time()
  local rl = collect_ratelimit_headers(headers)
  local resets = {
    requests = seconds_to_reset(tier.requests_window, now),
    tokens = seconds_to_reset(tier.tokens_window, now),
  }

  local consumed = nil
  local ctype = headers:get("content-type") or ""
  if md["route"] == "model" and headers:get(":status") == "200" and ctype:find("application/json", 1, true) then
    handle:body() -- wait for the whole JSON body: json_to_metadata has then read its usage
    headers = handle:headers() -- the handle taken before body() is no longer valid
    consumed = consumed_tokens(handle)
    if consumed ~= nil then
      headers:replace("x-ratelimit-consumed-tokens", tostring(consumed))
    end
  end

  for _, kind in ipairs({ "requests", "tokens" }) do
    local limit = tier[kind .. "_limit"]
    headers:replace("x-ratelimit-limit-" .. kind, tostring(limit))
    headers:replace("x-ratelimit-reset-" .. kind, tostring(resets[kind]))
    local st = rl[kind]
    if st ~= nil and st.remaining ~= nil then
      local remaining = st.remaining
      -- The token check runs before the response; subtract what this response costs.
      if kind == "tokens" and consumed ~= nil then remaining = math.max(0, remaining - consumed) end
      headers:replace("x-ratelimit-remaining-" .. kind, tostring(remaining))
    end
  end

  -- Our own 429 (not one from the model server): tell the client when to come back.
  if headers:get(":status") == "429" and headers:get("x-envoy-ratelimited") ~= nil then
    local wait = 0
    for kind, st in pairs(rl) do
      if st.remaining == 0 and resets[kind] ~= nil and resets[kind] > wait then wait = resets[kind] end
    end
    if wait == 0 then wait = math.max(resets.requests, resets.tokens) end
    headers:replace("retry-after", tostring(wait))
  end
end
