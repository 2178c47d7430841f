#include "common/json_writer.h"

#include <cmath>

#include "gtest/gtest.h"
#include "simdjson.h"

namespace turnpike {
namespace {

TEST(JsonWriterTest, WritesNestedCompactJson) {
  JsonWriter w;
  w.BeginObject().Key("model").String("gpt").Key("n").Int(-3).Key("t").Double(0.7);
  w.Key("stream").Bool(true).Key("none").Null().Key("list").BeginArray().Int(1).Int(2).EndArray();
  w.Key("obj").BeginObject().EndObject().EndObject();
  EXPECT_EQ(w.str(),
            R"({"model":"gpt","n":-3,"t":0.7,"stream":true,"none":null,"list":[1,2],"obj":{}})");
}

TEST(JsonWriterTest, EscapesEverythingJsonRequiresAndRoundTrips) {
  const std::string nasty = std::string("quote\" back\\ nl\n cr\r tab\t nul") + '\0' +
                            "\x01 bell\x07 unicode é 😀 fake data: [DONE]\n\n";
  JsonWriter w;
  w.BeginObject().Key("k\"").String(nasty).EndObject();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(w.str()).get(doc), simdjson::SUCCESS) << w.str();
  std::string_view value;
  ASSERT_EQ(doc["k\""].get(value), simdjson::SUCCESS);
  EXPECT_EQ(value, nasty);
}

TEST(JsonWriterTest, DoublesRoundTripAndNonFiniteBecomesNull) {
  for (double d : {0.1, 1.0, 2.0 / 3.0, 1e-300, 123456789.125}) {
    JsonWriter w;
    w.Double(d);
    EXPECT_EQ(std::stod(w.str()), d) << w.str();
  }
  JsonWriter w;
  w.BeginArray().Double(std::nan("")).EndArray();
  EXPECT_EQ(w.str(), "[null]");
}

}  // namespace
}  // namespace turnpike

namespace turnpike {
namespace {

// A provider may send anything: every byte string must come out as valid JSON (simdjson validates
// UTF-8), valid sequences unchanged and each invalid byte as U+FFFD.
TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacters) {
  const struct {
    std::string in, want;
  } cases[] = {
      {"ok \xc3\xa9 \xf0\x9f\x98\x80", "ok \xc3\xa9 \xf0\x9f\x98\x80"},
      {"lone \xff byte", "lone \xEF\xBF\xBD byte"},
      {"cut \xe2\x82", "cut \xEF\xBF\xBD\xEF\xBF\xBD"},
      {"overlong \xc0\xaf", "overlong \xEF\xBF\xBD\xEF\xBF\xBD"},
      {"surrogate \xed\xa0\x80", "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"too big \xf4\x90\x80\x80", "too big \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
  };
  for (const auto& c : cases) {
    JsonWriter w;
    w.String(c.in);
    simdjson::dom::parser parser;
    std::string_view value;
    ASSERT_EQ(parser.parse(w.str()).get(value), simdjson::SUCCESS) << c.in;
    EXPECT_EQ(value, c.want);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(255 - i));
  JsonWriter w;
  w.String(all);
  simdjson::dom::parser parser;
  std::string_view value;
  EXPECT_EQ(parser.parse(w.str()).get(value), simdjson::SUCCESS);
}

}  // namespace
}  // namespace turnpike
