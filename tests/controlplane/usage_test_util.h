// Helpers for the usage-ledger tests: building records, a model of what the ledger must answer
// (sums computed in the test from the records themselves), and an RFC 4180 CSV parser to read
// exports back.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_USAGE_TEST_UTIL_H_
#define TURNPIKE_TESTS_CONTROLPLANE_USAGE_TEST_UTIL_H_

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike::controlplane::testing {

namespace u = ::turnpike::usage::v1;

inline google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  ts.set_nanos(static_cast<int32_t>((absl::ToUnixMicros(t) % 1000000) * 1000));
  return ts;
}

inline absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

inline absl::Time Utc(int y, int m, int d, int h = 0, int min = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, h, min, s), absl::UTCTimeZone());
}

inline u::UsageRecord Record(const std::string& id, absl::Time start,
                             const std::string& capability = "summaries",
                             const std::string& model = "gpt-4o-mini",
                             const std::string& provider = "openai",
                             const std::string& caller = "billing", int64_t input = 100,
                             int64_t output = 20, int64_t cost = 1500) {
  u::UsageRecord r;
  r.set_request_id(id);
  *r.mutable_start_time() = Ts(start);
  r.set_capability(capability);
  r.set_model(model);
  r.set_provider(provider);
  r.set_caller(caller);
  r.set_node_id("gw-1");
  r.set_status("OK");
  r.set_method(u::METHOD_COMPLETE);
  r.set_input_tokens(input);
  r.set_output_tokens(output);
  r.set_cost_usd_micros(cost);
  r.set_cost_known(true);
  r.set_input_cost_usd_micros(cost / 2);
  r.set_output_cost_usd_micros(cost - cost / 2);
  r.set_price_version("3");
  r.set_attempts(1);
  r.set_latency_us(250000);
  return r;
}

inline absl::Time BucketStart(absl::Time t, u::Granularity g) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  switch (g) {
    case u::GRANULARITY_HOUR:
      return absl::FromCivil(absl::ToCivilHour(t, utc), utc);
    case u::GRANULARITY_MONTH:
      return absl::FromCivil(absl::ToCivilMonth(t, utc), utc);
    default:
      return absl::FromCivil(absl::ToCivilDay(t, utc), utc);
  }
}

inline std::string DimValue(const u::UsageRecord& r, u::GroupBy g, const std::string& tag_key) {
  switch (g) {
    case u::GROUP_BY_CAPABILITY:
      return r.capability();
    case u::GROUP_BY_MODEL:
      return r.model();
    case u::GROUP_BY_PROVIDER:
      return r.provider();
    case u::GROUP_BY_CALLER:
      return r.caller();
    case u::GROUP_BY_USER:
      return r.user();
    default: {
      auto it = r.tags().find(tag_key);
      return it == r.tags().end() ? "" : it->second;
    }
  }
}

inline std::string RowDim(const u::SpendRow& r, u::GroupBy g) {
  switch (g) {
    case u::GROUP_BY_CAPABILITY:
      return r.capability();
    case u::GROUP_BY_MODEL:
      return r.model();
    case u::GROUP_BY_PROVIDER:
      return r.provider();
    case u::GROUP_BY_CALLER:
      return r.caller();
    case u::GROUP_BY_USER:
      return r.user();
    default:
      return r.tag_value();
  }
}

// A comparable rendering of one spend row: (bucket, dims..., sums...).
using SpendKey = std::pair<int64_t, std::vector<std::string>>;
using SpendSums = std::vector<int64_t>;

inline SpendSums Sums(const u::SpendRow& r) {
  return {r.requests(),
          r.input_tokens(),
          r.cached_input_tokens(),
          r.cache_write_input_tokens(),
          r.output_tokens(),
          r.reasoning_output_tokens(),
          r.cost_usd_micros(),
          r.cost_unknown_requests(),
          r.estimated_requests()};
}

inline std::map<SpendKey, SpendSums> FromRows(const std::vector<u::SpendRow>& rows,
                                              const u::QuerySpendRequest& q) {
  std::map<SpendKey, SpendSums> out;
  for (const auto& r : rows) {
    SpendKey key{absl::ToUnixSeconds(FromTs(r.bucket_start())), {}};
    for (int g : q.group_by()) key.second.push_back(RowDim(r, static_cast<u::GroupBy>(g)));
    out[key] = Sums(r);
  }
  return out;
}

// What QuerySpend must answer for `records`, computed directly.
inline std::map<SpendKey, SpendSums> Model(const std::vector<u::UsageRecord>& records,
                                           const u::QuerySpendRequest& q) {
  std::map<SpendKey, SpendSums> out;
  const absl::Time from = FromTs(q.start_time()), to = FromTs(q.end_time());
  for (const auto& r : records) {
    absl::Time t = FromTs(r.start_time());
    if (t < from || t >= to) continue;
    SpendKey key{absl::ToUnixSeconds(BucketStart(t, q.granularity())), {}};
    for (int g : q.group_by()) {
      key.second.push_back(DimValue(r, static_cast<u::GroupBy>(g), q.tag_key()));
    }
    SpendSums& s = out[key];
    s.resize(9, 0);
    s[0] += 1;
    s[1] += r.input_tokens();
    s[2] += r.cached_input_tokens();
    s[3] += r.cache_write_input_tokens();
    s[4] += r.output_tokens();
    s[5] += r.reasoning_output_tokens();
    s[6] += r.cost_known() ? r.cost_usd_micros() : 0;
    s[7] += r.cost_known() ? 0 : 1;
    s[8] += r.usage_estimated() ? 1 : 0;
  }
  return out;
}

// Parses RFC 4180 CSV (CRLF line ends, quoted fields with doubled quotes).
inline std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      ++i;
    } else {
      field.push_back(c);
    }
  }
  if (!field.empty() || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace turnpike::controlplane::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_USAGE_TEST_UTIL_H_
