#include "server/exchange/request_finished.h"

#include <openssl/evp.h>

#include "common/json_writer.h"
#include "common/redactor.h"

namespace turnpike {

const char* RequestMethodName(RequestMethod method) {
  switch (method) {
    case RequestMethod::kStreamCompletion:
      return "StreamCompletion";
    case RequestMethod::kComplete:
      return "Complete";
    case RequestMethod::kEmbed:
      return "Embed";
    case RequestMethod::kClassify:
      return "Classify";
  }
  return "Unknown";
}

std::string CanonicalRequest(const RequestContent& content) {
  JsonWriter w;
  w.BeginObject();
  if (!content.inputs.empty()) {
    w.Key("inputs").BeginArray();
    for (const std::string& input : content.inputs) w.String(input);
    w.EndArray();
  } else {
    w.Key("messages").BeginArray();
    for (const auto& [role, text] : content.messages) {
      w.BeginObject().Key("role").String(role).Key("content").String(text).EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return w.Release();
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string PolicyText(const RequestContent& content, std::string_view text, size_t& budget,
                       bool& truncated) {
  if (content.policy == config::v1::CONTENT_POLICY_FULL) return std::string(text);
  const std::string redacted = content.redactor->Redact(text);
  const std::string_view kept = TruncateUtf8(redacted, budget);
  if (kept.size() < redacted.size()) truncated = true;
  budget -= kept.size();
  return std::string(kept);
}

}  // namespace turnpike
