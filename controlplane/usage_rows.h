// How a usage record is stored in the ledger's `usage` table (migrations/0002_usage.sql): the
// column list, binding a record to an INSERT and reading it back, the check a record must pass
// before it is stored, and the timestamp conversions the ledger's queries share. Stateless;
// thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_USAGE_ROWS_H_
#define TURNPIKE_CONTROLPLANE_USAGE_ROWS_H_

#include <cstdint>
#include <string>

#include "common/status.h"
#include "controlplane/sqlite.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike::controlplane {

inline constexpr int64_t kHourUs = int64_t{3600} * 1000000;
inline constexpr int64_t kDayUs = 24 * kHourUs;
inline constexpr size_t kMaxRequestIdLength = 128;

// The raw columns, in the order BindRecord/ReadRecord use them.
inline constexpr char kColumns[] =
    "request_id, start_time, received_time, node_id, caller, capability, provider, model, user, "
    "trace_id, config_version, credential, method, status, partial, input_tokens, "
    "cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_output_tokens, "
    "usage_estimated, cost_known, cost_usd_micros, input_cost_usd_micros, "
    "cached_input_cost_usd_micros, cache_write_cost_usd_micros, output_cost_usd_micros, "
    "price_version, cache_hit, degraded, refused, attempts, time_to_first_token_us, latency_us, "
    "tags, tier_chain, variant, latency_class, features";
inline constexpr int kColumnCount = 39;

int64_t ToMicros(const google::protobuf::Timestamp& t);
google::protobuf::Timestamp FromMicros(int64_t us);
// Timestamps a record or query may carry: 1970-01-01 to 9999-12-31.
bool ValidTimestamp(const google::protobuf::Timestamp& t);
std::string TagsJson(const google::protobuf::Map<std::string, std::string>& tags);
// UsageRecord.features as stored and exported (migrations/0010_usage_features.sql): the short
// names ("tools", "json_schema") joined by commas; a value unknown here is kept as its number.
std::string FeaturesText(const google::protobuf::RepeatedField<int>& features);
// The inverse of FeaturesText; unparseable items are skipped.
void ParseFeatures(const std::string& text, usage::v1::UsageRecord& r);
// Adds a violation per field of record `index` that cannot be stored.
void ValidateRecord(const usage::v1::UsageRecord& r, int index, Violations& v);
// Binds the columns of `r` (kColumns order) to `s`.
void BindRecord(SqliteStatement& s, const usage::v1::UsageRecord& r, int64_t received_us);
// The record in the current row of `s` (a SELECT of kColumns).
usage::v1::UsageRecord ReadRecord(const SqliteStatement& s);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_USAGE_ROWS_H_
