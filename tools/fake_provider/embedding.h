// Deterministic fake embeddings: the same input text always yields the same vector, and
// different texts almost always differ. Values are multiples of 1/1024 in [-1, 1] so they
// print exactly and survive a float32 base64 round trip. Pure; thread-safe.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_EMBEDDING_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_EMBEDDING_H_

#include <string>
#include <string_view>
#include <vector>

namespace turnpike::fake_provider {

inline constexpr int kDefaultEmbeddingDims = 8;

std::vector<float> FakeEmbedding(std::string_view text, int dims = kDefaultEmbeddingDims);

// Base64 of the little-endian float32 bytes of `v` (OpenAI `encoding_format: "base64"`).
std::string EmbeddingBase64(const std::vector<float>& v);

// Appends `v` as a JSON array of numbers.
void AppendEmbeddingJson(std::string* out, const std::vector<float>& v);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_EMBEDDING_H_
