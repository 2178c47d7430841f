#include "controlplane/usage_rows.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/json_writer.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace turnpike::controlplane {

namespace u = ::turnpike::usage::v1;

int64_t ToMicros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

google::protobuf::Timestamp FromMicros(int64_t us) {
  google::protobuf::Timestamp t;
  int64_t seconds = us / 1000000;
  int64_t rest = us % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(rest * 1000));
  return t;
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= 0 && t.seconds() <= int64_t{253402300799} && t.nanos() >= 0 &&
         t.nanos() <= 999999999;
}

std::string TagsJson(const google::protobuf::Map<std::string, std::string>& tags) {
  std::vector<std::pair<std::string, std::string>> sorted(tags.begin(), tags.end());
  std::sort(sorted.begin(), sorted.end());
  JsonWriter w;
  w.BeginObject();
  for (const auto& [k, v] : sorted) w.Key(k).String(v);
  w.EndObject();
  return w.Release();
}

namespace {
constexpr char kFeaturePrefix[] = "REQUEST_FEATURE_";
constexpr size_t kFeaturePrefixSize = sizeof(kFeaturePrefix) - 1;
}  // namespace

std::string FeaturesText(const google::protobuf::RepeatedField<int>& features) {
  std::vector<std::string> names;
  for (int f : features) {
    const std::string& name =
        turnpike::v1::RequestFeature_IsValid(f)
            ? turnpike::v1::RequestFeature_Name(static_cast<turnpike::v1::RequestFeature>(f))
            : "";
    names.push_back(absl::StartsWith(name, kFeaturePrefix)
                        ? absl::AsciiStrToLower(name.substr(kFeaturePrefixSize))
                        : absl::StrCat(f));
  }
  return absl::StrJoin(names, ",");
}

void ParseFeatures(const std::string& text, u::UsageRecord& r) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int number = 0;
    turnpike::v1::RequestFeature feature;
    if (absl::SimpleAtoi(item, &number)) {
      r.add_features(static_cast<turnpike::v1::RequestFeature>(number));
    } else if (turnpike::v1::RequestFeature_Parse(
                   absl::StrCat(kFeaturePrefix, absl::AsciiStrToUpper(item)), &feature)) {
      r.add_features(feature);
    }
  }
}

void ValidateRecord(const u::UsageRecord& r, int index, Violations& v) {
  const std::string at = absl::StrCat("records[", index, "].");
  if (r.request_id().empty()) {
    v.Add(at + "request_id", "is required");
  } else if (r.request_id().size() > kMaxRequestIdLength) {
    v.Add(at + "request_id", absl::StrCat("must be at most ", kMaxRequestIdLength, " bytes"));
  }
  if (!r.has_start_time()) {
    v.Add(at + "start_time", "is required");
  } else if (!ValidTimestamp(r.start_time())) {
    v.Add(at + "start_time", "must be between 1970-01-01 and 9999-12-31");
  }
  const std::pair<const char*, int64_t> counts[] = {
      {"input_tokens", r.input_tokens()},
      {"cached_input_tokens", r.cached_input_tokens()},
      {"cache_write_input_tokens", r.cache_write_input_tokens()},
      {"output_tokens", r.output_tokens()},
      {"reasoning_output_tokens", r.reasoning_output_tokens()},
      {"cost_usd_micros", r.cost_usd_micros()},
      {"input_cost_usd_micros", r.input_cost_usd_micros()},
      {"cached_input_cost_usd_micros", r.cached_input_cost_usd_micros()},
      {"cache_write_cost_usd_micros", r.cache_write_cost_usd_micros()},
      {"output_cost_usd_micros", r.output_cost_usd_micros()},
      {"attempts", r.attempts()},
      {"latency_us", r.latency_us()},
      {"time_to_first_token_us", r.time_to_first_token_us()},
  };
  for (const auto& [field, value] : counts) {
    if (value < 0) v.Add(at + field, "must not be negative");
  }
}

