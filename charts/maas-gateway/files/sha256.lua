-- SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) over LuaJIT's `bit` module, which Envoy's
-- LuaJIT opens with the standard libraries. Used to compare a presented API key with the salted
-- hashes of the key file; the plaintext key is never stored.
-- `bit` works on signed 32-bit integers; bit.tobit wraps every sum back into that range.
local sha256 = {}
do
  local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
  local rshift, lshift, ror, tobit, tohex = bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
  local K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  }
  for i = 1, 64 do K[i] = tobit(K[i]) end
  local W = {}

  local function block(H, s, off)
    for i = 1, 16 do
      local a, b, c, d = s:byte(off + i * 4 - 4, off + i * 4 - 1)
      W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 17, 64 do
      local w15, w2 = W[i - 15], W[i - 2]
      local s0 = bxor(ror(w15, 7), ror(w15, 18), rshift(w15, 3))
      local s1 = bxor(ror(w2, 17), ror(w2, 19), rshift(w2, 10))
      W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
    for i = 1, 64 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[i] + W[i])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + S0 + maj)
    end
    H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
    H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
  end

  -- The 32-byte digest of s, as a binary string.
  function sha256.digest(s)
    local n = #s
    -- Padding: 0x80, zeros to 56 mod 64, then the bit length as 64-bit big-endian.
    local bits = n * 8
    local hi, lo = math.floor(bits / 4294967296), bits % 4294967296
    s = s .. "\128" .. string.rep("\0", (55 - n) % 64) .. string.char(
      band(rshift(hi, 24), 255), band(rshift(hi, 16), 255), band(rshift(hi, 8), 255), band(hi, 255),
      band(rshift(lo, 24), 255), band(rshift(lo, 16), 255), band(rshift(lo, 8), 255), band(lo, 255))
    local H = {
      tobit(0x6a09e667), tobit(0xbb67ae85), tobit(0x3c6ef372), tobit(0xa54ff53a),
      tobit(0x510e527f), tobit(0x9b05688c), tobit(0x1f83d9ab), tobit(0x5be0cd19),
    }
    for off = 1, #s, 64 do block(H, s, off) end
    local out = {}
    for i = 1, 8 do
      local v = H[i]
      out[i] = string.char(band(rshift(v, 24), 255), band(rshift(v, 16), 255), band(rshift(v, 8), 255), band(v, 255))
    end
    return table.concat(out)
  end

  local function hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
  end

  function sha256.hex(s) return hex(sha256.digest(s)) end

  local function xor_pad(key, byte)
    return (key:gsub(".", function(c) return string.char(bxor(c:byte(), byte)) end))
  end

  -- HMAC-SHA-256 of message under key, as lowercase hex.
  function sha256.hmac_hex(key, message)
    if #key > 64 then key = sha256.digest(key) end
    key = key .. string.rep("\0", 64 - #key)
    return hex(sha256.digest(xor_pad(key, 0x5c) .. sha256.digest(xor_pad(key, 0x36) .. message)))
  end
end
