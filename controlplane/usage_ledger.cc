#include "controlplane/usage_ledger.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/audit_chain.h"
#include "controlplane/proto_util.h"
#include "controlplane/usage_rows.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace turnpike::controlplane {
namespace {

namespace u = ::turnpike::usage::v1;

// The rollup key of a record and the sums it adds.
using RollupKey = std::tuple<int64_t, std::string, std::string, std::string, std::string>;
struct RollupSums {
  int64_t requests = 0, input = 0, cached = 0, cache_write = 0, output = 0, reasoning = 0, cost = 0,
          cost_unknown = 0, estimated = 0;
};

// SQL for the start of the bucket holding the Unix-microsecond time in `column`.
std::string BucketExpr(u::Granularity g, const std::string& column) {
  switch (g) {
    case u::GRANULARITY_HOUR:
      return absl::StrCat("(", column, " / ", kHourUs, ") * ", kHourUs);
    case u::GRANULARITY_MONTH:
      return absl::StrCat("CAST(strftime('%s', ", column,
                          " / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000");
    default:
      return absl::StrCat("(", column, " / ", kDayUs, ") * ", kDayUs);
  }
}

absl::Status ValidateList(const u::ListUsageRequest& r) {
  Violations v;
  if (r.has_start_time() && !ValidTimestamp(r.start_time())) {
    v.Add("start_time", "must be between 1970-01-01 and 9999-12-31");
  }
  if (r.has_end_time() && !ValidTimestamp(r.end_time())) {
    v.Add("end_time", "must be between 1970-01-01 and 9999-12-31");
  }
  if (r.page_size() < 0) v.Add("page_size", "must not be negative");
  return v.ToStatus();
}

// Page tokens carry the last (start_time, request_id) returned.
std::string ListToken(const u::UsageRecord& last) {
  return EncodePageToken(absl::StrCat(ToMicros(last.start_time()), "/", last.request_id()));
}

absl::StatusOr<std::optional<std::pair<int64_t, std::string>>> ParseListToken(
    const std::string& token) {
  TP_ASSIGN_OR_RETURN(std::string raw, DecodePageToken(token));
  if (raw.empty()) return std::nullopt;
  std::pair<std::string, std::string> parts = absl::StrSplit(raw, absl::MaxSplits('/', 1));
  int64_t us = 0;
  if (!absl::SimpleAtoi(parts.first, &us)) {
    return InvalidFieldError("page_token", "is not a token returned by ListUsage");
  }
  return std::make_pair(us, parts.second);
}

// One page (at most `limit` records) after `after`, with the request's filters.
absl::Status ReadPage(SqliteDb& db, const u::ListUsageRequest& r,
                      const std::optional<std::pair<int64_t, std::string>>& after, int limit,
                      std::vector<u::UsageRecord>& out) {
  std::vector<std::string> conds;
  if (r.has_start_time()) conds.push_back("start_time >= ?1");
  if (r.has_end_time()) conds.push_back("start_time < ?2");
  if (!r.capability().empty()) conds.push_back("capability = ?3");
  if (!r.caller().empty()) conds.push_back("caller = ?4");
  if (!r.request_id().empty()) conds.push_back("request_id = ?5");
  if (after.has_value()) conds.push_back("(start_time, request_id) > (?6, ?7)");
  std::string sql =
      absl::StrCat("SELECT ", kColumns, " FROM usage", conds.empty() ? "" : " WHERE ",
                   absl::StrJoin(conds, " AND "), " ORDER BY start_time, request_id LIMIT ?8");
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare(sql));
  if (r.has_start_time()) s.Bind(1, ToMicros(r.start_time()));
  if (r.has_end_time()) s.Bind(2, ToMicros(r.end_time()));
  if (!r.capability().empty()) s.Bind(3, r.capability());
  if (!r.caller().empty()) s.Bind(4, r.caller());
  if (!r.request_id().empty()) s.Bind(5, r.request_id());
  if (after.has_value()) s.Bind(6, after->first).Bind(7, after->second);
  s.Bind(8, int64_t{limit});
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadRecord(s));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UsageLedger::IngestResult> UsageLedger::Ingest(
    const google::protobuf::RepeatedPtrField<u::UsageRecord>& records) {
  if (records.size() > options_.max_batch_records) {
    return InvalidFieldError(
        "records", absl::StrCat("at most ", options_.max_batch_records, " records per batch, got ",
                                records.size(), "; split the batch"));
  }
  Violations violations;
  std::vector<const u::UsageRecord*> valid;
  valid.reserve(records.size());
  for (int i = 0; i < records.size(); ++i) {
    size_t before = violations.size();
    ValidateRecord(records[i], i, violations);
    if (violations.size() == before) valid.push_back(&records[i]);
  }

  static const std::string kInsertSql = [] {
    std::string placeholders = "?";
    for (int i = 1; i < kColumnCount; ++i) placeholders += ", ?";
    return absl::StrCat("INSERT INTO usage (", kColumns, ") VALUES (", placeholders,
                        ") ON CONFLICT (request_id) DO NOTHING");
  }();
  static constexpr char kRollupSql[] =
      "INSERT INTO usage_hourly (hour, capability, model, provider, caller, requests, "
      "input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, "
      "reasoning_output_tokens, cost_usd_micros, cost_unknown_requests, estimated_requests) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
      "ON CONFLICT (hour, capability, model, provider, caller) DO UPDATE SET "
      "requests = requests + ?6, input_tokens = input_tokens + ?7, "
      "cached_input_tokens = cached_input_tokens + ?8, "
      "cache_write_input_tokens = cache_write_input_tokens + ?9, "
      "output_tokens = output_tokens + ?10, reasoning_output_tokens = reasoning_output_tokens + "
      "?11, "
      "cost_usd_micros = cost_usd_micros + ?12, "
      "cost_unknown_requests = cost_unknown_requests + ?13, "
      "estimated_requests = estimated_requests + ?14";

  IngestResult result;
  int64_t newest = INT64_MIN;
  const int64_t received_us = absl::ToUnixMicros(clock_.Now());
  if (!valid.empty()) {
    TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
      // The closure may run again only after a rollback, so start from zero each time.
      result.accepted = 0;
      result.duplicates = 0;
      newest = INT64_MIN;
      absl::flat_hash_map<RollupKey, RollupSums> rollups;
      TP_ASSIGN_OR_RETURN(SqliteStatement insert, db.Prepare(kInsertSql));
      for (const u::UsageRecord* r : valid) {
        BindRecord(insert, *r, received_us);
        TP_RETURN_IF_ERROR(insert.Run());
        const bool stored = db.changes() == 1;
        TP_RETURN_IF_ERROR(insert.Reset());
        if (!stored) {
          ++result.duplicates;
          continue;
        }
        ++result.accepted;
        // Its audit entry commits with it, so a resent record is never chained twice.
        TP_RETURN_IF_ERROR(AppendRequestEntry(db, *r, absl::FromUnixMicros(received_us)));
        const int64_t start_us = ToMicros(r->start_time());
        newest = std::max(newest, start_us);
        RollupSums& sums = rollups[RollupKey((start_us / kHourUs) * kHourUs, r->capability(),
                                             r->model(), r->provider(), r->caller())];
        ++sums.requests;
        sums.input += r->input_tokens();
        sums.cached += r->cached_input_tokens();
        sums.cache_write += r->cache_write_input_tokens();
        sums.output += r->output_tokens();
        sums.reasoning += r->reasoning_output_tokens();
        if (r->cost_known()) {
          sums.cost += r->cost_usd_micros();
        } else {
          ++sums.cost_unknown;
        }
        if (r->usage_estimated()) ++sums.estimated;
      }
      TP_ASSIGN_OR_RETURN(SqliteStatement rollup, db.Prepare(kRollupSql));
      for (const auto& [key, sums] : rollups) {
        rollup.Bind(1, std::get<0>(key))
            .Bind(2, std::get<1>(key))
            .Bind(3, std::get<2>(key))
            .Bind(4, std::get<3>(key))
            .Bind(5, std::get<4>(key))
            .Bind(6, sums.requests)
            .Bind(7, sums.input)
            .Bind(8, sums.cached)
            .Bind(9, sums.cache_write)
            .Bind(10, sums.output)
            .Bind(11, sums.reasoning)
            .Bind(12, sums.cost)
            .Bind(13, sums.cost_unknown)
            .Bind(14, sums.estimated);
        TP_RETURN_IF_ERROR(rollup.Run());
        TP_RETURN_IF_ERROR(rollup.Reset());
      }
      return absl::OkStatus();
    }));
  }
  ingested_.fetch_add(result.accepted, std::memory_order_relaxed);
  duplicates_.fetch_add(result.duplicates, std::memory_order_relaxed);
  int64_t seen = newest_start_us_.load(std::memory_order_relaxed);
  while (newest > seen &&
         !newest_start_us_.compare_exchange_weak(seen, newest, std::memory_order_relaxed)) {
  }
  if (!violations.empty()) {
    result.refused =
        WithMessage(violations.ToStatus(),
                    absl::StrCat(violations.ToStatus().message(), "; ", violations.size(),
                                 " record(s) refused, ", result.accepted, " other(s) stored and ",
                                 result.duplicates, " already stored: do not resend this batch"));
  }
  return result;
}

