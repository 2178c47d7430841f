// Minimal JSON text helpers for the fake provider: string escaping and number formatting.
// Unlike common/json_writer.h, the escaper replaces invalid UTF-8 with U+FFFD: the fake echoes
// arbitrary request bytes (GET /_fake/requests) and its output must always parse (simdjson
// rejects invalid UTF-8). Responses are built by appending fragments to one std::string,
// which keeps the per-chunk hot path allocation-light. Pure functions; thread-safe.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_JSON_WRITER_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/string_view_compat.h"

namespace turnpike::fake_provider {

// turnpike::Absl() (common/string_view_compat.h) converts std::string_view for Abseil calls;
// the fake provider uses it throughout, so it is re-exported with this header.
using ::turnpike::Absl;

// Appends `s` as a quoted JSON string. Control characters are escaped; bytes that are not
// valid UTF-8 are replaced with U+FFFD so the result is always valid JSON.
void AppendJsonString(std::string* out, std::string_view s);

// Returns `s` as a quoted JSON string.
std::string JsonString(std::string_view s);

// Appends the shortest decimal text whose double value equals `f` exactly.
void AppendJsonFloat(std::string* out, float f);

// Appends `v` as a JSON number.
void AppendJsonInt(std::string* out, int64_t v);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_JSON_WRITER_H_
