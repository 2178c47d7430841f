// turnpike-audit-verify: checks the audit trail offline, with only the control plane's public
// key (docs/audit.md, "Proving the log was not edited"). It reads either the control plane's
// SQLite file (--db) or an export: QueryAudit answers saved as JSON, e.g. grpcurl's output of
// every page (--export). It runs the same verifier as AuditService/VerifyAudit, so it detects an
// entry changed, deleted, inserted or reordered directly in the file, and a checkpoint forged or
// dropped. A checkpoint saved earlier from GetCheckpoint (--checkpoint) is trusted on top of
// those in the file. Prints the verdict as JSON; exits 0 when intact, 1 when broken, 2 when it
// could not check.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/audit_chain.h"
#include "controlplane/audit_signer.h"
#include "controlplane/audit_verifier.h"
#include "controlplane/migrations.h"
#include "controlplane/sqlite.h"
#include "controlplane/usage_rows.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, db, "", "the control plane's SQLite database file");
ABSL_FLAG(std::string, export_file, "",
          "a file of QueryAudit answers (JSON objects one after the other, e.g. grpcurl output)");
ABSL_FLAG(std::string, public_key_file, "",
          "PEM Ed25519 public key (GetCheckpoint's public_key_pem, or the private key file)");
ABSL_FLAG(std::string, checkpoint, "",
          "optional: a GetCheckpoint answer saved as JSON, trusted as a checkpoint");

namespace {

namespace au = ::turnpike::audit::v1;
namespace cp = ::turnpike::controlplane;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The top-level JSON objects of `text`, in order (strings and escapes respected).
std::vector<std::string> SplitObjects(const std::string& text) {
  std::vector<std::string> out;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      if (depth++ == 0) start = i;
    } else if (c == '}' && depth > 0 && --depth == 0) {
      out.push_back(text.substr(start, i - start + 1));
    }
  }
  return out;
}

// Loads an export into an in-memory database with the control plane's schema.
absl::StatusOr<std::unique_ptr<cp::SqliteDb>> LoadExport(const std::string& path) {
  TP_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  TP_ASSIGN_OR_RETURN(std::unique_ptr<cp::SqliteDb> db, cp::SqliteDb::Open(":memory:", true));
  TP_RETURN_IF_ERROR(cp::RunMigrations(*db, cp::EmbeddedMigrations()).status());
  TP_ASSIGN_OR_RETURN(cp::SqliteStatement insert,
                      db->Prepare("INSERT INTO audit_chain (seq, kind, time, recorded_time, "
                                  "request_id, caller, capability, provider, canonical, "
                                  "prev_hash, hash) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, "
                                  "?9, ?10)"));
  for (const std::string& object : SplitObjects(text)) {
    au::QueryAuditResponse page;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(object, &page, options).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " holds a JSON object that is not a QueryAudit answer"));
    }
    for (const au::AuditEntry& e : page.entries()) {
      // The entry as the export decoded it would hide a change to `canonical`: decode again.
      au::ChainedEntry entry;
      entry.ParseFromString(e.canonical());
      insert.Bind(1, entry.seq());
      insert.Bind(2, int64_t{entry.has_admin_change() ? 2 : 1});
      insert.Bind(3, cp::ToMicros(entry.time()));
      insert.Bind(4, entry.request().request_id()).Bind(5, entry.request().caller());
      insert.Bind(6, entry.request().capability()).Bind(7, entry.request().provider());
      insert.BindBlob(8, e.canonical());
      insert.BindBlob(9, cp::HexDecode(e.prev_hash()).value_or(""));
      insert.BindBlob(10, cp::HexDecode(e.hash()).value_or(""));
      absl::Status s = insert.Run();
      if (!s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("entry ", entry.seq(),
                         " of the export cannot be loaded (given twice, or its hashes "
                         "are not 64 hex digits): ",
                         s.message()));
      }
      TP_RETURN_IF_ERROR(insert.Reset());
    }
  }
  return db;
}

int Fail(const absl::Status& s) {
  std::cerr << "turnpike-audit-verify: " << s.message() << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "turnpike-audit-verify --public_key_file=KEY.pem (--db=FILE | --export_file=FILE) "
      "[--checkpoint=FILE]");
  absl::ParseCommandLine(argc, argv);
  const std::string db_path = absl::GetFlag(FLAGS_db);
  const std::string export_path = absl::GetFlag(FLAGS_export_file);
  if (db_path.empty() == export_path.empty()) {
    return Fail(absl::InvalidArgumentError("give exactly one of --db and --export_file"));
  }
  if (absl::GetFlag(FLAGS_public_key_file).empty()) {
    return Fail(absl::InvalidArgumentError("--public_key_file is required"));
  }
  absl::StatusOr<std::string> pem = ReadFile(absl::GetFlag(FLAGS_public_key_file));
  if (!pem.ok()) return Fail(pem.status());
  absl::StatusOr<std::string> public_key = cp::AuditPublicKeyFromPem(*pem);
  if (!public_key.ok()) return Fail(public_key.status());

  std::vector<cp::CheckpointRow> trusted;
  if (!absl::GetFlag(FLAGS_checkpoint).empty()) {
    absl::StatusOr<std::string> json = ReadFile(absl::GetFlag(FLAGS_checkpoint));
    if (!json.ok()) return Fail(json.status());
    au::GetCheckpointResponse saved;
    if (!google::protobuf::util::JsonStringToMessage(*json, &saved).ok() ||
        !saved.has_checkpoint()) {
      return Fail(absl::InvalidArgumentError("--checkpoint is not a GetCheckpoint answer"));
    }
    const au::Checkpoint& c = saved.checkpoint();
    const std::string head = cp::HexDecode(c.head_hash()).value_or("");
    trusted.push_back({c.size(), head, cp::ToMicros(c.time()), c.key_id(), c.signature()});
  }

  absl::StatusOr<std::unique_ptr<cp::SqliteDb>> db =
      db_path.empty() ? LoadExport(export_path) : cp::SqliteDb::Open(db_path, false);
  if (!db.ok()) return Fail(db.status());
  absl::StatusOr<au::VerifyAuditResponse> verdict =
      cp::VerifyAuditTrail(**db, *public_key, trusted);
  if (!verdict.ok()) return Fail(verdict.status());
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.add_whitespace = true;
  print.always_print_primitive_fields = true;
  print.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(*verdict, &json, print);
  std::cout << json;
  return verdict->intact() ? 0 : 1;
}