absl::StatusOr<std::vector<u::SpendRow>> UsageLedger::QuerySpend(
    const u::QuerySpendRequest& request) {
  Violations v;
  if (!request.has_start_time()) {
    v.Add("start_time", "is required");
  } else if (!ValidTimestamp(request.start_time()) ||
             ToMicros(request.start_time()) % kHourUs != 0) {
    v.Add("start_time", "must be on a UTC hour boundary (e.g. 2026-12-01T00:00:00Z)");
  }
  if (!request.has_end_time()) {
    v.Add("end_time", "is required");
  } else if (!ValidTimestamp(request.end_time()) || ToMicros(request.end_time()) % kHourUs != 0) {
    v.Add("end_time", "must be on a UTC hour boundary (e.g. 2027-01-01T00:00:00Z)");
  } else if (request.has_start_time() &&
             ToMicros(request.end_time()) <= ToMicros(request.start_time())) {
    v.Add("end_time", "must be after start_time");
  }
  if (!u::Granularity_IsValid(request.granularity())) {
    v.Add("granularity", "is not a known granularity");
  }
  bool raw = false;
  absl::flat_hash_set<int> seen;
  std::vector<std::string> dims;  // SQL expressions, in request order
  std::vector<u::GroupBy> dim_kinds;
  for (int i = 0; i < request.group_by_size(); ++i) {
    const std::string field = absl::StrCat("group_by[", i, "]");
    const u::GroupBy g = request.group_by(i);
    if (!seen.insert(g).second) {
      v.Add(field, "is given twice");
      continue;
    }
    switch (g) {
      case u::GROUP_BY_CAPABILITY:
        dims.push_back("capability");
        break;
      case u::GROUP_BY_MODEL:
        dims.push_back("model");
        break;
      case u::GROUP_BY_PROVIDER:
        dims.push_back("provider");
        break;
      case u::GROUP_BY_CALLER:
        dims.push_back("caller");
        break;
      case u::GROUP_BY_USER:
        dims.push_back("user");
        raw = true;
        break;
      case u::GROUP_BY_TAG:
        dims.push_back("coalesce((SELECT value FROM json_each(tags) WHERE key = ?3), '')");
        raw = true;
        break;
      default:
        v.Add(field, "must be a GROUP_BY_* dimension");
        continue;
    }
    dim_kinds.push_back(g);
  }
  if (seen.contains(u::GROUP_BY_TAG) && request.tag_key().empty()) {
    v.Add("tag_key", "is required with GROUP_BY_TAG");
  }
  if (!seen.contains(u::GROUP_BY_TAG) && !request.tag_key().empty()) {
    v.Add("tag_key", "is only used with GROUP_BY_TAG");
  }
  TP_RETURN_IF_ERROR(v.ToStatus());
  const int64_t start_us = ToMicros(request.start_time());
  const int64_t end_us = ToMicros(request.end_time());
  if (raw) {
    const absl::Time oldest = clock_.Now() - options_.retention;
    if (absl::FromUnixMicros(start_us) < oldest) {
      return ErrorWithReason(
          absl::StatusCode::kFailedPrecondition,
          absl::StrCat("grouping by end user or tag reads raw usage records, kept for ",
                       absl::FormatDuration(options_.retention),
                       "; start_time must be at or after ",
                       absl::FormatTime(absl::RFC3339_sec, oldest, absl::UTCTimeZone())),
          "USAGE_RETENTION");
    }
  }

  const std::string time_col = raw ? "start_time" : "hour";
  std::string select = absl::StrCat(BucketExpr(request.granularity(), time_col), " AS bucket");
  std::string group = "bucket";
  for (size_t i = 0; i < dims.size(); ++i) {
    absl::StrAppend(&select, ", ", dims[i], " AS d", i);
    absl::StrAppend(&group, ", d", i);
  }
  std::string sums =
      raw ? "count(*), sum(input_tokens), sum(cached_input_tokens), "
            "sum(cache_write_input_tokens), sum(output_tokens), sum(reasoning_output_tokens), "
            "sum(CASE WHEN cost_known THEN cost_usd_micros ELSE 0 END), "
            "sum(NOT cost_known), sum(usage_estimated)"
          : "sum(requests), sum(input_tokens), sum(cached_input_tokens), "
            "sum(cache_write_input_tokens), sum(output_tokens), sum(reasoning_output_tokens), "
            "sum(cost_usd_micros), sum(cost_unknown_requests), sum(estimated_requests)";
  const std::string sql = absl::StrCat(
      "SELECT ", select, ", ", sums, " FROM ", raw ? "usage" : "usage_hourly", " WHERE ", time_col,
      " >= ?1 AND ", time_col, " < ?2 GROUP BY ", group, " ORDER BY ", group, " LIMIT ?4");
  std::vector<u::SpendRow> rows;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare(sql));
    s.Bind(1, start_us).Bind(2, end_us);
    if (seen.contains(u::GROUP_BY_TAG)) s.Bind(3, request.tag_key());
    s.Bind(4, int64_t{options_.max_spend_rows} + 1);
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      u::SpendRow r;
      int c = 0;
      *r.mutable_bucket_start() = FromMicros(s.ColumnInt(c++));
      for (u::GroupBy g : dim_kinds) {
        std::string value = s.ColumnText(c++);
        switch (g) {
          case u::GROUP_BY_CAPABILITY:
            r.set_capability(std::move(value));
            break;
          case u::GROUP_BY_MODEL:
            r.set_model(std::move(value));
            break;
          case u::GROUP_BY_PROVIDER:
            r.set_provider(std::move(value));
            break;
          case u::GROUP_BY_CALLER:
            r.set_caller(std::move(value));
            break;
          case u::GROUP_BY_USER:
            r.set_user(std::move(value));
            break;
          default:
            r.set_tag_value(std::move(value));
            break;
        }
      }
      r.set_requests(s.ColumnInt(c++));
      r.set_input_tokens(s.ColumnInt(c++));
      r.set_cached_input_tokens(s.ColumnInt(c++));
      r.set_cache_write_input_tokens(s.ColumnInt(c++));
      r.set_output_tokens(s.ColumnInt(c++));
      r.set_reasoning_output_tokens(s.ColumnInt(c++));
      r.set_cost_usd_micros(s.ColumnInt(c++));
      r.set_cost_unknown_requests(s.ColumnInt(c++));
      r.set_estimated_requests(s.ColumnInt(c++));
      rows.push_back(std::move(r));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int64_t>(rows.size()) > options_.max_spend_rows) {
    return ErrorWithReason(
        absl::StatusCode::kOutOfRange,
        absl::StrCat("the answer has more than ", options_.max_spend_rows,
                     " rows; narrow the time range, use a coarser granularity or fewer groupings"),
        "USAGE_ANSWER_TOO_LARGE");
  }
  return rows;
}

