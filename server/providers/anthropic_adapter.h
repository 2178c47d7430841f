// The adapter for the Anthropic Messages API (docs/providers.md §2): `POST {base}/v1/messages`, the
// `event:`-named SSE stream, and Anthropic's `{"type":"error","error":{type,message}}` bodies.
// The adapter is immutable after construction and thread-safe; the decoder it makes belongs to
// one response on one thread. Request building lives in anthropic_adapter.cc, the stream decoder
// in anthropic_stream_decoder.cc, and the rest that reads Anthropic JSON in anthropic_response.cc.
//
// Decisions a caller may notice:
// * temperature is clamped to Anthropic's 0–1 (ours is 0–2); BuildChatRequest cannot fail, and
//   values up to 1 (the common ones) keep their meaning exactly.
// * System messages become the top-level `system` string, joined with "\n\n"; user and
//   assistant messages are sent in order (Anthropic merges consecutive same-role turns itself);
//   messages with empty content are left out (Anthropic rejects empty text).
// * The stream's finish is delivered at `message_stop` (not at end of body), so a connection
//   that drops after it still counts as complete; events after `message_stop` are ignored.
// * Spend-limit and credit errors arrive as 400 invalid_request_error with only the message to
//   tell them apart; they are classified kQuotaExhausted (see ClassifyAnthropicError).
// * ChatParams::user is sent as metadata.user_id as given (Anthropic asks for an opaque id).
#ifndef TURNPIKE_SERVER_PROVIDERS_ANTHROPIC_ADAPTER_H_
#define TURNPIKE_SERVER_PROVIDERS_ANTHROPIC_ADAPTER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/providers/provider_adapter.h"

namespace turnpike {

inline constexpr char kAnthropicVersion[] = "2023-06-01";
inline constexpr char kAnthropicDefaultBaseUrl[] = "https://api.anthropic.com";

class AnthropicAdapter final : public ProviderAdapter {
 public:
  AnthropicAdapter(const config::v1::Provider& provider, std::string api_key);

  HttpRequest BuildChatRequest(const ChatParams& params) const override;
  std::unique_ptr<StreamDecoder> NewStreamDecoder() const override;
  absl::StatusOr<ChatResult> ParseChatResponse(std::string_view body) const override;
  ProviderError ParseError(int http_status, std::string_view body) const override;

 private:
  // Constant after construction.
  const std::string api_key_;
  std::string url_;                          // .../v1/messages
  std::vector<std::string> stream_headers_;  // complete header lines for a streamed request
  std::vector<std::string> unary_headers_;
};

// Chooses the error class from the HTTP status (0 for an `error` event inside a 200 stream), the
// body's `error.type` and `error.message`. HTTP 529 and overloaded_error are kOverloaded;
// billing_error, and any client-side error whose message names a credit balance, usage/spend
// limit or billing, is kQuotaExhausted (Anthropic sends those as 400 invalid_request_error);
// otherwise a known type decides, and the status when the type is unknown or missing.
ProviderErrorClass ClassifyAnthropicError(int http_status, std::string_view type,
                                          std::string_view message);

// Maps a Messages `stop_reason` to the normalized finish reason.
v1::FinishReason AnthropicFinishReason(std::string_view stop_reason);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_PROVIDERS_ANTHROPIC_ADAPTER_H_
