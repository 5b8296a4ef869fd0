// Command backend is the gateway benchmark's model server: it answers every chat completion at
// once with a fixed OpenAI reply that reports its usage, so that what a benchmark measures in
// front of it is the proxy, not the model.
//
//	POST /v1/chat/completions  non-streaming: one fixed completion (usage 100 + 10 = 110 tokens);
//	                           "stream": true: 64 chunks of one token each, flushed one by one, then
//	                           the usage chunk (100 + 64 = 164 tokens) when stream_options.include_usage
//	                           is true, then [DONE]
//	GET  /v1/models            the one model
//	GET  /health               200
//
// A request header X-Bench-Delay-Ms (at most 10000) delays the answer: a model that takes time,
// for the accuracy check, where every call in flight counts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"
)

const (
	promptTokens    = 100
	replyTokens     = 10
	streamTokens    = 64
	maxBodyBytes    = 1 << 20
	maxDelay        = 10 * time.Second
	delayHeaderName = "X-Bench-Delay-Ms"
)

type request struct {
	Stream        bool `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type replies struct {
	completion []byte   // the whole non-streaming answer
	chunks     [][]byte // one SSE event per token
	usage      []byte   // the final SSE event with usage
	models     []byte
}

func usage(completion int) map[string]int {
	return map[string]int{
		"prompt_tokens": promptTokens, "completion_tokens": completion, "total_tokens": promptTokens + completion,
	}
}

func mustJSON(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

func event(v any) []byte {
	return []byte("data: " + string(mustJSON(v)) + "\n\n")
}

func buildReplies(model string) replies {
	created := time.Now().Unix()
	content := ""
	for i := 0; i < replyTokens; i++ {
		content += fmt.Sprintf("tok%d ", i)
	}
	r := replies{
		completion: mustJSON(map[string]any{
			"id": "chatcmpl-bench", "object": "chat.completion", "created": created, "model": model,
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": content},
			}},
			"usage": usage(replyTokens),
		}),
		usage: event(map[string]any{
			"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{}, "usage": usage(streamTokens),
		}),
		models: mustJSON(map[string]any{
			"object": "list",
			"data":   []any{map[string]any{"id": model, "object": "model", "created": created, "owned_by": "bench"}},
		}),
	}
	for i := 0; i < streamTokens; i++ {
		var finish any
		if i == streamTokens-1 {
			finish = "stop"
		}
		r.chunks = append(r.chunks, event(map[string]any{
			"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": finish, "delta": map[string]any{"content": fmt.Sprintf("tok%d ", i)},
			}},
		}))
	}
	return r
}

func delay(req *http.Request) {
	ms, err := strconv.Atoi(req.Header.Get(delayHeaderName))
	if err != nil || ms <= 0 {
		return
	}
	time.Sleep(min(time.Duration(ms)*time.Millisecond, maxDelay))
}

func (r replies) chat(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBodyBytes))
	var parsed request
	if err == nil {
		err = json.Unmarshal(body, &parsed)
	}
	if err != nil {
		http.Error(w, "bad JSON body", http.StatusBadRequest)
		return
	}
	delay(req)
	if !parsed.Stream {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(r.completion)))
		_, _ = w.Write(r.completion)
		return
	}
	r.stream(w, parsed.StreamOptions.IncludeUsage)
}

func (r replies) stream(w http.ResponseWriter, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	for _, chunk := range r.chunks {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	if includeUsage {
		_, _ = w.Write(r.usage)
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on")
	model := flag.String("model", "simulated-model", "the model name in every answer")
	flag.Parse()
	r := buildReplies(*model)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", r.chat)
	mux.HandleFunc("/v1/models", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(r.models)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("bench backend: model %s on %s", *model, *listen)
	log.Fatal(server.ListenAndServe())
}