absl::StatusOr<u::ListUsageResponse> UsageLedger::ListUsage(const u::ListUsageRequest& request) {
  TP_RETURN_IF_ERROR(ValidateList(request));
  TP_ASSIGN_OR_RETURN(int limit, PageSize(request.page_size()));
  TP_ASSIGN_OR_RETURN(auto after, ParseListToken(request.page_token()));
  std::vector<u::UsageRecord> records;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    return ReadPage(db, request, after, limit + 1, records);
  }));
  u::ListUsageResponse response;
  const bool more = static_cast<int>(records.size()) > limit;
  if (more) records.resize(limit);
  for (auto& r : records) *response.add_records() = std::move(r);
  if (more) response.set_next_page_token(ListToken(response.records(limit - 1)));
  return response;
}

absl::Status UsageLedger::ForEachRecord(const u::ListUsageRequest& request,
                                        absl::FunctionRef<bool(const u::UsageRecord&)> fn) {
  TP_RETURN_IF_ERROR(ValidateList(request));
  constexpr int kPage = 1000;
  std::optional<std::pair<int64_t, std::string>> after;
  while (true) {
    std::vector<u::UsageRecord> records;
    // One short read transaction per page, so a long export never holds back checkpoints.
    TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
      return ReadPage(db, request, after, kPage, records);
    }));
    for (const u::UsageRecord& r : records) {
      if (!fn(r)) return absl::OkStatus();
    }
    if (static_cast<int>(records.size()) < kPage) return absl::OkStatus();
    after = std::make_pair(ToMicros(records.back().start_time()), records.back().request_id());
  }
}

