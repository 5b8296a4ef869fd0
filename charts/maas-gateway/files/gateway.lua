-- MaaS gateway step for Envoy's Lua filter (standalone mode).
-- The chart prepends a generated table (TIERS, KEYS_FILE_ENV, HMAC_FILE_ENV, RELOAD_SECONDS,
-- DEFAULT_MAX_TOKENS, VALIDATE_PATH, ROUTE_BY_MODEL, MODELS_JSON, LLAMA_STACK_PREFIX, ONWARD_SECONDS,
-- LLAMA_STACK_CHUNKING),
-- files/json.lua (the `json` decoder/encoder) and files/sha256.lua (`sha256.hmac_hex`).
--
-- Request: strip client-sent identity headers, resolve the API key from the key file (mounted
-- Secret; path from an env var, never inline), set the identity as dynamic metadata (read by
-- the rate limit descriptors, so a client cannot spoof it), add window buckets. A model call's
-- body is parsed as JSON (whatever its Content-Type) or refused with 400/415; streaming calls
-- get stream_options.include_usage=true so their usage can be charged, and every call starts
-- with a conservative charge estimate that the response's real usage replaces.
-- With ROUTE_BY_MODEL, a model call's `model` picks its catalog entry (MODELS_JSON): unknown 404,
-- not for the caller's tier 403, missing 400, all before any budget is checked; the entry's
-- Envoy cluster goes into ROUTE_HEADER (the route's cluster_header) and its served name replaces
-- the public id in the body. GET /v1/models answers the caller's entries from the catalog.
-- An entry's limits (rpm, tpm, tiers.<tier>.tpm) name the model in the metadata keys of its
-- budgets (model_rpm, model_tpm, tier_model_tpm), which the model budget filters' descriptors read;
-- its tokenCost weights every token charge: ceil(prompt * input + completion * output).
-- Response: turn the rate limit filters' X-RateLimit-* headers into
-- x-ratelimit-{limit,remaining,reset}-{requests,tokens} of the tightest budget of each kind, add
-- x-ratelimit-consumed-tokens and x-maas-tokens-charged to JSON responses, the weights to every
-- model response, and Retry-After and the refusing budget's name to the gateway's own 429s; a
-- failed call is charged 0. A stream's weighted charge is computed when its last chunk has passed.
-- With LLAMA_STACK_PREFIX, `<prefix>/v1/...` is llama-stack's API behind this gateway (see "llama-stack
-- behind the gateway" below): the caller's key is checked and charged here, and llama-stack gets an
-- onward credential for its own model calls, which are checked for the caller's tier and charged nothing.
-- Lua state is per worker: the key table is loaded once per worker (and re-read every
-- RELOAD_SECONDS); counters never live here, they live in the rate limit service.

local NS = "maas"
local USAGE_NS = "maas.usage"
-- What the usage metrics read (the chart's stats access loggers; see "Metering" below).
local METER_NS = "maas.meter"

-- Headers a client could use to claim an identity; removed before anything else (kept equal to
-- maas-gateway.strippedHeaders, which kuadrant mode uses).
local STRIP_PREFIX = "x-maas-"
local STRIP_EXACT = {
  ["x-user"] = true, ["x-user-id"] = true, ["x-tier"] = true, ["x-api-tier"] = true, ["x-user-tier"] = true,
  ["x-api-key-user"] = true,
  ["x-auth-request-user"] = true, ["x-auth-request-email"] = true, ["x-forwarded-user"] = true,
  ["x-remote-user"] = true, ["x-authenticated-userid"] = true, ["x-consumer-username"] = true,
}

local function json_escape(s)
  return (tostring(s):gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end))
end

-- An OpenAI-style error body; `param` names the request field at fault (JSON null when nil).
local function error_json(message, etype, code, param)
  local field = param == nil and "null" or ('"' .. json_escape(param) .. '"')
  return string.format('{"error":{"message":"%s","type":"%s","param":%s,"code":"%s"}}',
    json_escape(message), etype, field, code)
end

-- The key file: one key per line, `<tier> <user> <credential> [<field>=<value> ...]`; lines
-- starting with # are ignored. The credential is the key itself (a plaintext store, still read)
-- or `hmac-sha256:<hex>`: HMAC-SHA-256 of the key under the install's secret (the file named by
-- HMAC_FILE_ENV). Fields: created, expires, revoked (UTC times, 2026-12-06T03:00:00Z; a key is
-- refused from its expires or revoked time on) and label.<name>=<value> (read by the key CLI).
local HASH_PREFIX = "hmac-sha256:"

