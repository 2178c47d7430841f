// turnpike-fake-provider's server core: one evhttp server on one libevent loop that answers
// the OpenAI, Azure OpenAI, Anthropic, Gemini, vLLM, llama.cpp and Ollama wire protocols
// (selected by path prefix), applies per-request faults (x-fake-* headers, [[fake ...]]
// directives, the /_fake/faults queue) and exposes /_fake/* introspection endpoints.
//
// The FakeProvider borrows the event_base (owned by main) and owns the evhttp, the request
// log, the fault queue and every in-flight ResponseSession. It is not thread-safe: create,
// run and destroy it on the thread that runs the event loop. Destroying it abandons any
// in-flight responses and closes all connections.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_FAKE_PROVIDER_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_FAKE_PROVIDER_H_

#include <event2/event.h>
#include <event2/http.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>

#include "absl/status/statusor.h"
#include "tools/fake_provider/fault_spec.h"
#include "tools/fake_provider/provider.h"
#include "tools/fake_provider/request_log.h"
#include "tools/fake_provider/request_parser.h"
#include "tools/fake_provider/response_session.h"

namespace turnpike::fake_provider {

class FakeProvider : public ResponseSession::Observer {
 public:
  struct Options {
    std::string listen_host = "127.0.0.1";
    int listen_port = 0;  // 0: an ephemeral port, see port()
    // The credential every provider route expects; empty disables auth checks.
    std::string api_key = "fake-key";
    int default_chunks = 5;
    int default_chunk_delay_ms = 0;
    int stall_timeout_ms = 60000;
    size_t max_recorded_requests = 10000;
    int idle_timeout_s = 300;
    size_t max_body_bytes = 64 << 20;
  };

  // Binds and starts serving on `base`. Fails with UNAVAILABLE if the address cannot be
  // bound and INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<FakeProvider>> Create(event_base* base,
                                                              const Options& options);
  ~FakeProvider() override;

  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  // The bound port (the real one when listen_port was 0).
  int port() const { return port_; }

 private:
  FakeProvider(event_base* base, const Options& options);

  static void OnRequestThunk(evhttp_request* req, void* arg);
  void OnRequest(evhttp_request* req);
  void HandleControl(evhttp_request* req, std::string_view path);
  void HandleProvider(evhttp_request* req, const Route& route, const char* query,
                      std::string_view body);
  std::optional<ErrorSpec> CheckCredentials(const Route& route, evkeyvalq* headers,
                                            evkeyvalq* query) const;
  void Dispatch(evhttp_request* req, ResponsePlan plan);
  void SendJson(evhttp_request* req, int status, const std::string& body);

  // ResponseSession::Observer.
  void OnSessionDone(ResponseSession* session, ResponseSession::Outcome outcome) override;

  // Constant after construction.
  event_base* const base_;
  const Options options_;
  evhttp* http_ = nullptr;
  int port_ = 0;

  // Event-loop state.
  RequestParser parser_;
  RequestLog log_;
  std::deque<FaultSpec> fault_queue_;
  ProviderStats stats_;
  std::unordered_set<ResponseSession*> sessions_;
  uint64_t next_id_ = 1;
};

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_FAKE_PROVIDER_H_
