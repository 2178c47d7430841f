// libFuzzer target: a request-log line (server/telemetry/request_log.h) built from hostile
// provider output. The first byte picks the content policy; the rest is split at the first 0xff
// into the prompt and the reply (the reply also becomes the error message and an attempt's
// detail). The line must parse as JSON whatever the bytes (and the redactor must not crash or
// hang on them).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/redactor.h"
#include "server/exchange/request_finished.h"
#include "server/telemetry/request_log.h"
#include "simdjson.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t cut = rest.find('\xff');
  const std::string_view prompt = rest.substr(0, cut);
  const std::string_view reply = cut == std::string_view::npos ? "" : rest.substr(cut + 1);

  auto content = std::make_shared<turnpike::RequestContent>();
  content->policy = static_cast<turnpike::config::v1::ContentPolicy>(1 + data[0] % 4);
  content->redactor = turnpike::Redactor::Default();
  content->messages = {{"ROLE_USER", std::string(prompt)}};
  content->reply = std::string(reply);
  turnpike::RequestFinished event;
  event.status = absl::UnavailableError(std::string(reply));
  event.attempts.Add()->set_detail(std::string(reply));
  event.content = content;
  const std::string line = turnpike::RequestLog::FormatLine(event, 64);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(line).get(doc) != simdjson::SUCCESS) __builtin_trap();
  return 0;
}
