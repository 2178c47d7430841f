#include "controlplane/usage_service.h"

#include <spdlog/spdlog.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controlplane/usage_csv.h"

namespace turnpike::controlplane {
namespace {

namespace u = ::turnpike::usage::v1;

// Chunks of the export are cut at the first row boundary past this size.
constexpr size_t kChunkBytes = 64 * 1024;

grpc::Status Answer(const char* method, const absl::Status& s) {
  if (!s.ok() &&
      (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss ||
       s.code() == absl::StatusCode::kUnavailable ||
       s.code() == absl::StatusCode::kResourceExhausted)) {
    spdlog::error("usage: {} failed: {}", method, s.ToString());
  }
  return ToGrpcStatus(s);
}

// Sends `csv` as one chunk if it reached kChunkBytes (or `flush`); false if the client left.
bool MaybeSend(std::string& csv, bool flush, grpc::ServerWriter<u::ExportUsageResponse>* writer) {
  if (csv.empty() || (!flush && csv.size() < kChunkBytes)) return true;
  u::ExportUsageResponse chunk;
  chunk.set_csv(std::move(csv));
  csv.clear();
  return writer->Write(chunk);
}

}  // namespace

grpc::Status UsageServiceImpl::ReportUsage(grpc::ServerContext* context,
                                           const u::ReportUsageRequest* request,
                                           u::ReportUsageResponse* response) {
  if (request->records_size() > 0) {
    const std::string& node_id = request->records(0).node_id();
    absl::StatusOr<Identity> identity = authenticator_.IdentifyNode(*context, node_id);
    if (!identity.ok()) return ToGrpcStatus(identity.status());
    for (int i = 1; i < request->records_size(); ++i) {
      if (request->records(i).node_id() == node_id) continue;
      absl::Status wrong =
          authenticator_.IdentifyNode(*context, request->records(i).node_id()).status();
      return ToGrpcStatus(
          absl::Status(wrong.code(), absl::StrCat("records[", i, "].", wrong.message())));
    }
  }
  absl::StatusOr<UsageLedger::IngestResult> result = ledger_.Ingest(request->records());
  if (!result.ok()) {
    spdlog::warn("usage: batch of {} record(s) from {} refused: {}", request->records_size(),
                 context->peer(), result.status().ToString());
    return Answer("ReportUsage", result.status());
  }
  if (!result->refused.ok()) {
    spdlog::warn("usage: batch from {}: {}", context->peer(),
                 std::string(result->refused.message()));
    return ToGrpcStatus(result->refused);
  }
  response->set_accepted(result->accepted);
  response->set_duplicates(result->duplicates);
  return grpc::Status::OK;
}

grpc::Status UsageServiceImpl::QuerySpend(grpc::ServerContext*, const u::QuerySpendRequest* request,
                                          u::QuerySpendResponse* response) {
  absl::StatusOr<std::vector<u::SpendRow>> rows = ledger_.QuerySpend(*request);
  if (!rows.ok()) return Answer("QuerySpend", rows.status());
  for (auto& row : *rows) *response->add_rows() = std::move(row);
  return grpc::Status::OK;
}

grpc::Status UsageServiceImpl::ListUsage(grpc::ServerContext*, const u::ListUsageRequest* request,
                                         u::ListUsageResponse* response) {
  absl::StatusOr<u::ListUsageResponse> page = ledger_.ListUsage(*request);
  if (!page.ok()) return Answer("ListUsage", page.status());
  *response = *std::move(page);
  return grpc::Status::OK;
}

grpc::Status UsageServiceImpl::ExportUsage(grpc::ServerContext* context,
                                           const u::ExportUsageRequest* request,
                                           grpc::ServerWriter<u::ExportUsageResponse>* writer) {
  std::string csv;
  if (request->has_spend()) {
    // The whole answer is computed before the first byte, so an error is a status, not a
    // truncated file.
    absl::StatusOr<std::vector<u::SpendRow>> rows = ledger_.QuerySpend(request->spend());
    if (!rows.ok()) return Answer("ExportUsage", rows.status());
    csv = SpendCsvHeader(request->spend());
    for (const u::SpendRow& row : *rows) {
      AppendSpendCsvRow(csv, request->spend(), row);
      if (!MaybeSend(csv, false, writer)) return grpc::Status(grpc::StatusCode::CANCELLED, "");
    }
  } else if (request->has_records()) {
    csv = RecordCsvHeader();
    bool gone = false;
    absl::Status s = ledger_.ForEachRecord(request->records(), [&](const u::UsageRecord& r) {
      AppendRecordCsvRow(csv, r);
      gone = !MaybeSend(csv, false, writer) || context->IsCancelled();
      return !gone;
    });
    if (!s.ok()) return Answer("ExportUsage", s);
    if (gone) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  } else {
    return ToGrpcStatus(InvalidFieldError("what", "give either spend or records"));
  }
  MaybeSend(csv, true, writer);
  return grpc::Status::OK;
}

}  // namespace turnpike::controlplane
