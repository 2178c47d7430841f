#include "controlplane/usage_csv.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/json_writer.h"
#include "controlplane/usage_rows.h"

namespace turnpike::controlplane {
namespace {

namespace u = ::turnpike::usage::v1;

constexpr char kEol[] = "\r\n";

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

// Every field but a row's first is preceded by a comma (the first may be empty).
void Sep(std::string& out) { out.push_back(','); }

void Text(std::string& out, std::string_view v) {
  Sep(out);
  AppendCsvText(out, v);
}

void Int(std::string& out, int64_t v) {
  Sep(out);
  absl::StrAppend(&out, v);
}

void Bool(std::string& out, bool v) {
  Sep(out);
  out += v ? "true" : "false";
}

const char* MethodName(u::Method m) {
  switch (m) {
    case u::METHOD_STREAM_COMPLETION:
      return "StreamCompletion";
    case u::METHOD_COMPLETE:
      return "Complete";
    case u::METHOD_EMBED:
      return "Embed";
    case u::METHOD_CLASSIFY:
      return "Classify";
    default:
      return "";
  }
}

}  // namespace

void AppendCsvText(std::string& out, std::string_view value) {
  std::string guarded;
  if (!value.empty() && (value[0] == '=' || value[0] == '+' || value[0] == '-' || value[0] == '@' ||
                         value[0] == '\t' || value[0] == '\r')) {
    guarded = "'";
    guarded.append(value);
    value = guarded;
  }
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(value);
    return;
  }
  out.push_back('"');
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string MicrosToDollars(int64_t micros) {
  const char* sign = micros < 0 ? "-" : "";
  const uint64_t abs = micros < 0 ? 0 - static_cast<uint64_t>(micros) : micros;
  return absl::StrFormat("%s%d.%06d", sign, abs / 1000000, abs % 1000000);
}

std::string SpendCsvHeader(const u::QuerySpendRequest& request) {
  std::string out = "bucket_start";
  for (int g : request.group_by()) {
    switch (g) {
      case u::GROUP_BY_CAPABILITY:
        out += ",capability";
        break;
      case u::GROUP_BY_MODEL:
        out += ",model";
        break;
      case u::GROUP_BY_PROVIDER:
        out += ",provider";
        break;
      case u::GROUP_BY_CALLER:
        out += ",caller";
        break;
      case u::GROUP_BY_USER:
        out += ",user";
        break;
      default:
        out += ",";
        AppendCsvText(out, absl::StrCat("tag:", request.tag_key()));
        break;
    }
  }
  out +=
      ",requests,input_tokens,cached_input_tokens,cache_write_input_tokens,output_tokens,"
      "reasoning_output_tokens,cost_usd,cost_usd_micros,cost_unknown_requests,"
      "estimated_requests";
  out += kEol;
  return out;
}

void AppendSpendCsvRow(std::string& out, const u::QuerySpendRequest& request,
                       const u::SpendRow& row) {
  std::string line = Rfc3339(row.bucket_start());
  for (int g : request.group_by()) {
    switch (g) {
      case u::GROUP_BY_CAPABILITY:
        Text(line, row.capability());
        break;
      case u::GROUP_BY_MODEL:
        Text(line, row.model());
        break;
      case u::GROUP_BY_PROVIDER:
        Text(line, row.provider());
        break;
      case u::GROUP_BY_CALLER:
        Text(line, row.caller());
        break;
      case u::GROUP_BY_USER:
        Text(line, row.user());
        break;
      default:
        Text(line, row.tag_value());
        break;
    }
  }
  Int(line, row.requests());
  Int(line, row.input_tokens());
  Int(line, row.cached_input_tokens());
  Int(line, row.cache_write_input_tokens());
  Int(line, row.output_tokens());
  Int(line, row.reasoning_output_tokens());
  Text(line, MicrosToDollars(row.cost_usd_micros()));
  Int(line, row.cost_usd_micros());
  Int(line, row.cost_unknown_requests());
  Int(line, row.estimated_requests());
  out += line;
  out += kEol;
}

std::string RecordCsvHeader() {
  return absl::StrCat(
      "request_id,start_time,node_id,caller,capability,provider,model,user,trace_id,"
      "config_version,credential,method,status,partial,refused,cache_hit,degraded,attempts,"
      "input_tokens,cached_input_tokens,cache_write_input_tokens,output_tokens,"
      "reasoning_output_tokens,usage_estimated,cost_known,cost_usd,cost_usd_micros,"
      "input_cost_usd_micros,cached_input_cost_usd_micros,cache_write_cost_usd_micros,"
      "output_cost_usd_micros,price_version,latency_us,time_to_first_token_us,tags,tier_chain,"
      "variant,latency_class,features",
      kEol);
}

void AppendRecordCsvRow(std::string& out, const u::UsageRecord& r) {
  std::string line;
  AppendCsvText(line, r.request_id());
  Text(line, Rfc3339(r.start_time()));
  Text(line, r.node_id());
  Text(line, r.caller());
  Text(line, r.capability());
  Text(line, r.provider());
  Text(line, r.model());
  Text(line, r.user());
  Text(line, r.trace_id());
  Text(line, r.config_version());
  Text(line, r.credential());
  Text(line, MethodName(r.method()));
  Text(line, r.status());
  Bool(line, r.partial());
  Bool(line, r.refused());
  Bool(line, r.cache_hit());
  Bool(line, r.degraded());
  Int(line, r.attempts());
  Int(line, r.input_tokens());
  Int(line, r.cached_input_tokens());
  Int(line, r.cache_write_input_tokens());
  Int(line, r.output_tokens());
  Int(line, r.reasoning_output_tokens());
  Bool(line, r.usage_estimated());
  Bool(line, r.cost_known());
  // An unknown cost is left empty, never shown as 0.
  Text(line, r.cost_known() ? MicrosToDollars(r.cost_usd_micros()) : "");
  Text(line, r.cost_known() ? absl::StrCat(r.cost_usd_micros()) : "");
  Int(line, r.input_cost_usd_micros());
  Int(line, r.cached_input_cost_usd_micros());
  Int(line, r.cache_write_cost_usd_micros());
  Int(line, r.output_cost_usd_micros());
  Text(line, r.price_version());
  Int(line, r.latency_us());
  Int(line, r.time_to_first_token_us());
  std::vector<std::pair<std::string, std::string>> tags(r.tags().begin(), r.tags().end());
  std::sort(tags.begin(), tags.end());
  JsonWriter w;
  w.BeginObject();
  for (const auto& [k, v] : tags) w.Key(k).String(v);
  w.EndObject();
  Text(line, w.str());
  Text(line, r.tier_chain());
  Text(line, r.variant());
  Text(line, r.latency_class());
  Text(line, FeaturesText(r.features()));
  out += line;
  out += kEol;
}

}  // namespace turnpike::controlplane
