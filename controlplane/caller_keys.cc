#include "controlplane/caller_keys.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>

#include "absl/strings/escaping.h"

namespace turnpike::controlplane {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kBodyLength = 43;     // ceil(256 / log2(62))
constexpr size_t kChecksumLength = 6;  // ceil(32 / log2(62))

uint32_t Crc32(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

// Big-endian bytes as a fixed-width base62 number.
std::string Base62(std::string bytes, size_t width) {
  std::string out(width, '0');
  for (size_t pos = width; pos-- > 0;) {
    uint32_t rem = 0;
    for (char& b : bytes) {
      uint32_t cur = (rem << 8) | static_cast<unsigned char>(b);
      b = static_cast<char>(cur / 62);
      rem = cur % 62;
    }
    out[pos] = kAlphabet[rem];
  }
  return out;
}

std::string Checksum(std::string_view prefix_and_body) {
  uint32_t crc = Crc32(prefix_and_body);
  std::string be(4, '\0');
  for (int i = 0; i < 4; ++i) be[i] = static_cast<char>((crc >> (8 * (3 - i))) & 0xff);
  return Base62(be, kChecksumLength);
}

bool IsBase62(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::StatusOr<GeneratedCallerKey> GenerateCallerKey() {
  return GenerateKeyWithPrefix(kCallerKeyPrefix);
}

bool IsWellFormedCallerKey(std::string_view key) {
  return IsWellFormedKeyWithPrefix(key, kCallerKeyPrefix);
}

absl::StatusOr<GeneratedCallerKey> GenerateKeyWithPrefix(std::string_view prefix) {
  if (prefix.size() != kCallerKeyPrefix.size()) {
    return absl::InvalidArgumentError("key prefixes are 4 characters");
  }
  std::string random(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(random.data()), 32) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  GeneratedCallerKey out;
  out.key = std::string(prefix) + Base62(random, kBodyLength);
  out.key += Checksum(out.key);
  out.sha256_hex = Sha256Hex(out.key);
  out.display_prefix = out.key.substr(0, 12);
  return out;
}

bool IsWellFormedKeyWithPrefix(std::string_view key, std::string_view prefix) {
  if (key.size() != kCallerKeyLength || prefix.size() != kCallerKeyPrefix.size() ||
      key.substr(0, prefix.size()) != prefix) {
    return false;
  }
  for (char ch : key.substr(prefix.size())) {
    if (!IsBase62(ch)) return false;
  }
  size_t split = kCallerKeyLength - kChecksumLength;
  return Checksum(key.substr(0, split)) == key.substr(split);
}

}  // namespace turnpike::controlplane
