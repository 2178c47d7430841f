// SseParser against the test vectors of docs/providers.md §7.3: every vector is fed whole, as
// 1-byte reads (with empty reads in between) and split in two at every byte position, and each way
// must produce the same events, the same status and the same Finish() result.
#include "server/providers/sse_parser.h"

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace turnpike {
namespace {

struct Event {
  std::string type;
  std::string data;
  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{" << e.type << ": \"" << e.data << "\"}";
}

// Everything observable about one run of the parser.
struct Outcome {
  std::vector<Event> events;
  absl::StatusCode code = absl::StatusCode::kOk;
  bool dropped = false;  // Finish() result
  std::string last_event_id;
  long long retry_ms = -1;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "events=[";
  for (const Event& e : o.events) {
    os << (e.data.size() > 80 ? Event{e.type, e.data.substr(0, 80) + "..."} : e) << " ";
  }
  return os << "] code=" << absl::StatusCodeToString(o.code) << " dropped=" << o.dropped << " id=\""
            << o.last_event_id << "\" retry=" << o.retry_ms;
}

Outcome Parse(const std::vector<std::string_view>& reads, SseParser::Options options = {}) {
  SseParser parser(options);
  Outcome out;
  for (std::string_view read : reads) {
    absl::Status status = parser.Feed(read, [&](std::string_view type, std::string_view data) {
      out.events.push_back(Event{std::string(type), std::string(data)});
      // The promised padding must be readable: an AddressSanitizer build fails here if not.
      volatile char last_padding_byte = data.data()[data.size() + SseParser::kPadding - 1];
      (void)last_padding_byte;
      return absl::OkStatus();
    });
    if (!status.ok()) {
      out.code = status.code();
      return out;  // the stream is abandoned after an error
    }
  }
  out.dropped = parser.Finish();
  out.last_event_id = parser.last_event_id();
  out.retry_ms = parser.retry_ms();
  return out;
}

// Feeds `input` whole, byte by byte, and split in two at every position (or at every `stride`-th
// position for huge inputs), expecting `expected` each time.
void ExpectAllSplits(std::string_view input, const Outcome& expected,
                     SseParser::Options options = {}, size_t stride = 1) {
  EXPECT_EQ(Parse({input}, options), expected) << "whole buffer";
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); ++i) {
    bytes.push_back(input.substr(i, 1));
    bytes.push_back(std::string_view());  // empty reads must change nothing
  }
  EXPECT_EQ(Parse(bytes, options), expected) << "1-byte reads";
  for (size_t split = 0; split <= input.size(); split += stride) {
    const Outcome got = Parse({input.substr(0, split), input.substr(split)}, options);
    EXPECT_EQ(got, expected) << "split at " << split;
    if (got != expected) return;  // one failing position is enough output
  }
}

Outcome Events(std::vector<Event> events, bool dropped = false) {
  Outcome o;
  o.events = std::move(events);
  o.dropped = dropped;
  return o;
}

Event Msg(std::string data) { return Event{"message", std::move(data)}; }

TEST(SseParserTest, LfEndings) {
  ExpectAllSplits("data: a\n\ndata: b\n\n", Events({Msg("a"), Msg("b")}));
}

TEST(SseParserTest, CrlfEndings) {
  ExpectAllSplits("data: a\r\n\r\ndata: b\r\n\r\n", Events({Msg("a"), Msg("b")}));
}

TEST(SseParserTest, CrEndings) {
  ExpectAllSplits("data: a\r\rdata: b\r\r", Events({Msg("a"), Msg("b")}));
}

TEST(SseParserTest, MixedEndings) {
  ExpectAllSplits("data: a\r\n\ndata: b\r\rdata: c\n\r\n", Events({Msg("a"), Msg("b"), Msg("c")}));
}

TEST(SseParserTest, CrLfSplitAcrossReadsIsOneLineEnd) {
  // If the CR|LF pair were read as two line ends, the blank line would dispatch "a" alone.
  constexpr std::string_view kInput = "data: a\r\ndata: b\r\n\r\n";
  const Outcome expected = Events({Msg("a\nb")});
  EXPECT_EQ(Parse({"data: a\r", "\ndata: b\r", "\n\r", "\n"}), expected);
  EXPECT_EQ(Parse({"data: a\r", "", "\ndata: b\r\n\r", "", "\n"}), expected);
  ExpectAllSplits(kInput, expected);
}

TEST(SseParserTest, MultiByteUtf8SplitMidCodePoint) {
  ExpectAllSplits("data: известни\n\ndata: 😀 ok\n\n", Events({Msg("известни"), Msg("😀 ok")}));
}

TEST(SseParserTest, LeadingBomIsStripped) {
  ExpectAllSplits(
      "\xEF\xBB\xBF"
      "data: a\n\n",
      Events({Msg("a")}));
}

TEST(SseParserTest, OnlyOneBomIsStripped) {
  // The second BOM belongs to the field name "\xEF\xBB\xBFdata", which is unknown and ignored.
  ExpectAllSplits(
      "\xEF\xBB\xBF\xEF\xBB\xBF"
      "data: a\n\ndata: b\n\n",
      Events({Msg("b")}));
}

TEST(SseParserTest, PartialBomIsData) {
  ExpectAllSplits(
      "\xEF\xBB"
      "data: a\n\ndata: b\n\n",
      Events({Msg("b")}));
  ExpectAllSplits("\xEF", Events({}, /*dropped=*/true));
}

TEST(SseParserTest, BomOnlyAtStreamStart) {
  ExpectAllSplits(
      "data: a\n\n\xEF\xBB\xBF"
      "data: b\n\n",
      Events({Msg("a")}));
}

TEST(SseParserTest, DataWithoutSpace) {
  ExpectAllSplits("data:a\n\ndata:{\"k\":1}\n\n", Events({Msg("a"), Msg("{\"k\":1}")}));
}

TEST(SseParserTest, TwoSpacesAfterColonKeepOne) {
  ExpectAllSplits("data:  a\n\n", Events({Msg(" a")}));
}

TEST(SseParserTest, MultiLineDataJoinedWithLf) {
  ExpectAllSplits("data: {\ndata: \"k\": 1\ndata: }\n\n", Events({Msg("{\n\"k\": 1\n}")}));
}

TEST(SseParserTest, EmptyDataLineDispatchesEmptyEvent) {
  ExpectAllSplits("data\n\ndata:\n\n", Events({Msg(""), Msg("")}));
  ExpectAllSplits("data:\ndata:\n\n", Events({Msg("\n")}));
}

TEST(SseParserTest, CommentsBetweenEvents) {
  ExpectAllSplits(
      ": ping - 2024-02-23 06:52:12.876102\n\ndata: a\n\n:\n\n: OPENROUTER "
      "PROCESSING\n\ndata: b\n: mid-event comment\ndata: c\n\n",
      Events({Msg("a"), Msg("b\nc")}));
}

TEST(SseParserTest, EventWithoutDataDoesNotDispatch) {
  // The event type is reset by the blank line, so "a" is a plain message.
  ExpectAllSplits("event: foo\n\ndata: a\n\n", Events({Msg("a")}));
  ExpectAllSplits("event: ping\ndata: {\"type\": \"ping\"}\n\n",
                  Events({Event{"ping", "{\"type\": \"ping\"}"}}));
}

TEST(SseParserTest, UnknownAndMiscasedFieldsIgnored) {
  // llama.cpp's old `error:` field vanishes, as in every compliant parser.
  ExpectAllSplits("error: {\"code\":400}\n\nData: x\n\nDATA: y\ndata: z\n\n", Events({Msg("z")}));
}

TEST(SseParserTest, FinalEventWithoutBlankLineIsDropped) {
  ExpectAllSplits("data: a\n\ndata: b", Events({Msg("a")}, /*dropped=*/true));
  ExpectAllSplits("data: a\n\ndata: b\n", Events({Msg("a")}, /*dropped=*/true));
  ExpectAllSplits("data: a\n\nevent: x\n", Events({Msg("a")}, /*dropped=*/true));
  ExpectAllSplits("data: a\n\n", Events({Msg("a")}, /*dropped=*/false));
}

TEST(SseParserTest, IdWithNulIsIgnored) {
  constexpr char kInput[] = "id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n";
  const std::string input(kInput, sizeof(kInput) - 1);
  ASSERT_EQ(input.find('\0'), 20u);
  Outcome expected = Events({Msg("a"), Msg("b")});
  expected.last_event_id = "1";
  ExpectAllSplits(input, expected);
}

TEST(SseParserTest, RetryMustBeDigits) {
  Outcome expected = Events({Msg("a"), Msg("b")});
  expected.retry_ms = 1500;
  ExpectAllSplits("retry: 1500\ndata: a\n\nretry:abc\ndata: b\n\nretry: 12x\n\n", expected);
}

TEST(SseParserTest, HugeLine) {
  const std::string payload(1536 * 1024, 'x');
  const std::string input = "data: " + payload + "\n\ndata: tail\n\n";
  // Every position of a 1.5 MiB input would take minutes; every 4099th (a prime, so splits land
  // at all offsets modulo small powers of two) plus the interesting edges.
  ExpectAllSplits(input, Events({Msg(payload), Msg("tail")}), {}, /*stride=*/4099);
  for (size_t split : {size_t{5}, size_t{6}, input.size() - 14, input.size() - 13}) {
    EXPECT_EQ(Parse({input.substr(0, split), input.substr(split)}),
              Events({Msg(payload), Msg("tail")}))
        << split;
  }
}

TEST(SseParserTest, LineLimit) {
  SseParser::Options options;
  options.max_line_bytes = 16;
  // A line of exactly 16 bytes is fine; 17 is not, however it is split (the limit must not
  // depend on where the reads fall).
  ExpectAllSplits("data: 0123456789\n\n", Events({Msg("0123456789")}), options);
  Outcome exhausted;
  exhausted.code = absl::StatusCode::kResourceExhausted;
  ExpectAllSplits("data: 0123456789a\n\n", exhausted, options);
  ExpectAllSplits("data: 0123456789a", exhausted, options);  // also without a line end
}

TEST(SseParserTest, EventLimit) {
  SseParser::Options options;
  options.max_event_bytes = 16;
  // The data buffer holds "0123456\n" + "0123456\n" = 16 bytes: fine.
  ExpectAllSplits("data: 0123456\ndata: 0123456\n\n", Events({Msg("0123456\n0123456")}), options);
  Outcome exhausted;
  exhausted.code = absl::StatusCode::kResourceExhausted;
  ExpectAllSplits("data: 01234567\ndata: 0123456\n\n", exhausted, options);
}

TEST(SseParserTest, CallbackErrorStopsParsing) {
  SseParser parser;
  int calls = 0;
  absl::Status status =
      parser.Feed("data: a\n\ndata: b\n\n", [&](std::string_view, std::string_view) {
        ++calls;
        return absl::CancelledError("stop");
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace turnpike
