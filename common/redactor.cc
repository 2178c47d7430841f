#include "common/redactor.h"

#include <arpa/inet.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "re2/re2.h"

namespace turnpike {
namespace {

enum class Check { kNone, kLuhn, kIban, kSsn, kIpv4, kIpv6 };

struct Kind {
  const char* pattern;  // RE2, ASCII only; becomes one capturing group of the combined pattern
  const char* placeholder;
  Check check;
};

// Applied one after the other, in this order, each to the previous one's output (so a key is
// replaced before the email or phone shapes inside it are looked at). Each kind is its own RE2:
// one combined alternation would be quadratic, because a long-lived thread of one kind (an email
// local part over a run of digits) would hold back the match of another at every call. Every
// pattern ends at the first byte outside its character classes or after a bounded count, so no
// match attempt outlives a run of its own characters.
constexpr Kind kKinds[] = {
    // PEM private key blocks: the header, the base64 body, and the footer when there is one.
    {R"(-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s]*(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?)",
     "[SECRET]", Check::kNone},
    // JWTs: three base64url segments, the first a JSON object ("eyJ").
    {R"(\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)", "[SECRET]", Check::kNone},
    // API keys: OpenAI and Anthropic (sk-, sk-ant-), AWS access keys, GitHub tokens, Google API
    // keys, Slack tokens, Turnpike caller keys.
    {R"(\b(?:sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,}|AIza[0-9A-Za-z_-]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}|tpk_[A-Za-z0-9]{20,}))",
     "[SECRET]", Check::kNone},
    // Bearer credentials, whatever their shape.
    {R"(\b(?i:bearer)\s{1,8}[A-Za-z0-9._~+/=-]{8,})", "[SECRET]", Check::kNone},
    {R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b)", "[EMAIL]",
     Check::kNone},
    {R"(\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)", "[IBAN]", Check::kIban},
    // 13 to 19 digits, single spaces or dashes between them.
    {R"(\b[0-9](?:[ -]?[0-9]){12,18}\b)", "[CARD]", Check::kLuhn},
    {R"(\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b)", "[SSN]", Check::kSsn},
    // E.164 (+ and 8 to 15 digits, separators allowed) and North American numbers.
    {R"(\+[1-9](?:[ .-]?[0-9]){7,14}\b|(?:\b1[ .-])?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b)",
     "[PHONE]", Check::kNone},
    {R"(\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b)", "[IP]", Check::kIpv4},
    {R"((?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}\b|::(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}\b)",
     "[IP]", Check::kIpv6},
};
constexpr int kNumKinds = sizeof(kKinds) / sizeof(kKinds[0]);

// Card numbers: 13 to 19 digits whose Luhn checksum is 0.
bool LuhnValid(std::string_view s) {
  int sum = 0;
  int digits = 0;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] < '0' || s[i] > '9') continue;
    int d = s[i] - '0';
    if (digits % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    ++digits;
  }
  return digits >= 13 && digits <= 19 && sum % 10 == 0;
}

// IBANs: 15 to 34 characters; moving the first four to the end and reading letters as 10..35
// gives a number whose remainder modulo 97 is 1 (ISO 13616).
bool IbanValid(std::string_view s) {
  std::string compact;
  for (char c : s) {
    if (c != ' ') compact.push_back(c);
  }
  if (compact.size() < 15 || compact.size() > 34) return false;
  const std::string rotated = compact.substr(4) + compact.substr(0, 4);
  int remainder = 0;
  for (char c : rotated) {
    if (c >= '0' && c <= '9') {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else {
      remainder = (remainder * 100 + (c - 'A' + 10)) % 97;
    }
  }
  return remainder == 1;
}

// US SSNs: never area 000, 666 or 9xx, group 00 or serial 0000.
bool SsnValid(std::string_view s) {
  const std::string_view area = s.substr(0, 3), group = s.substr(4, 2), serial = s.substr(7, 4);
  return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000";
}

bool Ipv4Valid(std::string_view s) {
  int value = 0;
  for (char c : s) {
    if (c == '.') {
      value = 0;
      continue;
    }
    value = value * 10 + (c - '0');
    if (value > 255) return false;
  }
  return true;
}

// At least three groups (so "dead::" or "a:b" in prose stay), and a valid address.
bool Ipv6Valid(std::string_view s) {
  int groups = 0;
  bool in_group = false;
  for (char c : s) {
    const bool hex = c != ':';
    if (hex && !in_group) ++groups;
    in_group = hex;
  }
  if (groups < 3) return false;
  std::string copy(s);
  unsigned char buf[16];
  return inet_pton(AF_INET6, copy.c_str(), buf) == 1;
}

bool Passes(Check check, std::string_view s) {
  switch (check) {
    case Check::kNone:
      return true;
    case Check::kLuhn:
      return LuhnValid(s);
    case Check::kIban:
      return IbanValid(s);
    case Check::kSsn:
      return SsnValid(s);
    case Check::kIpv4:
      return Ipv4Valid(s);
    case Check::kIpv6:
      return Ipv6Valid(s);
  }
  return false;
}

RE2::Options BuiltinOptions() {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);  // ASCII patterns; any byte is text
  options.set_log_errors(false);
  options.set_max_mem(8 << 20);
  return options;
}

