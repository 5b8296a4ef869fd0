"""The gateway's Lua script under unit test, between models of Envoy and envoyproxy/ratelimit."""
