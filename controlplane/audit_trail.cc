#include "controlplane/audit_trail.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/audit_chain.h"
#include "controlplane/audit_verifier.h"
#include "controlplane/config_tables.h"
#include "controlplane/proto_util.h"
#include "controlplane/usage_rows.h"

namespace turnpike::controlplane {
namespace {

namespace au = ::turnpike::audit::v1;

constexpr char kChainColumns[] =
    "seq, kind, time, recorded_time, request_id, caller, capability, provider, canonical, "
    "prev_hash, hash";

}  // namespace

absl::Status AuditTrail::NeedSigner() const {
  if (signer_ != nullptr) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                         "the control plane has no audit signing key: start turnpike-control "
                         "with --audit_signing_key_file",
                         "AUDIT_NO_SIGNING_KEY");
}

absl::StatusOr<au::QueryAuditResponse> AuditTrail::Query(const au::QueryAuditRequest& r) {
  Violations v;
  if (r.has_start_time() && !ValidTimestamp(r.start_time())) {
    v.Add("start_time", "must be between 1970-01-01 and 9999-12-31");
  }
  if (r.has_end_time() && !ValidTimestamp(r.end_time())) {
    v.Add("end_time", "must be between 1970-01-01 and 9999-12-31");
  }
  if (r.page_size() < 0) v.Add("page_size", "must not be negative");
  TP_RETURN_IF_ERROR(v.ToStatus());
  TP_ASSIGN_OR_RETURN(int limit, PageSize(r.page_size()));
  TP_ASSIGN_OR_RETURN(std::string token, DecodePageToken(r.page_token()));
  int64_t after = 0;
  if (!token.empty() && !absl::SimpleAtoi(token, &after)) {
    return InvalidFieldError("page_token", "is not a token returned by QueryAudit");
  }
  std::vector<std::string> conds = {"seq > ?1"};
  if (r.has_start_time()) conds.push_back("time >= ?2");
  if (r.has_end_time()) conds.push_back("time < ?3");
  if (!r.caller().empty()) conds.push_back("caller = ?4");
  if (!r.capability().empty()) conds.push_back("capability = ?5");
  if (!r.provider().empty()) conds.push_back("provider = ?6");
  if (!r.request_id().empty()) conds.push_back("request_id = ?7");
  const std::string sql = absl::StrCat("SELECT ", kChainColumns, " FROM audit_chain WHERE ",
                                       absl::StrJoin(conds, " AND "), " ORDER BY seq LIMIT ?8");
  std::vector<AuditRow> rows;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare(sql));
    s.Bind(1, after);
    if (r.has_start_time()) s.Bind(2, ToMicros(r.start_time()));
    if (r.has_end_time()) s.Bind(3, ToMicros(r.end_time()));
    if (!r.caller().empty()) s.Bind(4, r.caller());
    if (!r.capability().empty()) s.Bind(5, r.capability());
    if (!r.provider().empty()) s.Bind(6, r.provider());
    if (!r.request_id().empty()) s.Bind(7, r.request_id());
    s.Bind(8, int64_t{limit} + 1);
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return absl::OkStatus();
      AuditRow a;
      a.seq = s.ColumnInt(0);
      a.canonical = s.ColumnText(8);
      a.prev_hash = s.ColumnText(9);
      a.hash = s.ColumnText(10);
      rows.push_back(std::move(a));
    }
  }));
  au::QueryAuditResponse response;
  const bool more = static_cast<int>(rows.size()) > limit;
  if (more) rows.resize(limit);
  for (const AuditRow& row : rows) *response.add_entries() = ToAuditEntry(row);
  if (more) response.set_next_page_token(EncodePageToken(absl::StrCat(rows.back().seq)));
  return response;
}