RE2::Options CustomOptions() {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(8 << 20);
  return options;
}

// Most instructions a custom pattern may compile to (a bound on its DFA's size and speed).
constexpr int kMaxCustomProgramSize = 5000;

// The built-in kinds, compiled once for the process (RE2 objects are thread-safe).
const std::vector<std::unique_ptr<RE2>>& BuiltinKinds() {
  static const auto* kinds = [] {
    auto* out = new std::vector<std::unique_ptr<RE2>>();
    for (const Kind& kind : kKinds) {
      out->push_back(std::make_unique<RE2>(kind.pattern, BuiltinOptions()));
    }
    return out;
  }();
  return *kinds;
}

// `text` with every match of `re` that passes `check` replaced by `placeholder`.
std::string ReplaceAll(const RE2& re, std::string_view text, const char* placeholder, Check check) {
  std::string out;
  const re2::StringPiece input(text.data(), text.size());
  re2::StringPiece match;
  size_t pos = 0;
  size_t copied = 0;  // input before this is in `out`
  bool replaced = false;
  while (pos < text.size() && re.Match(input, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
    const size_t start = static_cast<size_t>(match.data() - text.data());
    const size_t end = start + match.size();
    if (end > start && Passes(check, std::string_view(match.data(), match.size()))) {
      if (!replaced) out.reserve(text.size());
      replaced = true;
      out.append(text.data() + copied, start - copied);
      out.append(placeholder);
      copied = end;
    }
    pos = end > start ? end : start + 1;
  }
  if (!replaced) return std::string(text);
  out.append(text.data() + copied, text.size() - copied);
  return out;
}

}  // namespace

absl::Status Redactor::CheckCustomPattern(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > kMaxCustomPatternBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a redaction pattern must be 1 to ", kMaxCustomPatternBytes, " bytes"));
  }
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), CustomOptions());
  if (!re.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not a valid RE2 pattern: ", re.error()));
  }
  if (re.ProgramSize() > kMaxCustomProgramSize) {
    return absl::InvalidArgumentError("the pattern is too complex (bounded repetitions too large)");
  }
  if (RE2::FullMatch("", re)) {
    return absl::InvalidArgumentError("the pattern matches the empty string");
  }
  return absl::OkStatus();
}

Redactor::Redactor(std::unique_ptr<RE2> custom) : custom_(std::move(custom)) {}

Redactor::~Redactor() = default;

absl::StatusOr<std::shared_ptr<const Redactor>> Redactor::Create(
    const std::vector<std::string>& custom) {
  if (custom.size() > kMaxCustomPatterns) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxCustomPatterns, " redaction patterns"));
  }
  std::string combined;
  for (size_t i = 0; i < custom.size(); ++i) {
    if (absl::Status s = CheckCustomPattern(custom[i]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("redaction_patterns[", i, "]: ", s.message()));
    }
    absl::StrAppend(&combined, i == 0 ? "" : "|", "(?:", custom[i], ")");
  }
  for (const auto& kind : BuiltinKinds()) {
    if (!kind->ok()) return absl::InternalError("a built-in redaction pattern does not compile");
  }
  std::unique_ptr<RE2> custom_re;
  if (!combined.empty()) {
    custom_re = std::make_unique<RE2>(combined, CustomOptions());
    if (!custom_re->ok()) return absl::InvalidArgumentError("redaction_patterns do not compile");
  }
  return std::shared_ptr<const Redactor>(new Redactor(std::move(custom_re)));
}

std::shared_ptr<const Redactor> Redactor::Default() {
  static const std::shared_ptr<const Redactor> instance = *Create();
  return instance;
}

std::string Redactor::Redact(std::string_view text) const {
  std::string out(text);
  const std::vector<std::unique_ptr<RE2>>& kinds = BuiltinKinds();
  for (int i = 0; i < kNumKinds; ++i) {
    out = ReplaceAll(*kinds[static_cast<size_t>(i)], out, kKinds[i].placeholder, kKinds[i].check);
  }
  if (custom_ != nullptr) out = ReplaceAll(*custom_, out, "[CUSTOM]", Check::kNone);
  return out;
}

std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

}  // namespace turnpike
