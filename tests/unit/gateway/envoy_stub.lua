-- The part of Envoy's Lua filter API that gateway.lua uses, for running it outside Envoy:
-- header maps (multi-valued, ordered, iterable with pairs), a buffered body, dynamic metadata
-- shared by the whole stream, respond() and the log calls. Nothing here decides a budget.

local stub = {}

-- Envoy builds LuaJIT with LUAJIT_ENABLE_LUA52COMPAT, so pairs() honours __pairs (its header maps
-- rely on it); a LuaJIT built without it needs this wrapper to run the same script.
function stub.install_pairs()
  local raw_pairs = pairs
  pairs = function(t)
    local mt = getmetatable(t)
    if mt ~= nil and type(mt) == "table" and mt.__pairs ~= nil then return mt.__pairs(t) end
    return raw_pairs(t)
  end
end

local function header_map(list)
  local entries = {}
  for _, pair in ipairs(list) do entries[#entries + 1] = { string.lower(pair[1]), pair[2] } end
  local map = { entries = entries }
  local methods = {}
  function methods:get(name)
    name = string.lower(name)
    for _, e in ipairs(self.entries) do if e[1] == name then return e[2] end end
    return nil
  end
  function methods:getNumValues(name)
    name = string.lower(name)
    local n = 0
    for _, e in ipairs(self.entries) do if e[1] == name then n = n + 1 end end
    return n
  end
  function methods:getAtIndex(name, index)
    name = string.lower(name)
    local n = 0
    for _, e in ipairs(self.entries) do
      if e[1] == name then
        if n == index then return e[2] end
        n = n + 1
      end
    end
    return nil
  end
  function methods:remove(name)
    name = string.lower(name)
    local kept = {}
    for _, e in ipairs(self.entries) do if e[1] ~= name then kept[#kept + 1] = e end end
    self.entries = kept
  end
  function methods:add(name, value)
    self.entries[#self.entries + 1] = { string.lower(name), tostring(value) }
  end
  function methods:replace(name, value)
    if type(value) ~= "string" then error("header values are strings, got " .. type(value)) end
    self:remove(name)
    self:add(name, value)
  end
  return setmetatable(map, {
    __index = methods,
    -- Envoy's header map iterates with pairs(); LuaJIT in Envoy is built with __pairs support.
    __pairs = function(self)
      local i = 0
      return function()
        i = i + 1
        local e = self.entries[i]
        if e ~= nil then return e[1], e[2] end
        return nil
      end, self, nil
    end,
  })
end
stub.header_map = header_map

local function buffer(bytes)
  local b = { bytes = bytes }
  function b:length() return #self.bytes end
  function b:getBytes(index, length) return string.sub(self.bytes, index + 1, index + length) end
  function b:setBytes(s) self.bytes = s end
  return b
end

-- Dynamic metadata of one stream: namespace -> {key -> value}.
function stub.metadata()
  local md = { namespaces = {} }
  function md:set(ns, key, value)
    self.namespaces[ns] = self.namespaces[ns] or {}
    self.namespaces[ns][key] = value
  end
  function md:get(ns) return self.namespaces[ns] end
  return md
end

-- A handle for one direction of a stream: its headers, its body (nil: none) and the stream's metadata.
-- handle.reply is set when the script calls respond(); handle.logs collects its log lines.
function stub.handle(header_list, body, md)
  local h = { hdrs = header_map(header_list), buf = body and buffer(body) or nil, md = md, logs = {} }
  function h:headers() return self.hdrs end
  -- Envoy buffers the body for body(); past its buffer limit it answers 413 and never resumes
  -- the script (h.too_large, set by the caller).
  function h:body()
    if self.too_large then coroutine.yield("413") end
    return self.buf
  end
  -- h.broken_metadata: the metadata API fails, as any Envoy API call can (tests the fail-closed wrapper).
  function h:streamInfo()
    local md_ = self.md
    if self.broken_metadata then error("dynamic metadata unavailable") end
    return { dynamicMetadata = function() return md_ end }
  end
  -- Envoy's bodyChunks(): the body's chunks as they pass, unbuffered; here the body is one chunk.
  function h:bodyChunks()
    local done = false
    return function()
      if done or self.buf == nil then return nil end
      done = true
      return self.buf
    end
  end
  -- Envoy picks the route again on the next filter; h.route_header records the route header's value
  -- at the last clearing (h.route_header_name, set by the caller), which is what cluster_header reads,
  -- and h.route_match the headers the routes match on (x-maas-llama-stack, x-maas-onward).
  function h:clearRouteCache()
    self.route_cleared = true
    self.route_header = self.hdrs:get(self.route_header_name or "x-maas-cluster")
    self.route_match = {
      llama_stack = self.hdrs:get("x-maas-llama-stack"),
      onward = self.hdrs:get("x-maas-onward"),
    }
  end
  -- Envoy sends the reply and never resumes the script (respond() yields for good).
  function h:respond(headers, reply_body)
    local list = {}
    for k, v in pairs(headers) do list[#list + 1] = { k, v } end
    table.sort(list, function(a, b) return a[1] < b[1] end)
    self.reply = { headers = header_map(list), body = reply_body }
    coroutine.yield("respond")
  end
  local function log(level) return function(self, msg) self.logs[#self.logs + 1] = level .. ": " .. msg end end
  h.logErr, h.logWarn, h.logInfo, h.logDebug, h.logTrace = log("err"), log("warn"), log("info"), log("debug"), log("trace")
  return h
end

return stub
