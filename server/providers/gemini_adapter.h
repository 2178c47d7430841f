// The adapter for the Google Gemini API (docs/providers.md §3): `models/{model}:generateContent`
// and
// `:streamGenerateContent?alt=sse`, camelCase bodies, and google.rpc status error bodies. The
// key goes in the `x-goog-api-key` header, never in the `?key=` query (URLs get logged). The
// adapter is immutable after construction and thread-safe; the decoder it makes belongs to one
// response on one thread. Request building lives in gemini_adapter.cc, everything that reads
// Gemini JSON in gemini_response.cc.
//
// Decisions a caller may notice:
// * Roles: assistant → "model"; consecutive messages of one role become one Content with several
//   parts (Gemini has rejected non-alternating turns on some models); empty messages are left
//   out (Gemini rejects empty text). System messages become `systemInstruction.parts`, one part
//   each.
// * ChatParams::user is not sent: the API has no end-user field.
// * The stream has no terminal event: the finish is delivered at end of body if a chunk carried a
//   finishReason (or the prompt was blocked), so a trailing usage-only chunk is still counted.
// * Thought parts (`"thought": true`) are not part of the reply; their tokens
//   (thoughtsTokenCount) are billed as output.
#ifndef TURNPIKE_SERVER_PROVIDERS_GEMINI_ADAPTER_H_
#define TURNPIKE_SERVER_PROVIDERS_GEMINI_ADAPTER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/providers/provider_adapter.h"

namespace turnpike {

inline constexpr char kGeminiDefaultBaseUrl[] = "https://generativelanguage.googleapis.com";

class GeminiAdapter final : public ProviderAdapter {
 public:
  GeminiAdapter(const config::v1::Provider& provider, std::string api_key);

  HttpRequest BuildChatRequest(const ChatParams& params) const override;
  std::unique_ptr<StreamDecoder> NewStreamDecoder() const override;
  absl::StatusOr<ChatResult> ParseChatResponse(std::string_view body) const override;
  ProviderError ParseError(int http_status, std::string_view body) const override;

 private:
  // Constant after construction.
  const std::string api_key_;
  std::string versioned_base_;  // e.g. https://generativelanguage.googleapis.com/v1beta
  std::vector<std::string> stream_headers_;
  std::vector<std::string> unary_headers_;
};

// Chooses the error class from an HTTP-style `code` (the response status, or the body's
// `error.code` for an error inside a 200 stream; 0 if neither), the google.rpc `status` string
// and the ErrorInfo `reason`. An API_KEY_* reason is kAuth whatever the code (an invalid key is a
// 400); otherwise the code decides, and the status string when the code is unknown.
ProviderErrorClass ClassifyGeminiError(int code, std::string_view status, std::string_view reason);

// Maps a Gemini `finishReason` to the normalized finish reason.
v1::FinishReason GeminiFinishReason(std::string_view finish_reason);

// Parses a google.protobuf.Duration in JSON form ("17s", "0.5s") to milliseconds, rounded up;
// 0 if it is not one.
int64_t GeminiDurationMs(std::string_view duration);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_PROVIDERS_GEMINI_ADAPTER_H_
