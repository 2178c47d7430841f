#include "tools/fake_provider/embedding.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {
namespace {

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<float> FakeEmbedding(std::string_view text, int dims) {
  if (dims <= 0) dims = kDefaultEmbeddingDims;
  std::vector<float> v(dims);
  const uint64_t seed = Fnv1a64(text);
  for (int i = 0; i < dims; ++i) {
    const uint64_t r = SplitMix64(seed + static_cast<uint64_t>(i));
    const int k = static_cast<int>(r % 2049) - 1024;  // [-1024, 1024]
    v[i] = static_cast<float>(k) / 1024.0f;
  }
  return v;
}

std::string EmbeddingBase64(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
  }
  return absl::Base64Escape(absl::string_view(bytes));
}

void AppendEmbeddingJson(std::string* out, const std::vector<float>& v) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonFloat(out, v[i]);
  }
  out->push_back(']');
}

}  // namespace turnpike::fake_provider