absl::StatusOr<au::ListAdminChangesResponse> AuditTrail::ListAdminChanges(
    const au::ListAdminChangesRequest& request) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(request.page_size()));
  TP_ASSIGN_OR_RETURN(std::string token, DecodePageToken(request.page_token()));
  int64_t before = 0;
  if (!token.empty() && !absl::SimpleAtoi(token, &before)) {
    return InvalidFieldError("page_token", "is not a token returned by ListAdminChanges");
  }
  au::ListAdminChangesResponse response;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<AuditRecord> rows, ListAudit(db, before, limit + 1));
    for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
      au::AdminChange* c = response.add_changes();
      c->set_seq(rows[i].sequence);
      *c->mutable_time() = ToTimestamp(rows[i].time);
      c->set_actor(rows[i].actor);
      c->set_action(rows[i].action);
      c->set_resource_type(rows[i].resource_type);
      c->set_resource_name(rows[i].resource_name);
      c->set_before_json(rows[i].before_json);
      c->set_after_json(rows[i].after_json);
      c->set_config_version(rows[i].config_version);
    }
    if (rows.size() > static_cast<size_t>(limit)) {
      response.set_next_page_token(EncodePageToken(absl::StrCat(rows[limit - 1].sequence)));
    }
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<au::VerifyAuditResponse> AuditTrail::Verify() {
  TP_RETURN_IF_ERROR(NeedSigner());
  absl::StatusOr<au::VerifyAuditResponse> result;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    result = VerifyAuditTrail(db, signer_->public_key());
    return result.status();
  }));
  return result;
}

absl::StatusOr<au::GetCheckpointResponse> AuditTrail::GetCheckpoint() {
  TP_RETURN_IF_ERROR(NeedSigner());
  au::GetCheckpointResponse response;
  response.set_public_key(signer_->public_key());
  response.set_public_key_pem(signer_->public_key_pem());
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("SELECT size, head_hash, time, key_id, signature FROM "
                                   "audit_checkpoints ORDER BY size DESC LIMIT 1"));
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::OkStatus();
    CheckpointRow c{s.ColumnInt(0), s.ColumnText(1), s.ColumnInt(2), s.ColumnText(3),
                    s.ColumnText(4)};
    *response.mutable_checkpoint() = ToCheckpoint(c);
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<bool> AuditTrail::Checkpoint() {
  TP_RETURN_IF_ERROR(NeedSigner());
  bool signed_one = false;
  const int64_t now_us = absl::ToUnixMicros(clock_.Now());
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    signed_one = false;
    TP_ASSIGN_OR_RETURN(std::optional<AuditRow> head, ChainHead(db));
    if (!head.has_value()) return absl::OkStatus();
    TP_ASSIGN_OR_RETURN(int64_t last,
                        db.QueryInt("SELECT coalesce(max(size), 0) FROM audit_checkpoints"));
    if (last >= head->seq) return absl::OkStatus();
    CheckpointRow c;
    c.size = head->seq;
    c.head_hash = head->hash;
    c.time_us = now_us;
    c.key_id = signer_->key_id();
    TP_ASSIGN_OR_RETURN(c.signature,
                        signer_->Sign(CheckpointMessage(c.size, c.head_hash, c.time_us)));
    TP_RETURN_IF_ERROR(InsertCheckpoint(db, c));
    signed_one = true;
    return absl::OkStatus();
  }));
  return signed_one;
}

absl::StatusOr<int64_t> AuditTrail::PruneExpired() {
  if (options_.retention <= absl::ZeroDuration() || signer_ == nullptr) return 0;
  const int64_t cutoff = absl::ToUnixMicros(clock_.Now() - options_.retention);
  int64_t deleted = 0;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    deleted = 0;
    TP_ASSIGN_OR_RETURN(int64_t upto,
                        db.QueryInt(absl::StrCat(
                            "SELECT coalesce(max(size), 0) FROM audit_checkpoints WHERE time < ",
                            cutoff, " AND size < (SELECT max(seq) FROM audit_chain)")));
    if (upto == 0) return absl::OkStatus();
    // The delete trigger lets only a transaction holding the permit through.
    TP_RETURN_IF_ERROR(db.Exec("INSERT INTO audit_prune_permit (id) VALUES (1)"));
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM audit_chain WHERE seq <= ?1"));
    s.Bind(1, upto);
    TP_RETURN_IF_ERROR(s.Run());
    deleted = db.changes();
    return db.Exec("DELETE FROM audit_prune_permit");
  }));
  return deleted;
}

}  // namespace turnpike::controlplane
