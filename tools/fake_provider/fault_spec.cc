#include "tools/fake_provider/fault_spec.h"

#include <simdjson.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {
namespace {

constexpr int kMaxChunks = 1000000;
constexpr int kMaxDelayMs = 24 * 3600 * 1000;
constexpr int kMaxTokens = 1000000000;

absl::Status BadValue(std::string_view key, std::string_view value, std::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("fault key '", Absl(key), "': bad value '",
                                                 Absl(value), "' (want ", Absl(want), ")"));
}

absl::Status ParseBounded(std::string_view key, std::string_view value, int lo, int hi,
                          std::optional<int>* out) {
  int v;
  if (!absl::SimpleAtoi(Absl(value), &v) || v < lo || v > hi) {
    return BadValue(key, value, absl::StrCat("an integer in [", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ParseBool(std::string_view key, std::string_view value, std::optional<bool>* out) {
  const std::string v = absl::AsciiStrToLower(Absl(value));
  if (v == "1" || v == "true" || v == "yes") {
    *out = true;
  } else if (v == "0" || v == "false" || v == "no") {
    *out = false;
  } else {
    return BadValue(key, value, "1/0/true/false");
  }
  return absl::OkStatus();
}

absl::Status ParseSeconds(std::string_view key, std::string_view value,
                          std::optional<std::string>* out) {
  double d;
  if (!absl::SimpleAtod(Absl(value), &d) || d < 0) {
    return BadValue(key, value, "a non-negative number");
  }
  *out = std::string(value);
  return absl::OkStatus();
}

template <typename T>
void MergeField(std::optional<T>* into, const std::optional<T>& from) {
  if (from.has_value()) *into = from;
}

constexpr std::string_view kDirectiveOpen = "[[fake";

}  // namespace

absl::Status FaultSpec::Set(std::string_view raw_key, std::string_view value) {
  const std::string key = absl::StrReplaceAll(absl::AsciiStrToLower(Absl(raw_key)), {{"-", "_"}});
  if (key == "status") {
    std::optional<int> s;
    if (absl::Status st = ParseBounded(key, value, 200, 599, &s); !st.ok()) return st;
    if (*s != 200 && *s < 400) return BadValue(key, value, "200 or 400..599");
    status = s;
  } else if (key == "error_type") {
    if (value.empty()) return BadValue(key, value, "a non-empty string");
    error_type = std::string(value);
  } else if (key == "retry_after") {
    return ParseSeconds(key, value, &retry_after);
  } else if (key == "retry_after_ms") {
    return ParseSeconds(key, value, &retry_after_ms);
  } else if (key == "first_byte_delay_ms") {
    return ParseBounded(key, value, 0, kMaxDelayMs, &first_byte_delay_ms);
  } else if (key == "chunks") {
    return ParseBounded(key, value, 0, kMaxChunks, &chunks);
  } else if (key == "chunk_delay_ms") {
    return ParseBounded(key, value, 0, kMaxDelayMs, &chunk_delay_ms);
  } else if (key == "reset_after_chunks") {
    return ParseBounded(key, value, 0, kMaxChunks, &reset_after_chunks);
  } else if (key == "stream_error_after") {
    return ParseBounded(key, value, 0, kMaxChunks, &stream_error_after);
  } else if (key == "malformed") {
    return ParseBool(key, value, &malformed);
  } else if (key == "line_ending") {
    auto e = ParseLineEnding(value);
    if (!e) return BadValue(key, value, "lf, crlf or cr");
    line_ending = e;
  } else if (key == "truncate") {
    return ParseBool(key, value, &truncate);
  } else if (key == "echo") {
    return ParseBool(key, value, &echo);
  } else if (key == "error_echo") {
    return ParseBool(key, value, &error_echo);
  } else if (key == "stall_after_chunks") {
    return ParseBounded(key, value, 0, kMaxChunks, &stall_after_chunks);
  } else if (key == "cached_tokens") {
    return ParseBounded(key, value, 0, kMaxTokens, &cached_tokens);
  } else if (key == "cache_write_tokens") {
    return ParseBounded(key, value, 0, kMaxTokens, &cache_write_tokens);
  } else if (key == "reasoning_tokens") {
    return ParseBounded(key, value, 0, kMaxTokens, &reasoning_tokens);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown fault key '", Absl(raw_key), "'"));
  }
  return absl::OkStatus();
}

void FaultSpec::MergeFrom(const FaultSpec& o) {
  MergeField(&status, o.status);
  MergeField(&error_type, o.error_type);
  MergeField(&retry_after, o.retry_after);
  MergeField(&retry_after_ms, o.retry_after_ms);
  MergeField(&first_byte_delay_ms, o.first_byte_delay_ms);
  MergeField(&chunks, o.chunks);
  MergeField(&chunk_delay_ms, o.chunk_delay_ms);
  MergeField(&reset_after_chunks, o.reset_after_chunks);
  MergeField(&stream_error_after, o.stream_error_after);
  MergeField(&malformed, o.malformed);
  MergeField(&line_ending, o.line_ending);
  MergeField(&truncate, o.truncate);
  MergeField(&echo, o.echo);
  MergeField(&error_echo, o.error_echo);
  MergeField(&stall_after_chunks, o.stall_after_chunks);
  MergeField(&cached_tokens, o.cached_tokens);
  MergeField(&cache_write_tokens, o.cache_write_tokens);
  MergeField(&reasoning_tokens, o.reasoning_tokens);
}

bool FaultSpec::empty() const {
  return !status && !error_type && !retry_after && !retry_after_ms && !first_byte_delay_ms &&
         !chunks && !chunk_delay_ms && !reset_after_chunks && !stream_error_after && !malformed &&
         !line_ending && !truncate && !stall_after_chunks && !cached_tokens &&
         !cache_write_tokens && !reasoning_tokens && !echo && !error_echo;
}

std::string FaultSpec::ToJson() const {
  std::string out = "{";
  auto sep = [&] {
    if (out.size() > 1) out.push_back(',');
  };
  auto add_int = [&](const char* name, const std::optional<int>& v) {
    if (!v) return;
    sep();
    absl::StrAppend(&out, "\"", name, "\":", *v);
  };
  auto add_str = [&](const char* name, const std::optional<std::string>& v) {
    if (!v) return;
    sep();
    absl::StrAppend(&out, "\"", name, "\":");
    AppendJsonString(&out, *v);
  };
  auto add_bool = [&](const char* name, const std::optional<bool>& v) {
    if (!v) return;
    sep();
    absl::StrAppend(&out, "\"", name, "\":", *v ? "true" : "false");
  };
  add_int("status", status);
  add_str("error_type", error_type);
  add_str("retry_after", retry_after);
  add_str("retry_after_ms", retry_after_ms);
  add_int("first_byte_delay_ms", first_byte_delay_ms);
  add_int("chunks", chunks);
  add_int("chunk_delay_ms", chunk_delay_ms);
  add_int("reset_after_chunks", reset_after_chunks);
  add_int("stream_error_after", stream_error_after);
  add_bool("malformed", malformed);
  if (line_ending) {
    sep();
    absl::StrAppend(&out, "\"line_ending\":\"", Absl(LineEndingName(*line_ending)), "\"");
  }
  add_bool("truncate", truncate);
  add_int("stall_after_chunks", stall_after_chunks);
  add_int("cached_tokens", cached_tokens);
  add_int("cache_write_tokens", cache_write_tokens);
  add_int("reasoning_tokens", reasoning_tokens);
  add_bool("echo", echo);
  add_bool("error_echo", error_echo);
  out.push_back('}');
  return out;
}

std::string StripFaultDirectives(std::string_view text) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t open = text.find(kDirectiveOpen, pos);
    if (open == std::string_view::npos) break;
    const size_t close = text.find("]]", open);
    if (close == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    pos = close + 2;
  }
  out.append(text.substr(pos));
  return out;
}

bool ContainsFaultDirective(std::string_view text) {
  return text.find(kDirectiveOpen) != std::string_view::npos;
}

absl::StatusOr<FaultSpec> ParseFaultDirectives(std::string_view text) {
  FaultSpec spec;
  size_t pos = 0;
  while ((pos = text.find(kDirectiveOpen, pos)) != std::string_view::npos) {
    const size_t body_start = pos + kDirectiveOpen.size();
    const size_t close = text.find("]]", body_start);
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("unterminated [[fake ...]] directive");
    }
    std::string_view body = text.substr(body_start, close - body_start);
    // "[[fakeX" is not a directive; require whitespace (or an immediate close).
    if (!body.empty() && !absl::ascii_isspace(static_cast<unsigned char>(body[0]))) {
      pos = body_start;
      continue;
    }
    for (absl::string_view token :
         absl::StrSplit(Absl(body), absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
      const size_t eq = token.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad token '", token, "' in [[fake ...]] (want key=value)"));
      }
      absl::Status st = spec.Set(std::string_view(token.data(), eq),
                                 std::string_view(token.data() + eq + 1, token.size() - eq - 1));
      if (!st.ok()) return st;
    }
    pos = close + 2;
  }
  return spec;
}

absl::StatusOr<std::vector<FaultSpec>> ParseFaultQueueJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("fault queue body is not valid JSON");
  }
  std::vector<simdjson::dom::element> items;
  simdjson::dom::array array;
  if (root.get_array().get(array) == simdjson::SUCCESS) {
    for (simdjson::dom::element e : array) items.push_back(e);
  } else if (root.is_object()) {
    items.push_back(root);
  } else {
    return absl::InvalidArgumentError("fault queue body must be a JSON array of objects");
  }
  std::vector<FaultSpec> out;
  out.reserve(items.size());
  for (simdjson::dom::element item : items) {
    simdjson::dom::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("each fault queue entry must be a JSON object");
    }
    FaultSpec spec;
    for (auto field : obj) {
      const std::string_view key = field.key;
      std::string value;
      switch (field.value.type()) {
        case simdjson::dom::element_type::STRING:
          value = std::string(field.value.get_string().value_unsafe());
          break;
        case simdjson::dom::element_type::INT64:
          value = std::to_string(field.value.get_int64().value_unsafe());
          break;
        case simdjson::dom::element_type::UINT64:
          value = std::to_string(field.value.get_uint64().value_unsafe());
          break;
        case simdjson::dom::element_type::DOUBLE:
          value = absl::StrCat(field.value.get_double().value_unsafe());
          break;
        case simdjson::dom::element_type::BOOL:
          value = field.value.get_bool().value_unsafe() ? "true" : "false";
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("fault key '", Absl(key), "' must be a number, string or boolean"));
      }
      if (absl::Status st = spec.Set(key, value); !st.ok()) return st;
    }
    out.push_back(std::move(spec));
  }
  return out;
}

}  // namespace turnpike::fake_provider
