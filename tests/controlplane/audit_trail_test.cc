// The audit trail end to end in one process: usage records reported over the node RPC and admin
// changes join one hash chain; QueryAudit filters and pages it; VerifyAudit and the offline
// verifier (turnpike-audit-verify, run as a process on the database file) accept it intact and
// name the first broken link after each kind of tampering done with SQL directly on the file:
// a row changed, deleted, inserted or reordered, a checkpoint forged, the chain rewritten.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/audit_chain.h"
#include "controlplane/audit_verifier.h"
#include "controlplane/sqlite.h"
#include "controlplane/usage_rows.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "tests/controlplane/usage_test_util.h"
#include "turnpike/audit/v1/audit.grpc.pb.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

namespace au = ::turnpike::audit::v1;

class AuditTrailTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    audit_ = au::AuditService::NewStub(Channel());
    // The node token the reports use: its creation is the chain's first entry.
    ASSERT_FALSE(NodeToken("gw-1").empty());
  }

  // Reports `n` requests (callers alternate billing/search, providers openai/anthropic).
  void Report(int first, int n) {
    auto stub = u::UsageService::NewStub(NodeChannel("gw-1"));
    u::ReportUsageRequest batch;
    for (int i = first; i < first + n; ++i) {
      u::UsageRecord r =
          Record(absl::StrCat("req-", i), Utc(2026, 12, 1, 10, i), "summaries", "m",
                 i % 2 == 0 ? "openai" : "anthropic", i % 2 == 0 ? "billing" : "search");
      r.mutable_audit()->set_provider_host(i % 2 == 0 ? "api.openai.com" : "api.anthropic.com");
      r.mutable_audit()->set_content_policy("HASH");
      r.mutable_audit()->set_request_sha256(std::string(64, 'a'));
      *batch.add_records() = r;
    }
    grpc::ClientContext ctx;
    u::ReportUsageResponse response;
    grpc::Status s = stub->ReportUsage(&ctx, batch, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  au::QueryAuditResponse Query(au::QueryAuditRequest request) {
    grpc::ClientContext ctx;
    au::QueryAuditResponse response;
    grpc::Status s = audit_->QueryAudit(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  au::VerifyAuditResponse Verify() {
    grpc::ClientContext ctx;
    au::VerifyAuditResponse response;
    grpc::Status s = audit_->VerifyAudit(&ctx, au::VerifyAuditRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  // The node token, two admin changes, ten requests, a checkpoint, then two more requests: 15
  // entries, the first 13 signed. Then the control plane stops, leaving the file to tamper with.
  void BuildAndStop() {
    Change();
    Report(0, 5);
    Change();
    Report(5, 5);
    auto signed_one = cp_->audit().Checkpoint();
    ASSERT_TRUE(signed_one.ok() && *signed_one) << signed_one.status();
    Report(10, 2);
    ASSERT_TRUE(Verify().intact());
    cp_.reset();
    // Shutdown signs the last two as well; the tests tamper with both signed and unsigned parts.
  }

  std::string PublicKey() {
    std::ifstream in(audit_key_file_);
    std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return *AuditPublicKeyFromPem(pem);
  }

  // Runs SQL on the stopped control plane's file, the append-only triggers dropped first.
  void Tamper(const std::string& sql) {
    auto db = SqliteDb::Open(dir_.File("cp.db"), false);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)
                    ->Exec("DROP TRIGGER IF EXISTS audit_chain_no_update; "
                           "DROP TRIGGER IF EXISTS audit_chain_no_delete; "
                           "DROP TRIGGER IF EXISTS audit_checkpoints_no_update; "
                           "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;")
                    .ok());
    absl::Status s = (*db)->Exec(sql);
    ASSERT_TRUE(s.ok()) << s << " in " << sql;
  }

  // Rewrites entry `seq`'s canonical bytes with `edit`, recomputes its hash and, when
  // `rehash_rest`, every later hash (what a forger with the file but not the key can do).
  void Forge(int64_t seq, const std::function<void(au::ChainedEntry&)>& edit, bool rehash_rest) {
    auto db = SqliteDb::Open(dir_.File("cp.db"), false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("DROP TRIGGER IF EXISTS audit_chain_no_update; DROP TRIGGER IF EXISTS "
                           "audit_chain_no_delete")
                    .ok());
    auto rows = ReadChain(**db, seq - 1, 1000);
    ASSERT_TRUE(rows.ok());
    std::string prev = (*rows)[0].prev_hash;
    for (AuditRow& row : *rows) {
      if (row.seq == seq) {
        au::ChainedEntry entry;
        ASSERT_TRUE(entry.ParseFromString(row.canonical));
        edit(entry);
        row.canonical = CanonicalBytes(entry);
      }
      row.prev_hash = prev;
      row.hash = AuditEntryHash(row.canonical, row.prev_hash);
      auto s = (*db)->Prepare(
          "UPDATE audit_chain SET canonical = ?1, prev_hash = ?2, hash = ?3 "
          "WHERE seq = ?4");
      ASSERT_TRUE(s.ok());
      s->BindBlob(1, row.canonical).BindBlob(2, row.prev_hash).BindBlob(3, row.hash);
      s->Bind(4, row.seq);
      ASSERT_TRUE(s->Run().ok());
      prev = row.hash;
      if (!rehash_rest) break;
    }
  }

  au::VerifyAuditResponse VerifyFile() {
    auto db = SqliteDb::Open(dir_.File("cp.db"), false);
    EXPECT_TRUE(db.ok());
    auto verdict = VerifyAuditTrail(**db, PublicKey());
    EXPECT_TRUE(verdict.ok()) << verdict.status();
    return *verdict;
  }

  // The offline verifier's exit code on the file (0 intact, 1 broken).
  int VerifyOffline() {
    std::ofstream(dir_.File("public.pem")) << [&] {
      std::ifstream in(audit_key_file_);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }();
    const std::string cmd = absl::StrCat(AUDIT_VERIFY_BIN, " --db=", dir_.File("cp.db"),
                                         " --public_key_file=", dir_.File("public.pem"), " > ",
                                         dir_.File("verdict.json"), " 2>&1");
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::unique_ptr<au::AuditService::Stub> audit_;
};

TEST_F(AuditTrailTest, RequestsAndAdminChangesShareOneChainThatQueriesFilterAndPage) {
  Change();
  Report(0, 6);
  // A resent batch is stored once, and chained once.
  Report(0, 6);
  au::QueryAuditResponse all = Query(au::QueryAuditRequest());
  ASSERT_EQ(all.entries_size(), 8);
  EXPECT_EQ(all.entries(0).entry().admin_change().action(), "CreateNodeToken");
  EXPECT_TRUE(all.entries(1).entry().has_admin_change());
  EXPECT_EQ(all.entries(0).prev_hash(), std::string(64, '0'));
  for (int i = 0; i < all.entries_size(); ++i) {
    EXPECT_EQ(all.entries(i).entry().seq(), i + 1);
    if (i > 0) {
      EXPECT_EQ(all.entries(i).prev_hash(), all.entries(i - 1).hash());
    }
  }
  const au::ChainedEntry& first_request = all.entries(2).entry();
  EXPECT_EQ(first_request.request().request_id(), "req-0");
  EXPECT_EQ(first_request.request().audit().provider_host(), "api.openai.com");
  EXPECT_EQ(first_request.request().audit().content_policy(), "HASH");

  // Everything caller "billing" sent to provider "openai" in a time range.
  au::QueryAuditRequest by;
  by.set_caller("billing");
  by.set_provider("openai");
  *by.mutable_start_time() = Ts(Utc(2026, 12, 1, 10, 1));
  *by.mutable_end_time() = Ts(Utc(2026, 12, 1, 10, 5));
  au::QueryAuditResponse some = Query(by);
  ASSERT_EQ(some.entries_size(), 2);  // req-2, req-4
  EXPECT_EQ(some.entries(0).entry().request().request_id(), "req-2");
  EXPECT_EQ(some.entries(1).entry().request().request_id(), "req-4");
  au::QueryAuditRequest one;
  one.set_request_id("req-3");
  ASSERT_EQ(Query(one).entries_size(), 1);

  // Pages of 3, oldest first, nothing skipped or repeated.
  std::vector<int64_t> seqs;
  au::QueryAuditRequest paged;
  paged.set_page_size(3);
  do {
    au::QueryAuditResponse page = Query(paged);
    for (const auto& e : page.entries()) seqs.push_back(e.entry().seq());
    paged.set_page_token(page.next_page_token());
  } while (!paged.page_token().empty());
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  au::QueryAuditRequest bad;
  bad.set_page_token("garbage");
  grpc::ClientContext ctx;
  au::QueryAuditResponse ignored;
  EXPECT_EQ(audit_->QueryAudit(&ctx, bad, &ignored).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AuditTrailTest, CheckpointsAreSignedWithThePublishedKey) {
  grpc::ClientContext ctx;
  au::GetCheckpointResponse none;
  ASSERT_TRUE(audit_->GetCheckpoint(&ctx, au::GetCheckpointRequest(), &none).ok());
  EXPECT_FALSE(none.has_checkpoint());
  Change();
  Report(0, 3);
  ASSERT_TRUE(*cp_->audit().Checkpoint());
  EXPECT_FALSE(*cp_->audit().Checkpoint());  // nothing new: nothing signed
  grpc::ClientContext ctx2;
  au::GetCheckpointResponse got;
  ASSERT_TRUE(audit_->GetCheckpoint(&ctx2, au::GetCheckpointRequest(), &got).ok());
  ASSERT_TRUE(got.has_checkpoint());
  EXPECT_EQ(got.checkpoint().size(), 5);
  EXPECT_EQ(got.public_key(), PublicKey());
  const std::string head = *HexDecode(got.checkpoint().head_hash());
  EXPECT_TRUE(VerifyAuditSignature(got.public_key(),
                                   CheckpointMessage(5, head, ToMicros(got.checkpoint().time())),
                                   got.checkpoint().signature()));
  au::VerifyAuditResponse verdict = Verify();
  EXPECT_TRUE(verdict.intact()) << verdict.problem();
  EXPECT_EQ(verdict.size(), 5);
  EXPECT_EQ(verdict.entries_checked(), 5);
  EXPECT_EQ(verdict.checkpoints_checked(), 1);
  EXPECT_EQ(verdict.head_hash(), got.checkpoint().head_hash());
}

TEST_F(AuditTrailTest, TheIntactFileVerifiesOffline) {
  BuildAndStop();
  au::VerifyAuditResponse verdict = VerifyFile();
  EXPECT_TRUE(verdict.intact()) << verdict.problem();
  EXPECT_EQ(verdict.size(), 15);
  EXPECT_EQ(VerifyOffline(), 0);
}

struct TamperCase {
  const char* name;
  const char* sql;  // run on the file; empty when `forge` does the work
  int64_t first_broken;
  const char* says;
  int forge_seq = 0;  // > 0: rewrite this entry's tokens (and rehash, per `rehash_rest`)
  bool rehash_rest = false;
};

class AuditTamperTest : public AuditTrailTest, public ::testing::WithParamInterface<TamperCase> {};

TEST_P(AuditTamperTest, IsDetectedAndNamesTheFirstBrokenLink) {
  const TamperCase& c = GetParam();
  BuildAndStop();
  if (c.forge_seq > 0) {
    Forge(
        c.forge_seq, [](au::ChainedEntry& e) { e.mutable_request()->set_input_tokens(1); },
        c.rehash_rest);
  } else {
    Tamper(c.sql);
  }
  au::VerifyAuditResponse verdict = VerifyFile();
  EXPECT_FALSE(verdict.intact());
  EXPECT_EQ(verdict.first_broken_seq(), c.first_broken) << verdict.problem();
  EXPECT_NE(verdict.problem().find(c.says), std::string::npos) << verdict.problem();
  EXPECT_EQ(VerifyOffline(), 1);
  // The control plane, started on the tampered file, says the same over VerifyAudit.
  StartControlPlane("127.0.0.1:0");
  audit_ = au::AuditService::NewStub(Channel());
  au::VerifyAuditResponse online = Verify();
  EXPECT_FALSE(online.intact());
  EXPECT_EQ(online.first_broken_seq(), c.first_broken) << online.problem();
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, AuditTamperTest,
    ::testing::Values(
        // A query column edited: the caller of entry 4.
        TamperCase{"ColumnChanged", "UPDATE audit_chain SET caller = 'someone' WHERE seq = 4", 4,
                   "column caller"},
        // The hashed bytes replaced (by entry 6's), hash left alone.
        TamperCase{"ContentsChanged",
                   "UPDATE audit_chain SET canonical = (SELECT canonical FROM audit_chain WHERE "
                   "seq = 6) WHERE seq = 5",
                   5, "does not match its contents"},
        // The bytes edited and the entry's own hash recomputed: the next link breaks.
        TamperCase{"ContentsChangedAndRehashed", "", 6, "does not link", 5, false},
        // Everything after the edit recomputed too: only the signed checkpoint catches it.
        TamperCase{"ChainRewrittenAfterTheEdit", "", 13, "checkpoint", 5, true},
        TamperCase{"RowDeleted", "DELETE FROM audit_chain WHERE seq = 3", 3, "entry 3 is missing"},
        TamperCase{"FirstRowDeleted", "DELETE FROM audit_chain WHERE seq = 1", 1, "are gone"},
        // The signed tail removed: the checkpoints cover entries that are no longer there.
        TamperCase{"TailDeleted", "DELETE FROM audit_chain WHERE seq >= 13", 13, "are gone"},
        // A row slipped in after entry 3: later rows renumbered, the copy claims seq 4.
        TamperCase{"RowInserted",
                   "UPDATE audit_chain SET seq = seq + 1000 WHERE seq >= 4;"
                   "UPDATE audit_chain SET seq = seq - 999 WHERE seq >= 1004;"
                   "INSERT INTO audit_chain SELECT 4, kind, time, recorded_time, request_id, "
                   "caller, capability, provider, canonical, prev_hash, hash FROM audit_chain "
                   "WHERE seq = 3",
                   4, "entry 4 does not link"},
        // Two rows swapped (positions kept, contents exchanged).
        TamperCase{"RowsReordered",
                   "UPDATE audit_chain SET seq = 100 WHERE seq = 6;"
                   "UPDATE audit_chain SET seq = 6 WHERE seq = 7;"
                   "UPDATE audit_chain SET seq = 7 WHERE seq = 100",
                   6, "does not link"},
        TamperCase{"CheckpointForged",
                   "UPDATE audit_checkpoints SET time = time + 1 WHERE size = 13", 13,
                   "does not verify"}),
    [](const ::testing::TestParamInfo<TamperCase>& info) { return info.param.name; });

TEST_F(AuditTrailTest, PruningKeepsTheChainVerifiableFromTheCheckpoint) {
  cp_.reset();
  audit_options_.retention = absl::Hours(1);
  StartControlPlane("127.0.0.1:0");
  audit_ = au::AuditService::NewStub(Channel());
  Change();
  Report(0, 4);
  ASSERT_TRUE(*cp_->audit().Checkpoint());  // covers 1..6
  Report(4, 2);
  // Nothing is old enough yet.
  EXPECT_EQ(*cp_->audit().PruneExpired(), 0);
  // Rewrite the checkpoint's time into the past (the clock is real), as if signed long ago.
  cp_.reset();
  Tamper("UPDATE audit_checkpoints SET time = time - 7200000000 WHERE size = 6");
  // ...which breaks its signature: re-sign it as the control plane would have.
  {
    auto db = SqliteDb::Open(dir_.File("cp.db"), false);
    ASSERT_TRUE(db.ok());
    auto cps = ReadCheckpoints(**db);
    ASSERT_TRUE(cps.ok());
    // The first shutdown signed 1..1 (the node token), the second 1..8.
    ASSERT_EQ(cps->size(), 3u);
    std::ifstream in(audit_key_file_);
    auto signer = AuditSigner::FromPem(
        std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
    ASSERT_TRUE(signer.ok());
    auto six =
        std::find_if(cps->begin(), cps->end(), [](const CheckpointRow& c) { return c.size == 6; });
    ASSERT_NE(six, cps->end());
    const CheckpointRow& old = *six;
    auto s = (*db)->Prepare("UPDATE audit_checkpoints SET signature = ?1 WHERE size = ?2");
    ASSERT_TRUE(s.ok());
    s->BindBlob(1, *(*signer)->Sign(CheckpointMessage(old.size, old.head_hash, old.time_us)));
    s->Bind(2, old.size);
    ASSERT_TRUE(s->Run().ok());
  }
  StartControlPlane("127.0.0.1:0");  // prunes at start
  audit_ = au::AuditService::NewStub(Channel());
  au::QueryAuditResponse left = Query(au::QueryAuditRequest());
  ASSERT_EQ(left.entries_size(), 2);
  EXPECT_EQ(left.entries(0).entry().seq(), 7);
  au::VerifyAuditResponse verdict = Verify();
  EXPECT_TRUE(verdict.intact()) << verdict.problem();
  EXPECT_EQ(verdict.size(), 8);
  // Without that checkpoint, the missing prefix is a deletion.
  cp_.reset();
  Tamper("DELETE FROM audit_checkpoints WHERE size = 6");
  au::VerifyAuditResponse broken = VerifyFile();
  EXPECT_FALSE(broken.intact());
  EXPECT_EQ(broken.first_broken_seq(), 1);
}

TEST_F(AuditTrailTest, AppendOnlyTriggersRefuseEditsThroughSql) {
  Change();
  Report(0, 1);
  cp_.reset();
  auto db = SqliteDb::Open(dir_.File("cp.db"), false);
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE((*db)->Exec("UPDATE audit_chain SET caller = 'x' WHERE seq = 2").ok());
  EXPECT_FALSE((*db)->Exec("DELETE FROM audit_chain WHERE seq = 2").ok());
}

}  // namespace
}  // namespace turnpike::controlplane::testing
