-- JSON (RFC 8259) decoding and encoding for request bodies. The gateway decides what a model
-- call costs from the parsed document, never from byte patterns: escapes ("\u0073tream"),
-- whitespace and key order mean nothing to it. Strict on purpose: duplicate keys, a byte-order
-- mark, NaN/Infinity, trailing data, lone surrogates and control characters in strings are
-- refused, so no model server can read a body differently from the gateway.
-- Used through the table `json` at the end. Values: objects are tables with metatable
-- JSON_OBJECT (key order kept for re-encoding), arrays tables with JSON_ARRAY, numbers tables
-- {raw = "<text>"} with JSON_NUMBER (re-encoded byte for byte; read with json.number()), null is
-- JSON_NULL, strings and booleans are Lua's.
local JSON_OBJECT, JSON_ARRAY, JSON_NUMBER = {}, {}, {}
local JSON_NULL = setmetatable({}, { __tostring = function() return "null" end })
local JSON_MAX_DEPTH = 128
local json_order = setmetatable({}, { __mode = "k" })

local function json_error(pos, what) error({ json = "at byte " .. pos .. ": " .. what }, 0) end

local function skip_ws(s, i)
  local _, e = s:find("^[ \t\r\n]*", i)
  return e + 1
end

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function hex4(s, i)
  local h = s:match("^%x%x%x%x", i)
  if h == nil then json_error(i, "\\u needs four hex digits") end
  return tonumber(h, 16)
end

