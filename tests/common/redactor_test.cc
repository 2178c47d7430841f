#include "common/redactor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace turnpike {
namespace {

std::string Redact(std::string_view text) { return Redactor::Default()->Redact(text); }

TEST(RedactorTest, ReplacesEveryBuiltInKindWithItsPlaceholder) {
  struct Case {
    std::string input;
    std::string want;
  } cases[] = {
      {"mail jane.doe+x@example.co.uk now", "mail [EMAIL] now"},
      {"card 4111 1111 1111 1111.", "card [CARD]."},
      {"card 4111-1111-1111-1111", "card [CARD]"},
      {"card 378282246310005", "card [CARD]"},
      {"iban GB82 WEST 1234 5698 7654 32 ok", "iban [IBAN] ok"},
      {"iban DE89370400440532013000", "iban [IBAN]"},
      {"ssn 123-45-6789", "ssn [SSN]"},
      {"call +14155550100 or (415) 555-0100", "call [PHONE] or [PHONE]"},
      {"call 415-555-0100", "call [PHONE]"},
      {"host 192.168.1.20 and 2001:db8:85a3::8a2e:370:7334", "host [IP] and [IP]"},
      {"key sk-proj-abcdefghijklmnopqrstuvwx", "key [SECRET]"},
      {"key sk-ant-api03-abcdefghijklmnopqrstuvwx", "key [SECRET]"},
      {"aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]"},
      {"gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [SECRET]"},
      {"gh github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "gh [SECRET]"},
      {"g AIzaSyA-abcdefghijklmnopqrstuvwxyz012345", "g [SECRET]"},
      {"slack xoxb-123456789012-abcdefghij", "slack [SECRET]"},
      {"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl", "jwt [SECRET]"},
      {"Authorization: Bearer abc.def-ghi_jkl", "Authorization: [SECRET]"},
      {"caller tpk_0123456789abcdefghijABCDEFGHIJ", "caller [SECRET]"},
      {"-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\nafter",
       "[SECRET]\nafter"},
      // Without a footer the block ends where the base64 body does.
      {"-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAK\n\"}", "[SECRET]\"}"},
  };
  for (const Case& c : cases) EXPECT_EQ(Redact(c.input), c.want) << c.input;
}

TEST(RedactorTest, ChecksumsAndRangesKeepLookalikes) {
  // Luhn fails, mod-97 fails, invalid SSN areas, octets above 255, too few IPv6 groups.
  for (const char* keep :
       {"order 4111 1111 1111 1112", "ref GB82 WEST 1234 5698 7654 33", "id 000-12-3456",
        "id 666-12-3456", "id 900-12-3456", "version 300.1.2.3", "std::string dead::beef",
        "a ratio 3:4", "task-abcdefghijklmnopqrstuvwx", "plain words only"}) {
    EXPECT_EQ(Redact(keep), keep);
  }
}

TEST(RedactorTest, CustomPatternsRunAfterTheBuiltIns) {
  auto redactor = Redactor::Create({"EMP-[0-9]{6}", "(?i)project\\s+falcon"});
  ASSERT_TRUE(redactor.ok()) << redactor.status();
  EXPECT_EQ((*redactor)->Redact("EMP-123456 on Project  Falcon, jane@example.com"),
            "[CUSTOM] on [CUSTOM], [EMAIL]");
}

TEST(RedactorTest, RejectsBadCustomPatterns) {
  EXPECT_FALSE(Redactor::CheckCustomPattern("").ok());
  EXPECT_FALSE(Redactor::CheckCustomPattern("(unclosed").ok());
  EXPECT_FALSE(Redactor::CheckCustomPattern("a*").ok());  // matches the empty string
  EXPECT_FALSE(Redactor::CheckCustomPattern(std::string(600, 'a')).ok());
  EXPECT_FALSE(Redactor::CheckCustomPattern("((a{100}){100}){100}").ok());
  EXPECT_FALSE(Redactor::CheckCustomPattern("(a)\\1").ok());  // backreferences are not RE2
  EXPECT_TRUE(Redactor::CheckCustomPattern("EMP-[0-9]{6}").ok());
  EXPECT_FALSE(Redactor::Create(std::vector<std::string>(17, "x")).ok());
}

TEST(RedactorTest, InvalidUtf8AndControlBytesPassThroughUnharmed) {
  const std::string text = "\xff\xfe jane@example.com \x01\x7f";
  EXPECT_EQ(Redact(text), "\xff\xfe [EMAIL] \x01\x7f");
}

double SecondsToRedact(const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  const std::string out = Redact(text);
  EXPECT_FALSE(out.empty());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Hostile shapes: long digit runs (cards, phones, SSNs, IPs all start everywhere), nested and
// overlapping shapes, endless local parts without a domain, a PEM header without a footer. (One
// combined alternation of every kind was quadratic on "1-1-1-...": an email thread over the run
// held back the card match at every call; each kind is now its own pass.)
// Doubling the input must about double the time (linear), never quadruple it.
TEST(RedactorTest, AdversarialInputStaysLinear) {
  const std::string shapes[] = {"4",
                                "1-",
                                "a.",
                                "a@",
                                "1.",
                                "eyJa.",
                                "ab:",
                                "sk-",
                                "4111 1111 1111 1111 ",
                                "-----BEGIN PRIVATE KEY-----",
                                "GB82 WEST ",
                                "Bearer ",
                                "+1",
                                "a1",
                                "1 ",
                                "a@b.cc ",
                                "1.1 "};
  for (const std::string& shape : shapes) {
    std::string small, large;
    while (small.size() < (256 << 10)) small += shape;
    while (large.size() < (1 << 20)) large += shape;
    SecondsToRedact(small);  // warm the DFA cache
    // The best of three: on a loaded machine a run only ever takes longer than the work needs.
    double t_small = 1e9, t_large = 1e9;
    for (int run = 0; run < 3; ++run) {
      t_small = std::min(t_small, SecondsToRedact(small));
      t_large = std::min(t_large, SecondsToRedact(large));
    }
    // 4x the input: linear is ~4x; quadratic would be ~16x. Generous for a shared machine.
    EXPECT_LT(t_large, 10 * t_small + 0.05)
        << "shape \"" << shape << "\": " << t_small << " s vs " << t_large << " s";
    EXPECT_LT(t_large, 2.0) << "shape \"" << shape << "\"";
  }
}

// The throughput figure in docs/request-log.md: 1 MiB of prose with a finding every ~2 KiB.
TEST(RedactorTest, ThroughputOnOneMebibyte) {
  std::string text;
  int i = 0;
  while (text.size() < (1 << 20)) {
    text += "The quarterly report was reviewed by the committee on Tuesday and approved. ";
    if (++i % 25 == 0) text += "Contact jane.doe@example.com or 415-555-0100. ";
  }
  SecondsToRedact(text);
  const double seconds = SecondsToRedact(text);
  std::printf("redactor: 1 MiB in %.1f ms (%.0f MiB/s)\n", seconds * 1000, 1 / seconds);
  EXPECT_LT(seconds, 2.0);
}

TEST(RedactorTest, TruncateUtf8NeverSplitsASequence) {
  EXPECT_EQ(TruncateUtf8("h\xc3\xa9llo", 2), "h");
  EXPECT_EQ(TruncateUtf8("h\xc3\xa9llo", 3), "h\xc3\xa9");
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
}

}  // namespace
}  // namespace turnpike
