// A chat request as the gateway received it (ChatRequest), and what follows from it before any
// upstream is asked: the features it uses (what routing asks of a target), its response-cache
// key, and the form of it a given target is sent. ChatExchange (chat_exchange.h) is built on
// these. A ChatRequest is a value the caller owns; the functions are pure (no I/O, no clock) and
// safe to call from any thread.
#ifndef TURNPIKE_SERVER_EXCHANGE_CHAT_REQUEST_H_
#define TURNPIKE_SERVER_EXCHANGE_CHAT_REQUEST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/config/runtime_config.h"
#include "server/providers/provider_adapter.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

struct ChatRequest {
  // Owned by the caller; outlives the exchange.
  const google::protobuf::RepeatedPtrField<v1::Message>* messages = nullptr;
  std::optional<int32_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  // Owned by the caller; may be null.
  const google::protobuf::RepeatedPtrField<v1::Tool>* tools = nullptr;
  v1::ToolChoice tool_choice;
  v1::ResponseFormat response_format;
  // Sent instead to a target that cannot serve a JSON Schema response format (a
  // classification's forced tool call, docs/classification.md); may be null.
  std::shared_ptr<const ChatRequest> without_json_schema;
  // Unary only: judges each reply before it commits. An error (with ErrorInfo kBadAnswerReason,
  // failure_kind.h) fails the attempt: the planner tries the next target, else the same; after
  // the second rejected reply the request ends with it.
  std::function<absl::Status(const ChatResult&)> check_reply;
};

// What a request uses beyond plain text, in enum order (CompletionStart.features, and what
// routing asks of a target).
std::vector<v1::RequestFeature> ChatFeatures(const ChatRequest& request);

// The response-cache key of a request: a SHA-256 over its normalized form (capability, messages,
// the resolved max_tokens and the sampling parameters; not the user or the request id).
std::string ChatCacheKey(std::string_view capability, const ChatRequest& request,
                         int32_t max_tokens);

// What to send `target`: `request` itself, or its form without a JSON Schema
// (`request.without_json_schema`) when it has one and the target cannot serve a JSON Schema.
// The result refers to `request` or to what it holds.
const ChatRequest& ChatFormFor(const ChatRequest& request, const TargetEntry& target);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_CHAT_REQUEST_H_
