#include "server/usage/audit_evidence.h"

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace turnpike {
namespace {

const char* PolicyName(config::v1::ContentPolicy policy) {
  switch (policy) {
    case config::v1::CONTENT_POLICY_HASH:
      return "HASH";
    case config::v1::CONTENT_POLICY_REDACTED:
      return "REDACTED";
    case config::v1::CONTENT_POLICY_FULL:
      return "FULL";
    default:
      return "NONE";
  }
}

// `text` redacted, then cut to what is left of `budget`. The trail keeps no unredacted text
// even under FULL: its entries can never be edited or erased without breaking the chain, so what
// must stay erasable (PII, secrets) must never enter it. FULL text goes to the request log only.
std::string Excerpt(const RequestContent& content, std::string_view text, size_t& budget,
                    bool& truncated) {
  RequestContent redacted_view;
  redacted_view.policy = config::v1::CONTENT_POLICY_REDACTED;
  redacted_view.redactor = content.redactor;
  return PolicyText(redacted_view, text, budget, truncated);
}

}  // namespace

void FillEvidenceHeader(const RequestFinished& event, usage::v1::AuditEvidence& evidence) {
  evidence.set_provider_host(event.provider_host);
  evidence.set_content_policy(PolicyName(
      event.content != nullptr ? event.content->policy : config::v1::CONTENT_POLICY_NONE));
}

void FillContentEvidence(const RequestContent& content, size_t excerpt_max_bytes,
                         usage::v1::AuditEvidence& evidence) {
  evidence.set_content_policy(PolicyName(content.policy));
  if (content.policy != config::v1::CONTENT_POLICY_HASH &&
      content.policy != config::v1::CONTENT_POLICY_REDACTED &&
      content.policy != config::v1::CONTENT_POLICY_FULL) {
    return;
  }
  const bool chat = content.inputs.empty();
  evidence.set_request_sha256(Sha256Hex(CanonicalRequest(content)));
  if (chat) evidence.set_reply_sha256(Sha256Hex(content.reply));
  if (content.policy == config::v1::CONTENT_POLICY_HASH) return;
  // One line per message ("ROLE_USER: text") or per input, within one budget for the request.
  bool truncated = false;
  size_t budget = excerpt_max_bytes;
  std::string request;
  if (chat) {
    for (const auto& [role, text] : content.messages) {
      if (!request.empty()) request.push_back('\n');
      absl::StrAppend(&request, role, ": ", Excerpt(content, text, budget, truncated));
    }
  } else {
    for (const std::string& input : content.inputs) {
      if (!request.empty()) request.push_back('\n');
      absl::StrAppend(&request, Excerpt(content, input, budget, truncated));
    }
  }
  evidence.set_request_excerpt(std::move(request));
  if (chat) {
    budget = excerpt_max_bytes;
    evidence.set_reply_excerpt(Excerpt(content, content.reply, budget, truncated));
  }
  evidence.set_excerpt_truncated(truncated);
}

}  // namespace turnpike