absl::StatusOr<int64_t> UsageLedger::PruneExpired() {
  const int64_t cutoff = absl::ToUnixMicros(clock_.Now() - options_.retention);
  int64_t total = 0;
  while (true) {
    int64_t deleted = 0;
    TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
      TP_ASSIGN_OR_RETURN(SqliteStatement s,
                          db.Prepare("DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage "
                                     "WHERE start_time < ?1 ORDER BY start_time LIMIT ?2)"));
      s.Bind(1, cutoff).Bind(2, int64_t{options_.prune_chunk_rows});
      TP_RETURN_IF_ERROR(s.Run());
      deleted = db.changes();
      return absl::OkStatus();
    }));
    total += deleted;
    if (deleted < options_.prune_chunk_rows) return total;
  }
}

std::optional<absl::Time> UsageLedger::newest_start_time() const {
  const int64_t us = newest_start_us_.load(std::memory_order_relaxed);
  if (us == INT64_MIN) return std::nullopt;
  return absl::FromUnixMicros(us);
}

double UsageLedger::lag_seconds() {
  std::optional<absl::Time> newest = newest_start_time();
  if (!newest.has_value()) return 0;
  return std::max(0.0, absl::ToDoubleSeconds(clock_.Now() - *newest));
}

}  // namespace turnpike::controlplane
