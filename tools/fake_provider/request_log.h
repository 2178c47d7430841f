// What the fake provider remembers for introspection: the last N provider requests as
// received (for `GET /_fake/requests`) and the stream counters (for `GET /_fake/stats`).
// Tests use these to prove what the gateway sent upstream and that a client cancel
// stopped the upstream transfer. Not thread-safe (event loop thread only).
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_REQUEST_LOG_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_REQUEST_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider {

struct RecordedRequest {
  std::string method;
  std::string path;
  std::string query;   // raw query string without '?', "" when absent
  HeaderList headers;  // names lowercased, in arrival order
  std::string body;    // raw body bytes
};

struct ProviderStats {
  uint64_t requests = 0;           // provider requests received (everything but /_fake/*)
  uint64_t active_streams = 0;     // streaming responses in progress
  uint64_t completed_streams = 0;  // streams the fake finished sending
  uint64_t aborted_streams = 0;    // streams whose client went away before the end
  uint64_t reset_streams = 0;      // streams the fake cut (reset fault, stall timeout)
  uint64_t aborted_replies = 0;    // non-streaming replies whose client left while delayed
};

class RequestLog {
 public:
  explicit RequestLog(size_t capacity) : capacity_(capacity) {}

  void Add(RecordedRequest request);
  void Clear() { entries_.clear(); }
  size_t size() const { return entries_.size(); }

  // JSON array of {"method","path","query","headers":{name: value},"body"} in arrival
  // order. Repeated header names are joined with ", ".
  std::string ToJson() const;

 private:
  const size_t capacity_;
  std::deque<RecordedRequest> entries_;
};

std::string StatsJson(const ProviderStats& stats, size_t queued_faults);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_REQUEST_LOG_H_
