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
