// The one redactor every sink of request or reply text goes through (docs/request-log.md,
// "The redactor"): it replaces emails, phone numbers, payment cards (Luhn), IBANs (mod-97), US
// social security numbers, IP addresses, API keys and tokens (OpenAI, Anthropic, AWS, GitHub,
// Google, Slack, JWTs, PEM private keys, Bearer values, Turnpike caller keys) and a route's custom
// patterns with typed placeholders such as [EMAIL] or [SECRET]. Every pattern is RE2 (linear time
// on any input), one pass per kind; checksums are checked in code after the pattern matched. A
// Redactor is built once per route when a snapshot is loaded (Create compiles the patterns) and is
// immutable afterwards: thread-safe, shared by the request log and, later, the audit trail.
#ifndef TURNPIKE_COMMON_REDACTOR_H_
#define TURNPIKE_COMMON_REDACTOR_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace turnpike {

class Redactor {
 public:
  // Bounds on a route's custom patterns (checked by CheckCustomPattern).
  static constexpr size_t kMaxCustomPatterns = 16;
  static constexpr size_t kMaxCustomPatternBytes = 512;

  // The built-in patterns plus `custom` ones (RE2 syntax, replaced with [CUSTOM]).
  // INVALID_ARGUMENT naming the first pattern that does not compile or is out of bounds.
  static absl::StatusOr<std::shared_ptr<const Redactor>> Create(
      const std::vector<std::string>& custom = {});
  // The built-in patterns only; never fails.
  static std::shared_ptr<const Redactor> Default();

  // OK if `pattern` is acceptable as a custom pattern: 1 to kMaxCustomPatternBytes bytes, compiles
  // with RE2, cannot match the empty string.
  static absl::Status CheckCustomPattern(std::string_view pattern);

  ~Redactor();
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // `text` with every finding replaced by its placeholder. Linear in the size of `text`.
  std::string Redact(std::string_view text) const;

 private:
  explicit Redactor(std::unique_ptr<re2::RE2> custom);

  // The built-in patterns are shared by every Redactor (compiled once per process).
  const std::unique_ptr<re2::RE2> custom_;  // null when the route has none
};

// `s` cut to at most `max_bytes` without splitting a UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_REDACTOR_H_