-- Seconds since the epoch of a UTC time `YYYY-MM-DDTHH:MM:SSZ`, or nil.
local function utc_seconds(text)
  local y, mo, d, h, mi, s = text:match("^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
  if y == nil then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  -- Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

local function read_secret_file(handle, env)
  local path = os.getenv(env)
  if path == nil or path == "" then return nil end
  local f = io.open(path, "r")
  if f == nil then
    handle:logErr("maas: cannot read the key hashing secret (env " .. env .. ")")
    return nil
  end
  local value = f:read("*a")
  f:close()
  value = value:gsub("%s+$", "")
  if value == "" then return nil end
  return value
end

-- One key line's entry, or nil and why the line is skipped (never naming the key).
local function parse_key_line(line)
  local tier, user, credential, rest = line:match("^%s*(%S+)%s+(%S+)%s+(%S+)(.*)$")
  if tier == nil then return nil end
  local entry = { user = user, tier = tier }
  for field in rest:gmatch("%S+") do
    local name, value = field:match("^([^=]+)=(.*)$")
    if name == nil then return nil, "a field is not <name>=<value>" end
    if name == "expires" or name == "revoked" or name == "created" then
      local at = utc_seconds(value)
      if at == nil then return nil, name .. " is not a UTC time like 2026-12-06T03:00:00Z" end
      entry[name] = at
    end
  end
  if TIERS[tier] == nil then return nil, "unknown tier " .. tier end
  if credential:sub(1, #HASH_PREFIX) == HASH_PREFIX then
    entry.hash = string.lower(credential:sub(#HASH_PREFIX + 1))
    if not entry.hash:match("^" .. string.rep("%x", 64) .. "$") then
      return nil, "the hash is not 64 hex digits"
    end
  else
    entry.key = credential
  end
  return entry
end

-- The key store: {plain = {key -> entry}, hashed = {hex -> entry}, secret = HMAC key or nil};
-- nil when the file cannot be read.
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
  local store = { plain = {}, hashed = {}, secret = read_secret_file(handle, HMAC_FILE_ENV) }
  local n, hashed = 0, 0
  for line in f:lines() do
    if not line:match("^%s*#") then
      local entry, why = parse_key_line(line)
      if entry ~= nil and entry.hash ~= nil and store.secret == nil then
        entry, why = nil, "hashed keys need the key hashing secret (env " .. HMAC_FILE_ENV .. ")"
      end
      if entry ~= nil then
        if entry.hash ~= nil then
          store.hashed[entry.hash] = entry
          hashed = hashed + 1
        else
          store.plain[entry.key] = entry
          entry.key = nil
        end
        n = n + 1
      elseif why ~= nil then
        local user = line:match("^%s*%S+%s+(%S+)") or "?"
        handle:logWarn("maas: ignoring a key of user " .. user .. ": " .. why)
      end
    end
  end
  f:close()
  handle:logInfo("maas: loaded " .. n .. " API keys (" .. hashed .. " hashed)")
  return store
end

local EMPTY_STORE = { plain = {}, hashed = {} }
local key_store = nil
local keys_loaded_at = nil

local function current_store(handle)
  local now = os.time()
  local stale = keys_loaded_at == nil or (RELOAD_SECONDS > 0 and now - keys_loaded_at >= RELOAD_SECONDS)
  if stale then
    -- Keep the previous store if the file is briefly unreadable (Secret update in progress).
    key_store = read_key_file(handle) or key_store or EMPTY_STORE
    keys_loaded_at = now
  end
  return key_store
end

-- The identity of a presented key: its entry, or nil and the 401 message. The log names the
-- user of an expired or revoked key, never the key.
local INVALID_KEY = "Invalid API key provided."

-- Onward credentials ----------------------------------------------------------------------------
-- llama-stack behind the gateway makes model calls for its caller through this gateway. The call
-- that reached llama-stack was charged at the front door, so these onward calls must not be charged
-- again, and nobody else may claim to be one. The front door therefore hands llama-stack, in place of
-- the caller's key, `maas-onward:<expiry>:<tier>:<mac>:<user>`, where mac is HMAC-SHA-256 over
-- expiry, tier and user under the key hashing secret (apiKeys.hmac, which only the gateway reads).
-- It names the caller (so llama-stack's access policy and the onward call's model access are the
-- caller's), expires ONWARD_SECONDS after the call started, and is never shown to the caller.
local ONWARD_PREFIX = "maas-onward:"

local function onward_mac(secret, expiry, tier, user)
  return sha256.hmac_hex(secret, "maas-onward\n" .. expiry .. "\n" .. tier .. "\n" .. user)
end

local function mint_onward(secret, id, now)
  local expiry = tostring(now + (ONWARD_SECONDS or 900))
  return ONWARD_PREFIX .. expiry .. ":" .. id.tier .. ":" .. onward_mac(secret, expiry, id.tier, id.user) .. ":" .. id.user
end

-- The identity an onward credential names, or nil and the 401 message.
local function onward_identity(store, key)
  local expiry, tier, mac, user = key:match("^maas%-onward:(%d+):([^:]+):(%x+):(.+)$")
  if expiry == nil or store.secret == nil or TIERS[tier] == nil then return nil, INVALID_KEY end
  if string.lower(mac) ~= onward_mac(store.secret, expiry, tier, user) then return nil, INVALID_KEY end
  if os.time() > tonumber(expiry) then
    return nil, "This onward credential expired (llama-stack's call took longer than llamaStack.onwardSeconds)."
  end
  return { user = user, tier = tier, onward = true }
end

local function identify(handle, key)
  local store = current_store(handle)
  if key:sub(1, #ONWARD_PREFIX) == ONWARD_PREFIX then return onward_identity(store, key) end
  local entry = store.plain[key]
  if entry == nil and store.secret ~= nil and next(store.hashed) ~= nil then
    entry = store.hashed[sha256.hmac_hex(store.secret, key)]
  end
  if entry == nil then return nil, INVALID_KEY end
  local now = os.time()
  if entry.revoked ~= nil and now >= entry.revoked then
    handle:logInfo("maas: refused a revoked API key of user " .. entry.user)
    return nil, "This API key was revoked. Ask for a new key."
  end
  if entry.expires ~= nil and now >= entry.expires then
    handle:logInfo("maas: refused an expired API key of user " .. entry.user)
    return nil, "This API key expired. Ask for a new key."
  end
  return entry
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

local KEY_FORMS = "Send 'Authorization: Bearer <key>' or 'Authorization: APIKEY <key>'."

-- The key a request carries, or nil and why not (never quoting the header: it may hold a key).
local function credential(headers)
  local auth = headers:get("authorization")
  -- No header, an empty one, or a scheme alone (a client whose key setting is empty sends "Bearer ").
  local lone = auth ~= nil and string.lower(auth:match("^%s*(.-)%s*$"))
  if auth == nil or lone == "" or lone == "bearer" or lone == "apikey" then
    return nil, "Missing API key. " .. KEY_FORMS
  end
  local scheme, value = auth:match("^%s*(%S+)%s+(%S+)%s*$")
  if scheme ~= nil then
    scheme = string.lower(scheme)
    if scheme == "apikey" or scheme == "bearer" then return value end
  end
  return nil, "The Authorization header is not of a form this gateway reads (a key without its scheme?). " .. KEY_FORMS
end

local function seconds_to_reset(window, now)
  return window - (now % window)
end

local function is_models_path(path)
  local p = path:match("^[^?]*")
  return p == "/v1/models" or p:sub(1, 11) == "/v1/models/"
end

-- A request body that must be a JSON object, parsed: the document, or nil and why it is refused.
local function parse_object(raw)
  if raw == "" then return nil, "The request body is empty; a JSON object is expected." end
  local doc, why = json.decode(raw)
  if doc == nil then return nil, "The request body is not valid JSON (" .. why .. ")." end
  if getmetatable(doc) ~= json.OBJECT then return nil, "The request body must be a JSON object." end
  return doc
end

-- A model call's body, parsed: the document, or nil and why it is refused.
local function parse_model_call(raw)
  local doc, why = parse_object(raw)
  if doc == nil then return nil, why end
  -- Model servers coerce "true" or 1 to true: only real booleans are unambiguous.
  local stream = doc["stream"]
  if stream ~= nil and stream ~= json.NULL and type(stream) ~= "boolean" then
    return nil, "'stream' must be true or false."
  end
  local options = doc["stream_options"]
  if options ~= nil and options ~= json.NULL then
    if getmetatable(options) ~= json.OBJECT then return nil, "'stream_options' must be an object." end
    local usage = options["include_usage"]
    if usage ~= nil and usage ~= json.NULL and type(usage) ~= "boolean" then
      return nil, "'stream_options.include_usage' must be true or false."
    end
  end
  return doc
end

-- The OpenAI endpoints whose streams report usage only when asked (stream_options); the
-- Responses API always ends its stream with usage, other calls fall back to the estimate.
local USAGE_OPT_IN = { ["/v1/chat/completions"] = true, ["/v1/completions"] = true }

-- Make a streaming call report usage in its final chunk (OpenAI stream_options); returns
-- whether the document changed.
local function force_include_usage(doc, path)
  if not USAGE_OPT_IN[path:match("^[^?]*")] or doc["stream"] ~= true then return false end
  local options = doc["stream_options"]
  if options == nil or options == json.NULL then
    options = json.object()
    doc["stream_options"] = options
  end
  if options["include_usage"] == true then return false end
  options["include_usage"] = true
  return true
end

-- Tokens charged when no usage arrives (the client aborted the stream, or the model server
-- sent none): every byte of the request counted as a prompt token (an upper bound for
-- byte-level BPE tokenizers) plus the completion the call allows (max_completion_tokens,
-- else max_tokens, else the Responses API's max_output_tokens, else DEFAULT_MAX_TOKENS) for each of its n choices.
-- Returns the prompt and completion parts of the estimate.
local function charge_estimate(doc, body_bytes)
  local function count(key)
    local n = json.number(doc[key])
    if n ~= nil and n >= 0 then return math.floor(n) end
    return nil
  end
  local completion = count("max_completion_tokens") or count("max_tokens") or count("max_output_tokens") or DEFAULT_MAX_TOKENS
  local choices = math.max(count("n") or 1, 1)
  return body_bytes, completion * choices
end

-- Weighted charges -----------------------------------------------------------------------------

-- The weights of a catalog entry (tokenCost; 1 and 1 without an entry).
local function token_cost(entry)
  local cost = entry and entry["cost"]
  local w_in, w_out = 1, 1
  if getmetatable(cost) == json.OBJECT then
    w_in = json.number(cost["input"]) or 1
    w_out = json.number(cost["output"]) or 1
  end
  return w_in, w_out
end

-- ceil(prompt * w_in + completion * w_out), robust to float noise (0.1 * 30 is 3.0000000000000004).
local function weighted(prompt, completion, w_in, w_out)
  local x = prompt * w_in + completion * w_out
  return math.ceil(x - 1e-9)
end

-- The weighted charge of a response's usage (maas.usage, set by json_to_metadata and
-- sse_to_metadata), or nil without usage. Without the parts, all of total_tokens is charged at
-- the larger weight (an upper bound).
local function usage_charge(usage, w_in, w_out)
  if usage == nil then return nil end
  local prompt, completion = tonumber(usage["prompt_tokens"]), tonumber(usage["completion_tokens"])
  if prompt ~= nil and completion ~= nil then return weighted(prompt, completion, w_in, w_out) end
  local total = tonumber(usage["total_tokens"])
  if total ~= nil then return weighted(0, total, w_in, math.max(w_in, w_out)) end
  return nil
end

-- Model routing ---------------------------------------------------------------------------------

-- The request header the route's cluster_header reads (a client's own is stripped with the other
-- x-maas- headers, and the route removes it before the model server sees it).
local ROUTE_HEADER = "x-maas-cluster"
local DEFAULT_CLUSTER = "maas_upstream"
local catalog = nil

-- Public id -> {cluster, served, tiers?, meta}, decoded once per worker.
local function model_catalog()
  if catalog == nil then
    local doc = json.decode(MODELS_JSON or "{}")
    if doc == nil or getmetatable(doc) ~= json.OBJECT then error("MODELS_JSON is not a JSON object") end
    catalog = doc
  end
  return catalog
end

local function tier_may_use(entry, tier)
  local tiers = entry["tiers"]
  if tiers == nil or tiers == json.NULL then return true end
  for _, t in ipairs(tiers) do
    if t == tier then return true end
  end
  return false
end

-- The catalog entry a model call names, or nil, HTTP status and error body.
local function route_model(doc, tier)
  local model = doc["model"]
  if model == nil or model == json.NULL then
    return nil, 400, error_json("The request names no model: set 'model' to one of GET /v1/models.",
      "invalid_request_error", "model_missing")
  end
  if type(model) ~= "string" then
    return nil, 400, error_json("'model' must be a string.", "invalid_request_error", "invalid_model")
  end
  local entry = model_catalog()[model]
  if entry == nil then
    return nil, 404, error_json("The model '" .. model .. "' does not exist; GET /v1/models lists yours.",
      "invalid_request_error", "model_not_found")
  end
  if not tier_may_use(entry, tier) then
    return nil, 403, error_json("Tier '" .. tier .. "' may not use the model '" .. model .. "'.",
      "permission_denied", "model_not_allowed")
  end
  return entry
end

-- One OpenAI model object with the entry's catalog metadata as extra fields.
local function model_object(id, entry)
  local parts = { '"id":' .. json.encode(id), '"object":"model"', '"created":0', '"owned_by":"maas"' }
  local meta = entry["meta"]
  if getmetatable(meta) == json.OBJECT then
    local names = {}
    for name, _ in pairs(meta) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do parts[#parts + 1] = json.encode(name) .. ":" .. json.encode(meta[name]) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- GET /v1/models as the caller's tier sees it.
local function model_list(tier)
  local ids = {}
  for id, entry in pairs(model_catalog()) do
    if tier_may_use(entry, tier) then ids[#ids + 1] = id end
  end
  table.sort(ids)
  local items = {}
  for i, id in ipairs(ids) do items[i] = model_object(id, model_catalog()[id]) end
  return '{"object":"list","data":[' .. table.concat(items, ",") .. "]}"
end

-- Have Envoy pick the route again (cluster_header reads the header then). Envoy's Lua filter also
-- clears the route cache itself when a script changes request headers (its clear_route_cache
-- setting, on by default); the explicit call covers builds whose handle has the method.
local function reroute(handle)
  if handle.clearRouteCache ~= nil then handle:clearRouteCache() end
end

local function unescape_path(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Metering ------------------------------------------------------------------------------------
-- Envoy's stats access loggers (envoy-configmap.yaml) turn every metered call into Prometheus
-- series when it ends, aborted streams included. They read maas.meter: model (the catalog id, so the
-- label takes only catalog values, "unknown" or "default"), input and output (the tokens counted:
-- the response's usage, or the request's estimate when none arrived, 0 for a failed call),
-- refused (the budget or rule that refused the call) and served (set on a 2xx answer: its latency
-- is measured). A call is metered once its model label is set.

local function meter(handle, fields)
  local md = handle:streamInfo():dynamicMetadata()
  -- An onward call is part of a call metered at the front door.
  local own = md:get(NS)
  if own ~= nil and own["route"] == "onward" then return end
  for k, v in pairs(fields) do md:set(METER_NS, k, v) end
  -- Every counter of a metered call reads a number: a call refused before its estimate is charged
  -- nothing (Envoy's stats logger would skip a missing value and log an error for each such call).
  if fields.model ~= nil then
    local usage = md:get(USAGE_NS)
    if usage == nil or usage["charged"] == nil then md:set(USAGE_NS, "charged", 0) end
  end
end

-- The model label of a model call: the catalog id it names, "unknown" for any other name (the
-- label's values stay bounded by the catalog), "default" without routing by model.
local function meter_model(doc)
  if not ROUTE_BY_MODEL then return "default" end
  local model = doc and doc["model"]
  if type(model) == "string" and model_catalog()[model] ~= nil then return model end
  return "unknown"
end

-- The tier's current request and token windows (the rate limit descriptors' bucket keys) and the
-- call's start.
local function set_windows(md, tier, now)
  md:set(NS, "requests_bucket", tostring(math.floor(now / tier.requests_window)))
  md:set(NS, "tokens_bucket", tostring(math.floor(now / tier.tokens_window)))
  md:set(NS, "started", tostring(now))
end

local function reject(handle, status, body, extra)
  local h = { [":status"] = tostring(status), ["content-type"] = "application/json" }
  for k, v in pairs(extra or {}) do h[k] = v end
  handle:respond(h, body)
end

-- llama-stack's `custom` auth provider (llama_stack/core/server/auth_providers.py,
-- CustomAuthProvider, 0.7.3) POSTs {"api_key": "...", "request": {"path", "headers", "params"}}
-- for every API call it receives and accepts a 200 answer {"principal": "..."};
-- any other status is a 401 to its caller. The key is checked against the same key file as every
-- model call (one source of truth); this costs no request and no tokens.
-- The request's X-LlamaStack-Provider-Data header carries the key llama-stack sends to the models
-- (vllm_api_token / openai_api_key, read by OpenAIMixin._get_api_key_from_config_or_provider_data).
-- vllm_api_token is required, and every key field must be the caller's own key: nobody authenticates with one key and spends
-- another's budget, and a key configured in llama-stack itself is never spent for a caller.
local PROVIDER_KEY_FIELDS = { "vllm_api_token", "openai_api_key" }
-- Required: models behind this gateway are remote::vllm. (openai_api_key is optional: remote::openai
-- models are an external MaaS whose own key llama-stack holds; if sent, it must match too.)
local FORWARDED_FIELD = "vllm_api_token"

local function validate_credentials(handle, raw)
  local doc = json.decode(raw)
  if doc == nil or getmetatable(doc) ~= json.OBJECT or type(doc["api_key"]) ~= "string" then
    return 400, error_json("Expected a JSON object with a string 'api_key'.", "invalid_request_error", "invalid_request_body")
  end
  local id, refused = identify(handle, doc["api_key"])
  if id == nil then
    return 401, error_json(refused, "invalid_api_key", "invalid_api_key")
  end
  local request = doc["request"]
  local sent = nil
  if getmetatable(request) == json.OBJECT and getmetatable(request["headers"]) == json.OBJECT then
    sent = request["headers"]["x-llamastack-provider-data"]
  end
  local missing = error_json("Send your API key in X-LlamaStack-Provider-Data as well: " ..
    '{"vllm_api_token": "<key>"}. llama-stack spends it on the model calls it makes for you.',
    "permission_denied", "provider_data_missing")
  if type(sent) ~= "string" then return 403, missing end
  local data = json.decode(sent)
  if data == nil or getmetatable(data) ~= json.OBJECT then
    return 400, error_json("X-LlamaStack-Provider-Data is not a JSON object.", "invalid_request_error", "invalid_provider_data")
  end
  for _, field in ipairs(PROVIDER_KEY_FIELDS) do
    local value = data[field]
    if value ~= nil and value ~= json.NULL and value ~= doc["api_key"] then
      return 403, error_json("X-LlamaStack-Provider-Data field '" .. field .. "' must carry the caller's own API key.",
        "permission_denied", "provider_key_mismatch")
    end
  end
  if data[FORWARDED_FIELD] == nil then return 403, missing end
  -- No attributes: llama-stack's default access policy lets users who share an attribute value
  -- (e.g. a tier) read each other's files and vector stores; the principal alone keeps each
  -- user's resources their own.
  return 200, string.format('{"principal":"%s"}', json_escape(id.user))
end

local function on_validate(handle)
  local headers = handle:headers()
  if headers:get(":method") ~= "POST" then
    reject(handle, 405, error_json("Use POST.", "invalid_request_error", "method_not_allowed"), { ["allow"] = "POST" })
    return
  end
  local body = handle:body()
  local raw = ""
  if body ~= nil and body:length() > 0 then raw = body:getBytes(0, body:length()) end
  local status, answer = validate_credentials(handle, raw)
  handle:respond({ [":status"] = tostring(status), ["content-type"] = "application/json" }, answer)
end

-- A JSON body the step reads: its bytes ("" when there is none) and the buffered body (nil when there
-- is none); nil once refused with 415 (compressed).
-- body() suspends the stream: header handles taken before it are invalid afterwards.
local function read_body(handle, headers)
  local encoding = headers:get("content-encoding")
  if encoding ~= nil and string.lower(encoding) ~= "identity" then
    reject(handle, 415, error_json("Content-Encoding '" .. encoding .. "' is not accepted; send the JSON body uncompressed.",
      "invalid_request_error", "unsupported_content_encoding"))
    return nil
  end
  local body = handle:body()
  local raw = ""
  if body ~= nil and body:length() > 0 then raw = body:getBytes(0, body:length()) end
  return raw, body
end

-- A model call's body: the buffered body, its bytes and its document; nil once refused (415 for a
-- compressed body, 400 for one that is not a JSON object). `label(doc)` is the model label the call
-- is metered under.
local function read_model_call(handle, headers, label)
  local raw, body = read_body(handle, headers)
  if raw == nil then return nil end
  local doc, why = parse_model_call(raw)
  meter(handle, { model = label(doc), input = 0, output = 0 })
  if doc == nil then
    reject(handle, 400, error_json(why, "invalid_request_error", "invalid_request_body"))
    return nil
  end
  return body, raw, doc
end

-- The charge that stands at end of stream unless the response's usage replaces it (see
-- charge_estimate), weighted by w_in and w_out, and the weights the response step applies to usage.
local function charge_the_estimate(handle, doc, raw, w_in, w_out)
  local est_prompt, est_completion = charge_estimate(doc, #raw)
  local md = handle:streamInfo():dynamicMetadata()
  md:set(USAGE_NS, "total_tokens", est_prompt + est_completion)
  md:set(USAGE_NS, "charged", weighted(est_prompt, est_completion, w_in, w_out))
  meter(handle, { input = est_prompt, output = est_completion })
  md:set(NS, "cost_input", tostring(w_in))
  md:set(NS, "cost_output", tostring(w_out))
end

-- Send the model call on as JSON, whatever the client called it: the document re-encoded when
-- the step `changed` it.
local function forward_json(body, headers, doc, changed)
  if changed then
    local text = json.encode(doc)
    body:setBytes(text)
    headers:replace("content-length", tostring(#text))
  end
  headers:replace("content-type", "application/json")
end

-- llama-stack behind the gateway -------------------------------------------------------------
-- `<LLAMA_STACK_PREFIX>/v1/...` goes to llama-stack's `/v1/...` (the route's prefix_rewrite). Its model
-- calls (POST to the paths below) count one request and are charged the usage of llama-stack's answer,
-- read like a model server's: the JSON body's usage (prompt/completion or input/output tokens) or the
-- final SSE event's (chat's last chunk, the Responses API's response.completed). Every other call
-- (models, files, vector stores, ...) needs a key and costs nothing. The route is picked by
-- LLAMA_STACK_HEADER, which only this step sets (a client's own x-maas- headers are stripped).
local LLAMA_STACK_HEADER = "x-maas-llama-stack"
local ONWARD_HEADER = "x-maas-onward"
local LLAMA_STACK_MODEL_PATHS = {
  ["/v1/chat/completions"] = true, ["/v1/completions"] = true, ["/v1/responses"] = true, ["/v1/embeddings"] = true,
}

-- Calls that have llama-stack cut files into chunks: vector store create (its file_ids), file attach
-- and file batch. llama-stack 0.7.3 chunks a file whose call names no strategy (or `auto`) at a fixed
-- 800/400 tokens, whatever its configuration says (core/routers/vector_io.py), and accepts a static
-- overlap not smaller than the size, then fails the file (`range() arg 3 must not be zero`).
local function is_chunking_path(rest)
  return rest == "/v1/vector_stores" or rest:match("^/v1/vector_stores/[^/]+/files$") ~= nil
    or rest:match("^/v1/vector_stores/[^/]+/file_batches$") ~= nil
end

local STATIC_FIELDS = { size = "max_chunk_size_tokens", overlap = "chunk_overlap_tokens" }

-- Gives a chunking call LLAMA_STACK_CHUNKING where it names no strategy (or `auto`), and fills a static
-- strategy's missing sizes from it. Returns whether the document changed, or nil, why and the field at
-- fault when the strategy cannot work (its overlap not smaller than its size, or sizes not integers).
local function settle_chunking(doc)
  local strategy = doc["chunking_strategy"]
  if strategy ~= nil and strategy ~= json.NULL and getmetatable(strategy) ~= json.OBJECT then
    return nil, "'chunking_strategy' must be an object.", "chunking_strategy"
  end
  local changed = false
  if strategy == nil or strategy == json.NULL or strategy["type"] == "auto" then
    strategy = json.object()
    strategy["type"] = "static"
    doc["chunking_strategy"] = strategy
    changed = true
  end
  -- Other types (contextual) check their own sizes in llama-stack.
  if strategy["type"] ~= "static" then return false end
  local static = strategy["static"]
  if static == nil or static == json.NULL then
    static = json.object()
    strategy["static"] = static
    changed = true
  elseif getmetatable(static) ~= json.OBJECT then
    return nil, "'chunking_strategy.static' must be an object.", "chunking_strategy.static"
  end
  local sizes, filled = {}, {}
  for what, field in pairs(STATIC_FIELDS) do
    local value = static[field]
    if value == nil or value == json.NULL then
      filled[what] = true
    else
      sizes[what] = json.number(value)
      local n = sizes[what]
      if n == nil or n ~= n or n == math.huge or n == -math.huge or n ~= math.floor(n) then
        return nil, "'chunking_strategy.static." .. field .. "' must be an integer.", "chunking_strategy.static." .. field
      end
    end
  end
  if filled.size then sizes.size = LLAMA_STACK_CHUNKING.size end
  if filled.overlap then
    -- The configured overlap, but never half the caller's own size or more (OpenAI's rule for it).
    sizes.overlap = LLAMA_STACK_CHUNKING.overlap
    if not filled.size then sizes.overlap = math.min(sizes.overlap, math.floor(sizes.size / 2)) end
  end
  for what, field in pairs(STATIC_FIELDS) do
    if filled[what] then
      static[field] = sizes[what]
      changed = true
    end
  end
  if sizes.overlap < 0 or sizes.overlap >= sizes.size then
    return nil, string.format("'chunking_strategy.static.chunk_overlap_tokens' (%d) must be at least 0 and smaller than "
      .. "'chunking_strategy.static.max_chunk_size_tokens' (%d): chunks would not advance through the file.",
      sizes.overlap, sizes.size), "chunking_strategy.static.chunk_overlap_tokens"
  end
  return changed
end

-- A chunking call on its way to llama-stack, with its strategy settled (or refused with 400).
local function on_chunking_call(handle, headers)
  local raw, body = read_body(handle, headers)
  if raw == nil then return false end
  local doc, why = parse_object(raw)
  local changed, field = false, nil
  if doc ~= nil then changed, why, field = settle_chunking(doc) end
  if changed == nil or doc == nil then
    reject(handle, 400, error_json(why, "invalid_request_error", doc == nil and "invalid_request_body"
      or "invalid_chunking_strategy", field))
    return false
  end
  forward_json(body, handle:headers(), doc, changed)
  return true
end

-- llama-stack names a catalog model it reaches through this gateway `<catalog key>/<public id>` (the
-- chart makes the catalog key its provider id). A model call naming one the caller's tier may not use
-- is refused at the front door, with the gateway's own 403, before llama-stack spends anything on it
-- (llama-stack 0.7.3 turns the onward 403 into an error of its own, without type or code, and logs
-- a traceback). Other names are llama-stack's to judge.
local llama_stack_names = nil

local function llama_stack_model(model)
  if type(model) ~= "string" then return nil end
  if llama_stack_names == nil then
    llama_stack_names = {}
    for id, entry in pairs(model_catalog()) do
      if type(entry["key"]) == "string" then llama_stack_names[entry["key"] .. "/" .. id] = { id = id, entry = entry } end
    end
  end
  return llama_stack_names[model]
end

-- llama-stack's model listing as the caller's tier sees it (the gateway's own /v1/models hides
-- other tiers' models the same way): the answer without the catalog models the tier may not use, or
-- nil when it keeps every model (or is not a listing), so it goes on byte for byte.
local function llama_stack_listing(raw, tier)
  local doc = json.decode(raw)
  if doc == nil or getmetatable(doc) ~= json.OBJECT or getmetatable(doc["data"]) ~= json.ARRAY then return nil end
  local kept = setmetatable({}, getmetatable(doc["data"]))
  for _, item in ipairs(doc["data"]) do
    local named = getmetatable(item) == json.OBJECT and llama_stack_model(item["id"]) or nil
    if named == nil or tier_may_use(named.entry, tier) then kept[#kept + 1] = item end
  end
  if #kept == #doc["data"] then return nil end
  doc["data"] = kept
  return json.encode(doc)
end

-- llama-stack's own error answers in the OpenAI form of the gateway's (error.message, type, code):
-- llama-stack 0.7.3 sends {"error":{"message":...}} with neither type nor code, its router's 404 and
-- 405 {"detail":...}, FastAPI's validation errors a list under detail, and a crash may be plain text.
local ERROR_KINDS = {
  [400] = { "invalid_request_error", "invalid_request" },
  [401] = { "invalid_api_key", "invalid_api_key" },
  [403] = { "permission_denied", "permission_denied" },
  [404] = { "invalid_request_error", "not_found" },
  [405] = { "invalid_request_error", "method_not_allowed" },
  [409] = { "invalid_request_error", "conflict" },
  [413] = { "invalid_request_error", "request_too_large" },
  [422] = { "invalid_request_error", "invalid_request" },
  [429] = { "rate_limit_exceeded", "rate_limit_exceeded" },
}
local ERROR_TEXT_MAX = 500

local function error_kind(status)
  local kind = ERROR_KINDS[status]
  if kind ~= nil then return kind[1], kind[2] end
  if status >= 500 then return "server_error", "llama_stack_error" end
  return "invalid_request_error", "http_" .. status
end

-- `s` with every byte that is not part of a well-formed UTF-8 character replaced by "?" (a crash page
-- in Latin-1 must not make the JSON error invalid).
local function valid_utf8(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    for j = i + 1, i + len - 1 do
      if not ok then break end
      local b = s:byte(j)
      ok = b >= 0x80 and b <= 0xBF
    end
    if ok and len == 3 then
      local b = s:byte(i + 1)
      ok = not (c == 0xE0 and b < 0xA0) and not (c == 0xED and b > 0x9F)
    elseif ok and len == 4 then
      local b = s:byte(i + 1)
      ok = not (c == 0xF0 and b < 0x90) and not (c == 0xF4 and b > 0x8F)
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "?"
      i = i + 1
    end
  end
  return table.concat(out)
end

-- FastAPI's validation errors ([{loc, msg}, ...]) as one sentence: "body.messages: Field required".
local function validation_text(items)
  local parts = {}
  for _, item in ipairs(items) do
    if getmetatable(item) == json.OBJECT and type(item["msg"]) == "string" then
      local loc = {}
      if getmetatable(item["loc"]) == json.ARRAY then
        for _, l in ipairs(item["loc"]) do loc[#loc + 1] = type(l) == "string" and l or tostring(json.number(l)) end
      end
      parts[#parts + 1] = (#loc > 0 and (table.concat(loc, ".") .. ": ") or "") .. item["msg"]
    end
  end
  if #parts == 0 then return nil end
  return table.concat(parts, "; ")
end

-- The OpenAI error body for llama-stack's answer `raw` with `status`, or nil when it already is one.
local function openai_error(raw, status)
  local etype, code = error_kind(status)
  local doc = json.decode(raw)
  if doc ~= nil and getmetatable(doc) == json.OBJECT then
    local err = doc["error"]
    if getmetatable(err) == json.OBJECT and type(err["message"]) == "string" then
      local changed = false
      if type(err["type"]) ~= "string" then err["type"] = etype; changed = true end
      if err["code"] == nil or err["code"] == json.NULL then err["code"] = code; changed = true end
      if changed then return json.encode(doc) end
      return nil
    end
    local detail = doc["detail"]
    if type(detail) == "string" then return error_json(detail, etype, code) end
    if getmetatable(detail) == json.ARRAY then
      local text = validation_text(detail)
      if text ~= nil then return error_json(text, etype, code) end
    end
  end
  local text = valid_utf8(raw):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if #text > ERROR_TEXT_MAX then
    -- Cut on a character boundary (never inside a UTF-8 sequence).
    text = text:sub(1, ERROR_TEXT_MAX):gsub("[\192-\255][\128-\191]*$", "") .. "..."
  end
  if text == "" then text = "llama-stack answered " .. status .. " without a message." end
  return error_json("llama-stack: " .. text, etype, code)
end

-- The call goes on to llama-stack: an error answer is llama-stack's (the response step rewrites
-- those), not one the gateway or Envoy gave before it (a body over the buffer limit gets Envoy's 413).
local function forwarded(handle)
  handle:streamInfo():dynamicMetadata():set(NS, "forwarded", "1")
end

local function is_llama_stack_path(bare)
  if LLAMA_STACK_PREFIX == nil then return false end
  return bare == LLAMA_STACK_PREFIX or bare:sub(1, #LLAMA_STACK_PREFIX + 1) == LLAMA_STACK_PREFIX .. "/"
end

local function on_llama_stack(handle, id, bare)
  if id.onward then
    -- llama-stack never calls itself through the gateway; an onward credential opens no front door.
    reject(handle, 401, error_json("An onward credential is accepted only on llama-stack's own model calls.",
      "invalid_api_key", "invalid_api_key"), { ["www-authenticate"] = 'Bearer realm="maas"' })
    return
  end
  local rest = bare:sub(#LLAMA_STACK_PREFIX + 1)
  if rest:sub(1, 4) ~= "/v1/" then
    reject(handle, 404, error_json("llama-stack's API is under " .. LLAMA_STACK_PREFIX .. "/v1/.",
      "invalid_request_error", "not_found"))
    return
  end
  local store = current_store(handle)
  if store.secret == nil then
    handle:logErr("maas: llama-stack behind the gateway needs the key hashing secret (env " .. HMAC_FILE_ENV .. ")")
    reject(handle, 503, error_json("The gateway cannot reach llama-stack for you: it has no key hashing secret.",
      "service_unavailable", "gateway_misconfigured"))
    return
  end
  local headers = handle:headers()
  local now = os.time()
  local tier = TIERS[id.tier]
  local model_call = headers:get(":method") == "POST" and LLAMA_STACK_MODEL_PATHS[rest] == true
  local md = handle:streamInfo():dynamicMetadata()
  md:set(NS, "route", model_call and "model" or "models")
  -- Read by the local reply config: a 503 of this route says llama-stack is unavailable.
  md:set(NS, "upstream", "llama-stack")
  set_windows(md, tier, now)
  if model_call and tier.tokens_limit == 0 then
    meter(handle, { model = "llama-stack", refused = "tier_tokens", input = 0, output = 0 })
    reject(handle, 429, error_json("Token rate limit of tier '" .. id.tier .. "' is 0: no requests allowed.",
      "rate_limit_exceeded", "rate_limit_exceeded"), { ["retry-after"] = tostring(seconds_to_reset(tier.tokens_window, now)),
      ["x-should-retry"] = "false" })
    return
  end
  -- llama-stack authenticates the caller (its `custom` auth provider asks VALIDATE_PATH) and calls
  -- the models with the same credential (provider data): the onward credential, never the key.
  local onward = mint_onward(store.secret, id, now)
  headers:replace("authorization", "Bearer " .. onward)
  headers:replace("x-llamastack-provider-data", string.format('{"vllm_api_token":"%s"}', json_escape(onward)))
  headers:replace(LLAMA_STACK_HEADER, model_call and "model" or "other")
  reroute(handle)
  if headers:get(":method") == "GET" and rest:sub(1, 10) == "/v1/models" then
    local wanted = unescape_path(rest:sub(12))
    if rest == "/v1/models" then
      md:set(NS, "llama_stack_listing", "*")
    elseif rest:sub(11, 11) == "/" then
      -- Another tier's model is not shown to this caller: 404, as llama-stack answers an unknown id.
      local named = llama_stack_model(wanted)
      if named ~= nil and not tier_may_use(named.entry, id.tier) then
        reject(handle, 404, error_json("The model '" .. wanted .. "' does not exist; GET " .. LLAMA_STACK_PREFIX
          .. "/v1/models lists yours.", "invalid_request_error", "model_not_found"))
        return
      end
    end
  end
  if not model_call then
    if headers:get(":method") == "POST" and is_chunking_path(rest) and not on_chunking_call(handle, headers) then
      return
    end
    forwarded(handle)
    return
  end

  local body, raw, doc = read_model_call(handle, headers, function() return "llama-stack" end)
  if body == nil then return end
  local named = llama_stack_model(doc["model"])
  if named ~= nil and not tier_may_use(named.entry, id.tier) then
    meter(handle, { refused = "model_access" })
    reject(handle, 403, error_json("Tier '" .. id.tier .. "' may not use the model '" .. doc["model"] .. "'.",
      "permission_denied", "model_not_allowed"))
    return
  end
  charge_the_estimate(handle, doc, raw, 1, 1)
  forward_json(body, handle:headers(), doc, force_include_usage(doc, rest))
  forwarded(handle)
end

local function on_request(handle)
  local headers = handle:headers()
  strip_identity_headers(headers)
  -- Envoy picked the route before this step, with whatever x-maas- headers the client sent.
  reroute(handle)
  local bare = (headers:get(":path") or ""):match("^[^?]*")
  if bare == VALIDATE_PATH then
    on_validate(handle)
    return
  end

  local key, msg = credential(headers)
  local id = nil
  if key ~= nil then id, msg = identify(handle, key) end
  if id == nil then
    meter(handle, { model = "unknown", refused = "auth", input = 0, output = 0 })
    reject(handle, 401, error_json(msg, "invalid_api_key", "invalid_api_key"),
      { ["www-authenticate"] = 'Bearer realm="maas"' })
    return
  end

  local tier = TIERS[id.tier]
  local now = os.time()
  local path = headers:get(":path") or "/"
  local models = is_models_path(path)

  local md = handle:streamInfo():dynamicMetadata()
  md:set(NS, "user", id.user)
  md:set(NS, "tier", id.tier)

  if is_llama_stack_path(bare) then
    on_llama_stack(handle, id, bare)
    return
  end
  if id.onward then
    -- llama-stack's own model call for a caller charged at the front door: the caller's tier
    -- decides which models it may use (below); no budget is checked or charged (the onward route
    -- has none), and it is not metered again.
    md:set(NS, "route", "onward")
    headers:replace(ONWARD_HEADER, "1")
    reroute(handle)
  end

  -- A token budget of 0 allows nothing; the rate limit service would still admit the first
  -- request (it checks tokens before they are known), so deny it here.
  if not models and not id.onward and tier.tokens_limit == 0 then
    local reset = seconds_to_reset(tier.tokens_window, now)
    meter(handle, { model = "unknown", refused = "tier_tokens", input = 0, output = 0 })
    reject(handle, 429, error_json("Token rate limit of tier '" .. id.tier .. "' is 0: no requests allowed.",
      "rate_limit_exceeded", "rate_limit_exceeded"), {
        ["retry-after"] = tostring(reset),
        ["x-should-retry"] = "false",
        ["x-ratelimit-limit-tokens"] = "0",
        ["x-ratelimit-remaining-tokens"] = "0",
        ["x-ratelimit-reset-tokens"] = tostring(reset),
      })
    return
  end

  if not id.onward then md:set(NS, "route", models and "models" or "model") end
  set_windows(md, tier, now)

  -- The model server sees neither the gateway key nor who is calling.
  headers:remove("authorization")

  if ROUTE_BY_MODEL then
    -- Envoy picked the route (and read cluster_header) before this step ran, with whatever the
    -- client sent: name the default cluster and have the route picked again.
    headers:replace(ROUTE_HEADER, DEFAULT_CLUSTER)
    reroute(handle)
    if models then
      -- Answered from the catalog on the way back; the request still goes to the default model
      -- server, so the answer carries the key's budget headers like any listing.
      local bare = path:match("^[^?]*")
      local wanted = unescape_path(bare:sub(#"/v1/models/" + 1))
      if wanted == "" then
        md:set(NS, "listing", "*")
      else
        -- A model of another tier is not shown to this caller: 404, as for an unknown id.
        local entry = model_catalog()[wanted]
        if entry == nil or not tier_may_use(entry, id.tier) then
          reject(handle, 404, error_json("The model '" .. wanted .. "' does not exist; GET /v1/models lists yours.",
            "invalid_request_error", "model_not_found"))
          return
        end
        md:set(NS, "listing", wanted)
      end
      headers:replace(":path", "/v1/models")
      return
    end
  end

  if models or headers:get(":method") ~= "POST" then return end
  local body, raw, doc = read_model_call(handle, headers, meter_model)
  if body == nil then return end
  local entry = nil
  if ROUTE_BY_MODEL then
    local status, refusal
    entry, status, refusal = route_model(doc, id.tier)
    if entry == nil then
      if status == 403 then meter(handle, { refused = "model_access" }) end
      reject(handle, status, refusal)
      return
    end
  end
  -- Weighted by the model's tokenCost.
  charge_the_estimate(handle, doc, raw, token_cost(entry))
  md = handle:streamInfo():dynamicMetadata()
  if entry ~= nil then
    -- The model's budgets: each metadata key names the model only when the budget exists, so the
    -- model budget filters send a descriptor (and call the rate limit service) only then.
    md:set(NS, "model", doc["model"])
    local limits = entry["limits"]
    if getmetatable(limits) == json.OBJECT then
      md:set(NS, "minute_bucket", tostring(math.floor(now / 60)))
      if limits["rpm"] ~= nil then md:set(NS, "model_rpm", doc["model"]) end
      if limits["tpm"] ~= nil then md:set(NS, "model_tpm", doc["model"]) end
      local per_tier = limits["tiers"]
      if getmetatable(per_tier) == json.OBJECT and per_tier[id.tier] ~= nil then
        md:set(NS, "tier_model_tpm", doc["model"])
      end
    end
  end
  headers = handle:headers()
  local changed_model = false
  if entry ~= nil then
    headers:replace(ROUTE_HEADER, entry["cluster"])
    -- The route was picked on the headers alone; pick it again with the model's cluster.
    reroute(handle)
    if entry["served"] ~= doc["model"] then
      doc["model"] = entry["served"]
      changed_model = true
    end
  end
  forward_json(body, headers, doc, force_include_usage(doc, path) or changed_model)
end

-- Envoy lets a request through when its Lua step raises: fail closed instead.
function envoy_on_request(handle)
  local ok, err = pcall(on_request, handle)
  if not ok then
    handle:logErr("maas: request step failed: " .. tostring(err))
    reject(handle, 500, error_json("The gateway could not process the request.", "server_error", "gateway_error"))
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

-- The weighted charge of the response's usage, stored where the budgets' end-of-stream charge
-- reads it (maas.usage:charged); nil (the estimate stays) when no usage arrived.
local function charge_usage(handle, md)
  local w_in, w_out = tonumber(md["cost_input"]) or 1, tonumber(md["cost_output"]) or 1
  local usage = handle:streamInfo():dynamicMetadata():get(USAGE_NS)
  local charged = usage_charge(usage, w_in, w_out)
  if charged ~= nil then
    handle:streamInfo():dynamicMetadata():set(USAGE_NS, "charged", charged)
    -- The tokens the charge counted; a usage without its parts counts as output (as charged).
    local prompt, completion = tonumber(usage["prompt_tokens"]), tonumber(usage["completion_tokens"])
    if prompt == nil or completion == nil then prompt, completion = 0, tonumber(usage["total_tokens"]) end
    meter(handle, { input = prompt, output = completion })
  end
  return charged
end

-- The budgets' names (the rate limit service's `name`) in filter chain order, and what a 429
-- says of each. A refused call carries the headers of the filters that ran, so the refusing
-- budget is the last of them in this order.
local BUDGET_ORDER = { "tokens", "tier_model_tokens", "model_tokens", "requests", "model_requests" }
local BUDGET_KIND = {
  tokens = "tokens", tier_model_tokens = "tokens", model_tokens = "tokens",
  requests = "requests", model_requests = "requests",
}

-- A budget's name in the refusal metric's `budget` label.
local BUDGET_METRIC = {
  tokens = "tier_tokens", requests = "tier_requests", tier_model_tokens = "tier_model_tokens",
  model_tokens = "model_tokens", model_requests = "model_requests",
}

local function window_text(seconds)
  if seconds % 3600 == 0 then return (seconds / 3600) .. "h" end
  if seconds % 60 == 0 then return (seconds / 60) .. "m" end
  return seconds .. "s"
end

local function budget_text(name, md, limit)
  local tier, model = md["tier"], md["model"] or "?"
  local t = TIERS[tier]
  if name == "tokens" then
    return string.format("the tokens per %s of tier '%s' (%s)", window_text(t.tokens_window), tier, limit)
  elseif name == "requests" then
    return string.format("the requests per %s of tier '%s' (%s)", window_text(t.requests_window), tier, limit)
  elseif name == "tier_model_tokens" then
    return string.format("the tokens per minute of tier '%s' for model %s (%s per user)", tier, model, limit)
  elseif name == "model_tokens" then
    return string.format("the model tokens per minute for %s (%s, shared by every caller)", model, limit)
  end
  return string.format("the model requests per minute for %s (%s, shared by every caller)", model, limit)
end

function envoy_on_response(handle)
  local md = handle:streamInfo():dynamicMetadata():get(NS)
  if md == nil or md["tier"] == nil then return end
  -- An onward call is neither charged nor limited: its budgets are the front door's.
  if md["route"] == "onward" then return end
  local headers = handle:headers()
  local tier = TIERS[md["tier"]]
  local now = os.time()
  local rl = collect_ratelimit_headers(headers)
  local resets = {
    requests = seconds_to_reset(tier.requests_window, now),
    tokens = seconds_to_reset(tier.tokens_window, now),
    tier_model_tokens = seconds_to_reset(60, now),
    model_tokens = seconds_to_reset(60, now),
    model_requests = seconds_to_reset(60, now),
  }

  -- A call that failed produced nothing: drop the estimate set on the request.
  local status = tonumber(headers:get(":status")) or 0
  local model_call = md["route"] == "model"
  if model_call and (status < 200 or status >= 300) then
    handle:streamInfo():dynamicMetadata():set(USAGE_NS, "total_tokens", 0)
    handle:streamInfo():dynamicMetadata():set(USAGE_NS, "charged", 0)
    meter(handle, { input = 0, output = 0 })
  elseif model_call then
    meter(handle, { served = 1 })
  end
  if model_call then
    headers:replace("x-maas-token-cost-input", tostring(md["cost_input"] or 1))
    headers:replace("x-maas-token-cost-output", tostring(md["cost_output"] or 1))
  end

  local consumed = nil
  local ctype = headers:get("content-type") or ""
  local ok = status >= 200 and status < 300
  if model_call and ok and ctype:find("application/json", 1, true) then
    handle:body() -- wait for the whole JSON body: json_to_metadata has then read its usage
    headers = handle:headers() -- the handle taken before body() is no longer valid
    consumed = charge_usage(handle, md)
    if consumed ~= nil then
      headers:replace("x-ratelimit-consumed-tokens", tostring(consumed))
      headers:replace("x-maas-tokens-charged", tostring(consumed))
    end
  end

  -- Model listings under ROUTE_BY_MODEL: the catalog as the caller's tier sees it replaces the
  -- default model server's answer.
  local listing = md["listing"]
  if listing ~= nil and status == 200 then
    local answer
    if listing == "*" then
      answer = model_list(md["tier"])
    else
      answer = model_object(listing, model_catalog()[listing])
    end
    local body = handle:body()
    headers = handle:headers()
    body:setBytes(answer)
    headers:replace("content-length", tostring(#answer))
    headers:replace("content-type", "application/json")
  end

  if md["llama_stack_listing"] ~= nil and status == 200 and ctype:find("application/json", 1, true) then
    local body = handle:body()
    headers = handle:headers()
    local answer = body ~= nil and body:length() > 0 and llama_stack_listing(body:getBytes(0, body:length()), md["tier"])
    if answer then
      body:setBytes(answer)
      headers:replace("content-length", tostring(#answer))
    end
  end

  if md["forwarded"] ~= nil and status >= 400 and headers:get("x-envoy-ratelimited") == nil then
    -- (A bodiless answer, to HEAD, has nothing to rewrite.)
    local body = handle:body()
    headers = handle:headers()
    local raw = body ~= nil and body:length() > 0 and body:getBytes(0, body:length()) or ""
    local answer = body ~= nil and openai_error(raw, status) or nil
    if answer ~= nil then
      body:setBytes(answer)
      headers:replace("content-length", tostring(#answer))
      headers:replace("content-type", "application/json")
    end
  end

  -- Per kind, the tightest budget that answered: the least remaining (after this response's
  -- charge); the tier's own limit and reset when no budget answered.
  for _, kind in ipairs({ "requests", "tokens" }) do
    local limit, reset, remaining = tier[kind .. "_limit"], resets[kind], nil
    for _, name in ipairs(BUDGET_ORDER) do
      local st = rl[name]
      if BUDGET_KIND[name] == kind and st ~= nil and st.remaining ~= nil then
        local left = st.remaining
        -- The token check runs before the response; subtract what this response costs.
        if kind == "tokens" and consumed ~= nil then left = math.max(0, left - consumed) end
        if remaining == nil or left < remaining then
          remaining, reset = left, resets[name] or reset
          limit = st.limit or limit
        end
      end
    end
    headers:replace("x-ratelimit-limit-" .. kind, tostring(limit))
    headers:replace("x-ratelimit-reset-" .. kind, tostring(reset))
    if remaining ~= nil then headers:replace("x-ratelimit-remaining-" .. kind, tostring(remaining)) end
  end

  -- failureMode open: the rate limit filters let the call through without an answer (no
  -- X-RateLimit-* headers came back). Say so, or unchecked calls would go unnoticed.
  if next(rl) == nil and status >= 200 and status < 400 then
    handle:logWarn(string.format("maas: rate limit service did not answer; %s call of user %s passed unchecked (failureMode open)",
      md["route"], md["user"]))
  end

  -- Our own 429 (not one from the model server): tell the client when to come back, and tell
-- OpenAI SDK clients not to retry by themselves (`x-should-retry: false`, honoured by
-- openai/_base_client.py _should_retry). Without it the SDK sleeps Retry-After (up to 60 s here)
-- and retries twice: a server that calls the gateway for its callers, such as llama-stack,
-- would hold each refused call for minutes and then spend the next window, instead of
-- answering the caller 429 as the gateway does.
  if headers:get(":status") == "429" and headers:get("x-envoy-ratelimited") ~= nil then
    local wait = 0
    local refused = nil
    for _, name in ipairs(BUDGET_ORDER) do
      local st = rl[name]
      if st ~= nil then
        refused = name
        if st.remaining == 0 and (resets[name] or 0) > wait then wait = resets[name] end
      end
    end
    if wait == 0 then wait = math.max(resets.requests, resets.tokens) end
    headers:replace("retry-after", tostring(wait))
    headers:replace("x-should-retry", "false")
    meter(handle, { refused = refused and BUDGET_METRIC[refused] or "unknown" })
    if refused ~= nil then
      -- Name the budget that refused the call (the body Envoy's local reply config wrote speaks
      -- only of the tier).
      headers:replace("x-maas-ratelimit-exceeded", refused)
      local message = "Rate limit exceeded: " .. budget_text(refused, md, tostring(rl[refused].limit or "?")) ..
        ". Retry after " .. wait .. " seconds (Retry-After)."
      local answer = error_json(message, "rate_limit_exceeded", "rate_limit_exceeded")
      local body = handle:body()
      headers = handle:headers()
      if body ~= nil then
        body:setBytes(answer)
        headers:replace("content-length", tostring(#answer))
      end
    end
    return
  end

  -- A successful stream: charge its usage (the final chunk's, read by sse_to_metadata) with the
  -- weights once the last chunk has passed; the chunks flow on unbuffered meanwhile. An aborted
  -- stream keeps the estimate.
  if model_call and ok and ctype:find("text/event-stream", 1, true) then
    for _ in handle:bodyChunks() do end
    charge_usage(handle, md)
  end
end