void BindRecord(SqliteStatement& s, const u::UsageRecord& r, int64_t received_us) {
  int i = 0;
  s.Bind(++i, r.request_id());
  s.Bind(++i, ToMicros(r.start_time()));
  s.Bind(++i, received_us);
  s.Bind(++i, r.node_id());
  s.Bind(++i, r.caller());
  s.Bind(++i, r.capability());
  s.Bind(++i, r.provider());
  s.Bind(++i, r.model());
  s.Bind(++i, r.user());
  s.Bind(++i, r.trace_id());
  s.Bind(++i, r.config_version());
  s.Bind(++i, r.credential());
  s.Bind(++i, int64_t{r.method()});
  s.Bind(++i, r.status());
  s.Bind(++i, int64_t{r.partial()});
  s.Bind(++i, r.input_tokens());
  s.Bind(++i, r.cached_input_tokens());
  s.Bind(++i, r.cache_write_input_tokens());
  s.Bind(++i, r.output_tokens());
  s.Bind(++i, r.reasoning_output_tokens());
  s.Bind(++i, int64_t{r.usage_estimated()});
  s.Bind(++i, int64_t{r.cost_known()});
  s.Bind(++i, r.cost_usd_micros());
  s.Bind(++i, r.input_cost_usd_micros());
  s.Bind(++i, r.cached_input_cost_usd_micros());
  s.Bind(++i, r.cache_write_cost_usd_micros());
  s.Bind(++i, r.output_cost_usd_micros());
  s.Bind(++i, r.price_version());
  s.Bind(++i, int64_t{r.cache_hit()});
  s.Bind(++i, int64_t{r.degraded()});
  s.Bind(++i, int64_t{r.refused()});
  s.Bind(++i, int64_t{r.attempts()});
  s.Bind(++i, r.time_to_first_token_us());
  s.Bind(++i, r.latency_us());
  s.Bind(++i, TagsJson(r.tags()));
  s.Bind(++i, r.tier_chain());
  s.Bind(++i, r.variant());
  s.Bind(++i, r.latency_class());
  s.Bind(++i, FeaturesText(r.features()));
}

u::UsageRecord ReadRecord(const SqliteStatement& s) {
  u::UsageRecord r;
  int i = -1;
  r.set_request_id(s.ColumnText(++i));
  *r.mutable_start_time() = FromMicros(s.ColumnInt(++i));
  ++i;  // received_time
  r.set_node_id(s.ColumnText(++i));
  r.set_caller(s.ColumnText(++i));
  r.set_capability(s.ColumnText(++i));
  r.set_provider(s.ColumnText(++i));
  r.set_model(s.ColumnText(++i));
  r.set_user(s.ColumnText(++i));
  r.set_trace_id(s.ColumnText(++i));
  r.set_config_version(s.ColumnText(++i));
  r.set_credential(s.ColumnText(++i));
  const int64_t method = s.ColumnInt(++i);
  r.set_method(u::Method_IsValid(static_cast<int>(method)) ? static_cast<u::Method>(method)
                                                           : u::METHOD_UNSPECIFIED);
  r.set_status(s.ColumnText(++i));
  r.set_partial(s.ColumnInt(++i) != 0);
  r.set_input_tokens(s.ColumnInt(++i));
  r.set_cached_input_tokens(s.ColumnInt(++i));
  r.set_cache_write_input_tokens(s.ColumnInt(++i));
  r.set_output_tokens(s.ColumnInt(++i));
  r.set_reasoning_output_tokens(s.ColumnInt(++i));
  r.set_usage_estimated(s.ColumnInt(++i) != 0);
  r.set_cost_known(s.ColumnInt(++i) != 0);
  r.set_cost_usd_micros(s.ColumnInt(++i));
  r.set_input_cost_usd_micros(s.ColumnInt(++i));
  r.set_cached_input_cost_usd_micros(s.ColumnInt(++i));
  r.set_cache_write_cost_usd_micros(s.ColumnInt(++i));
  r.set_output_cost_usd_micros(s.ColumnInt(++i));
  r.set_price_version(s.ColumnText(++i));
  r.set_cache_hit(s.ColumnInt(++i) != 0);
  r.set_degraded(s.ColumnInt(++i) != 0);
  r.set_refused(s.ColumnInt(++i) != 0);
  r.set_attempts(static_cast<int32_t>(s.ColumnInt(++i)));
  r.set_time_to_first_token_us(s.ColumnInt(++i));
  r.set_latency_us(s.ColumnInt(++i));
  google::protobuf::Struct tags;
  if (google::protobuf::util::JsonStringToMessage(s.ColumnText(++i), &tags).ok()) {
    for (const auto& [k, v] : tags.fields()) (*r.mutable_tags())[k] = v.string_value();
  }
  r.set_tier_chain(s.ColumnText(++i));
  r.set_variant(s.ColumnText(++i));
  r.set_latency_class(s.ColumnText(++i));
  ParseFeatures(s.ColumnText(++i), r);
  return r;
}

}  // namespace turnpike::controlplane
