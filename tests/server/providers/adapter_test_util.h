// Test helpers for the Anthropic and Gemini adapter tests: reading fixtures, a StreamSink that
// records everything, and running a recorded SSE body through SseParser + a StreamDecoder whole,
// as 1-byte reads, or as seeded random reads (deterministic, so failures reproduce).
#ifndef TURNPIKE_TESTS_PROVIDERS_ADAPTER_TEST_UTIL_H_
#define TURNPIKE_TESTS_PROVIDERS_ADAPTER_TEST_UTIL_H_

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "server/providers/provider_adapter.h"
#include "server/providers/sse_parser.h"
#include "simdjson.h"

namespace turnpike::testing {

inline std::string ReadTestdata(std::string_view relative_path) {
  const std::string path = std::string(TESTDATA_DIR) + "/" + std::string(relative_path);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class RecordingSink final : public StreamSink {
 public:
  void OnText(std::string_view piece) override {
    EXPECT_FALSE(piece.empty()) << "OnText with empty text";
    EXPECT_EQ(finish_calls, 0) << "OnText after OnFinish";
    pieces.emplace_back(piece);
    text.append(piece);
  }
  void OnToolCall(const ToolCallFragment& fragment) override {
    EXPECT_EQ(finish_calls, 0) << "OnToolCall after OnFinish";
    fragments.push_back({fragment.index, std::string(fragment.id), std::string(fragment.name),
                         std::string(fragment.arguments)});
    tool_calls.Add(fragment);
  }
  void OnFinish(const ChatFinish& f) override {
    ++finish_calls;
    finish = f;
  }

  struct Fragment {
    int32_t index;
    std::string id, name, arguments;
  };
  std::vector<Fragment> fragments;
  ToolCallAssembler tool_calls;
  std::vector<std::string> pieces;
  std::string text;
  std::optional<ChatFinish> finish;
  int finish_calls = 0;
};

// What one decoded stream produced.
struct Decoded {
  absl::Status status;  // the first non-OK of Feed() (i.e. OnEvent) or OnEnd()
  RecordingSink sink;
};

// Feeds `body` through a fresh SseParser and decoder in reads of the given sizes (cycled), then
// ends the stream. An empty `read_sizes` means one read.
inline Decoded DecodeWithReads(const ProviderAdapter& adapter, std::string_view body,
                               const std::vector<size_t>& read_sizes) {
  Decoded out;
  SseParser parser;
  std::unique_ptr<StreamDecoder> decoder = adapter.NewStreamDecoder();
  auto on_event = [&](std::string_view event, std::string_view data) {
    return decoder->OnEvent(event, data, out.sink);
  };
  size_t pos = 0, i = 0;
  while (pos < body.size()) {
    size_t n = read_sizes.empty() ? body.size() : read_sizes[i++ % read_sizes.size()];
    n = std::min(std::max<size_t>(n, 1), body.size() - pos);
    out.status = parser.Feed(body.substr(pos, n), on_event);
    if (!out.status.ok()) return out;
    pos += n;
  }
  parser.Finish();
  out.status = decoder->OnEnd(out.sink);
  return out;
}

inline Decoded Decode(const ProviderAdapter& adapter, std::string_view body) {
  return DecodeWithReads(adapter, body, {});
}

// Random read sizes in [1, max_read], reproducible from `seed`.
inline std::vector<size_t> RandomReads(uint32_t seed, size_t count, size_t max_read) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> dist(1, max_read);
  std::vector<size_t> sizes(count);
  for (size_t& s : sizes) s = dist(rng);
  return sizes;
}

// A copy of `data` with SseParser::kPadding readable bytes after it, for calling OnEvent directly.
class PaddedData {
 public:
  explicit PaddedData(std::string_view data)
      : buffer_(std::string(data) + std::string(SseParser::kPadding, ' ')), size_(data.size()) {}
  std::string_view view() const { return std::string_view(buffer_.data(), size_); }

 private:
  std::string buffer_;
  size_t size_;
};

// The header line starting with "name:" (case-insensitive), or "" if none.
inline std::string FindHeader(const HttpRequest& request, std::string_view name) {
  for (const std::string& line : request.headers) {
    if (line.size() > name.size() && line[name.size()] == ':' &&
        std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return line;
    }
  }
  return "";
}

inline int CountHeaders(const HttpRequest& request, std::string_view name) {
  int n = 0;
  for (const std::string& line : request.headers) {
    std::string_view head = std::string_view(line).substr(0, line.find(':'));
    if (head.size() == name.size() &&
        std::equal(name.begin(), name.end(), head.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      ++n;
    }
  }
  return n;
}

}  // namespace turnpike::testing

#endif  // TURNPIKE_TESTS_PROVIDERS_ADAPTER_TEST_UTIL_H_