local function decode_string(s, i) -- s:sub(i, i) == '"'
  local parts, j = {}, i + 1
  while true do
    local k = s:find('["\\%z\1-\31]', j)
    if k == nil then json_error(i, "unterminated string") end
    parts[#parts + 1] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then return table.concat(parts), k + 1 end
    if c ~= "\\" then json_error(k, "control character in a string") end
    local e = s:sub(k + 1, k + 1)
    if ESCAPES[e] then
      parts[#parts + 1] = ESCAPES[e]
      j = k + 2
    elseif e == "u" then
      local cp = hex4(s, k + 2)
      j = k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        if s:sub(j, j + 1) ~= "\\u" then json_error(k, "lone surrogate") end
        local lo = hex4(s, j + 2)
        if lo < 0xDC00 or lo > 0xDFFF then json_error(k, "lone surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        j = j + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        json_error(k, "lone surrogate")
      end
      parts[#parts + 1] = utf8_char(cp)
    else
      json_error(k, "invalid escape")
    end
  end
end

local decode_value

local function decode_object(s, i, depth)
  local obj, order, seen = setmetatable({}, JSON_OBJECT), {}, {}
  i = skip_ws(s, i + 1)
  if s:sub(i, i) == "}" then json_order[obj] = order; return obj, i + 1 end
  while true do
    if s:sub(i, i) ~= '"' then json_error(i, "expected a string key") end
    local key
    key, i = decode_string(s, i)
    if seen[key] then json_error(i, "duplicate key \"" .. key:gsub("[^%w%p ]", "?") .. "\"") end
    seen[key] = true
    i = skip_ws(s, i)
    if s:sub(i, i) ~= ":" then json_error(i, "expected ':'") end
    local value
    value, i = decode_value(s, skip_ws(s, i + 1), depth + 1)
    obj[key] = value
    order[#order + 1] = key
    i = skip_ws(s, i)
    local c = s:sub(i, i)
    if c == "}" then json_order[obj] = order; return obj, i + 1 end
    if c ~= "," then json_error(i, "expected ',' or '}'") end
    i = skip_ws(s, i + 1)
  end
end

local function decode_array(s, i, depth)
  local arr = setmetatable({}, JSON_ARRAY)
  i = skip_ws(s, i + 1)
  if s:sub(i, i) == "]" then return arr, i + 1 end
  while true do
    local value
    value, i = decode_value(s, i, depth + 1)
    arr[#arr + 1] = value
    i = skip_ws(s, i)
    local c = s:sub(i, i)
    if c == "]" then return arr, i + 1 end
    if c ~= "," then json_error(i, "expected ',' or ']'") end
    i = skip_ws(s, i + 1)
  end
end

local function digits(s, i)
  local _, e = s:find("^%d+", i)
  if e == nil then json_error(i, "expected a digit") end
  return e + 1
end

-- A number as JSON writes it: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?
local function scan_number(s, i)
  local j = i
  if s:sub(j, j) == "-" then j = j + 1 end
  if s:sub(j, j) == "0" then j = j + 1 else j = digits(s, j) end
  if s:sub(j, j) == "." then j = digits(s, j + 1) end
  if s:sub(j, j):match("^[eE]$") then
    j = j + 1
    if s:sub(j, j):match("^[-+]$") then j = j + 1 end
    j = digits(s, j)
  end
  return setmetatable({ raw = s:sub(i, j - 1) }, JSON_NUMBER), j
end

local LITERALS = { ["true"] = true, ["false"] = false, ["null"] = JSON_NULL }

decode_value = function(s, i, depth)
  if depth > JSON_MAX_DEPTH then json_error(i, "nested deeper than " .. JSON_MAX_DEPTH) end
  local c = s:sub(i, i)
  if c == "{" then return decode_object(s, i, depth) end
  if c == "[" then return decode_array(s, i, depth) end
  if c == '"' then return decode_string(s, i) end
  local word = s:match("^%a+", i)
  if word ~= nil then
    if LITERALS[word] == nil then json_error(i, "unexpected '" .. word:sub(1, 16) .. "'") end
    return LITERALS[word], i + #word
  end
  if not c:match("[-%d]") then
    if c == "" then json_error(i, "unexpected end of input") end
    json_error(i, string.format("unexpected byte 0x%02X", c:byte()))
  end
  return scan_number(s, i)
end

-- The document in `s`, or nil and a reason.
local function json_decode(s)
  local ok, value, i = pcall(function()
    local v, j = decode_value(s, skip_ws(s, 1), 0)
    return v, skip_ws(s, j)
  end)
  if not ok then
    if type(value) == "table" and value.json then return nil, value.json end
    -- A fault in this decoder must refuse the body, never let it pass unparsed.
    return nil, "the gateway could not parse it: " .. tostring(value)
  end
  if i <= #s then return nil, "at byte " .. i .. ": unexpected data after the document" end
  return value
end

local function json_number(v)
  if getmetatable(v) == JSON_NUMBER then return tonumber(v.raw) end
  return nil
end

local function json_new_object()
  local obj = setmetatable({}, JSON_OBJECT)
  json_order[obj] = {}
  return obj
end

local function encode_string(str)
  return '"' .. str:gsub('[%z\1-\31"\\]', function(ch)
    if ch == '"' then return '\\"' elseif ch == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(ch))
  end) .. '"'
end

local json_encode
json_encode = function(v)
  local mt = getmetatable(v)
  if v == JSON_NULL then return "null" end
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "string" then return encode_string(v) end
  if mt == JSON_NUMBER then return v.raw end
  if type(v) == "number" then return string.format("%.17g", v) end
  local out = {}
  if mt == JSON_ARRAY then
    for i = 1, #v do out[i] = json_encode(v[i]) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  -- An object: its original key order, then keys added since.
  local keys, listed = {}, {}
  for _, k in ipairs(json_order[v] or {}) do
    if v[k] ~= nil then keys[#keys + 1] = k; listed[k] = true end
  end
  local added = {}
  for k, _ in pairs(v) do if not listed[k] then added[#added + 1] = k end end
  table.sort(added)
  for _, k in ipairs(added) do keys[#keys + 1] = k end
  for i, k in ipairs(keys) do out[i] = encode_string(k) .. ":" .. json_encode(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

local json = {
  decode = json_decode, encode = json_encode, number = json_number, object = json_new_object,
  NULL = JSON_NULL, OBJECT = JSON_OBJECT, ARRAY = JSON_ARRAY,
}
