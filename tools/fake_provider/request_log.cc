#include "tools/fake_provider/request_log.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {

void RequestLog::Add(RecordedRequest request) {
  if (capacity_ == 0) return;
  while (entries_.size() >= capacity_) entries_.pop_front();
  entries_.push_back(std::move(request));
}

std::string RequestLog::ToJson() const {
  std::string out = "[";
  bool first = true;
  for (const RecordedRequest& r : entries_) {
    if (!first) out.push_back(',');
    first = false;
    out.append("{\"method\":");
    AppendJsonString(&out, r.method);
    out.append(",\"path\":");
    AppendJsonString(&out, r.path);
    out.append(",\"query\":");
    AppendJsonString(&out, r.query);
    out.append(",\"headers\":{");
    // Merge repeated names so the object has unique keys.
    std::vector<std::pair<std::string, std::string>> merged;
    for (const auto& [name, value] : r.headers) {
      bool found = false;
      for (auto& m : merged) {
        if (m.first == name) {
          absl::StrAppend(&m.second, ", ", value);
          found = true;
          break;
        }
      }
      if (!found) merged.emplace_back(name, value);
    }
    for (size_t i = 0; i < merged.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendJsonString(&out, merged[i].first);
      out.push_back(':');
      AppendJsonString(&out, merged[i].second);
    }
    out.append("},\"body\":");
    AppendJsonString(&out, r.body);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

std::string StatsJson(const ProviderStats& s, size_t queued_faults) {
  return absl::StrCat(
      "{\"requests\":", s.requests, ",\"active_streams\":", s.active_streams,
      ",\"completed_streams\":", s.completed_streams, ",\"aborted_streams\":", s.aborted_streams,
      ",\"reset_streams\":", s.reset_streams, ",\"aborted_replies\":", s.aborted_replies,
      ",\"queued_faults\":", queued_faults, "}");
}

}  // namespace turnpike::fake_provider
