// The audit evidence a usage record carries (docs/audit.md): the provider's host and the content
// policy always; under HASH the request's and reply's SHA-256 (the request log's canonical
// form); under REDACTED and FULL redacted, truncated excerpts (never the text itself).
// UsageRecorder fills it on its digest thread and spools the record only then.
#include "server/usage/audit_evidence.h"

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/usage/usage_recorder.h"

namespace turnpike {
namespace {

std::shared_ptr<RequestContent> Chat(config::v1::ContentPolicy policy) {
  auto content = std::make_shared<RequestContent>();
  content->policy = policy;
  content->redactor = Redactor::Default();
  content->messages = {{"ROLE_SYSTEM", "be brief"},
                       {"ROLE_USER", "mail alice@example.com about the claim"}};
  content->reply = "Sent to alice@example.com.";
  return content;
}

TEST(AuditEvidenceTest, HashKeepsOnlyTheDigests) {
  auto content = Chat(config::v1::CONTENT_POLICY_HASH);
  usage::v1::AuditEvidence e;
  FillContentEvidence(*content, 2048, e);
  EXPECT_EQ(e.content_policy(), "HASH");
  EXPECT_EQ(e.request_sha256(), Sha256Hex(CanonicalRequest(*content)));
  EXPECT_EQ(e.reply_sha256(), Sha256Hex(content->reply));
  EXPECT_TRUE(e.request_excerpt().empty());
  EXPECT_TRUE(e.reply_excerpt().empty());
}

TEST(AuditEvidenceTest, RedactedExcerptsHoldPlaceholdersAndAreCut) {
  auto content = Chat(config::v1::CONTENT_POLICY_REDACTED);
  usage::v1::AuditEvidence e;
  FillContentEvidence(*content, 2048, e);
  EXPECT_EQ(e.request_excerpt(), "ROLE_SYSTEM: be brief\nROLE_USER: mail [EMAIL] about the claim");
  EXPECT_EQ(e.reply_excerpt(), "Sent to [EMAIL].");
  EXPECT_FALSE(e.excerpt_truncated());
  EXPECT_FALSE(e.request_sha256().empty());
  usage::v1::AuditEvidence cut;
  FillContentEvidence(*content, 12, cut);
  EXPECT_TRUE(cut.excerpt_truncated());
  EXPECT_EQ(cut.reply_excerpt(), "Sent to [EMA");
  EXPECT_EQ(cut.request_excerpt().find("alice"), std::string::npos);
}

TEST(AuditEvidenceTest, FullIsRedactedInTheTrailTooAndEmbeddingsHaveNoReply) {
  // The trail is immutable: unredacted text never enters it, whatever the policy.
  auto content = Chat(config::v1::CONTENT_POLICY_FULL);
  usage::v1::AuditEvidence e;
  FillContentEvidence(*content, 2048, e);
  EXPECT_EQ(e.content_policy(), "FULL");
  EXPECT_EQ(e.reply_excerpt(), "Sent to [EMAIL].");
  EXPECT_EQ(e.request_excerpt().find("alice"), std::string::npos);
  auto embed = std::make_shared<RequestContent>();
  embed->policy = config::v1::CONTENT_POLICY_HASH;
  embed->redactor = Redactor::Default();
  embed->inputs = {"a", "b"};
  usage::v1::AuditEvidence ee;
  FillContentEvidence(*embed, 2048, ee);
  EXPECT_EQ(ee.request_sha256(), Sha256Hex(R"({"inputs":["a","b"]})"));
  EXPECT_TRUE(ee.reply_sha256().empty());
}

TEST(AuditEvidenceTest, TheRecordOfAnyRequestNamesTheHostAndPolicy) {
  RequestFinished event;
  event.request_id = "r-1";
  event.provider_host = "api.openai.com";
  usage::v1::UsageRecord r = ToUsageRecord(event, "gw-1");
  EXPECT_EQ(r.audit().provider_host(), "api.openai.com");
  EXPECT_EQ(r.audit().content_policy(), "NONE");
  EXPECT_TRUE(r.audit().request_sha256().empty());
}

TEST(AuditEvidenceTest, TheRecorderSpoolsRecordsWithTheirDigests) {
  char tmpl[] = "/tmp/turnpike-audit-evidence-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  UsageSpool::Options options;
  options.dir = tmpl;
  auto spool = UsageSpool::Open(options, Clock::Real());
  ASSERT_TRUE(spool.ok()) << spool.status();
  {
    UsageRecorder recorder(**spool, "gw-1", UsageRecorder::Options{});
    RequestFinished event;
    event.start_time = absl::Now();
    for (int i = 0; i < 50; ++i) {
      event.request_id = "r-" + std::to_string(i);
      event.content = i % 2 == 0 ? Chat(config::v1::CONTENT_POLICY_REDACTED) : nullptr;
      recorder.OnRequestFinished(event);
    }
    recorder.Flush();
    EXPECT_EQ(recorder.inline_digests(), 0);
  }
  (*spool)->Flush();
  auto segment = (*spool)->NextSealed();
  ASSERT_TRUE(segment.ok() && segment->has_value());
  ASSERT_EQ((*segment)->records.size(), 50u);
  int with_digest = 0;
  for (const auto& r : (*segment)->records) {
    if (r.audit().content_policy() == "REDACTED") {
      ++with_digest;
      EXPECT_EQ(r.audit().reply_excerpt(), "Sent to [EMAIL].");
    } else {
      EXPECT_EQ(r.audit().content_policy(), "NONE");
    }
  }
  EXPECT_EQ(with_digest, 25);
  spool->reset();
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace turnpike
