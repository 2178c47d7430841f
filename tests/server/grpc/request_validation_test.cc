#include "server/grpc/request_validation.h"

#include <cmath>
#include <functional>

#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FieldOf(const absl::Status& status) {
  auto payload = status.GetPayload("type.googleapis.com/google.rpc.BadRequest");
  if (!payload.has_value()) return "<no BadRequest>";
  google::rpc::BadRequest bad;
  bad.ParseFromString(std::string(*payload));
  return bad.field_violations_size() > 0 ? bad.field_violations(0).field() : "<empty>";
}

v1::StreamCompletionRequest Valid() {
  v1::StreamCompletionRequest r;
  r.set_capability("chat");
  auto* m = r.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content("hi");
  return r;
}

TEST(RequestValidationTest, AcceptsAValidRequest) {
  v1::StreamCompletionRequest parsed;
  ASSERT_TRUE(ParseCompletionRequest(Buffer(Valid().SerializeAsString()), &parsed).ok());
  EXPECT_EQ(parsed.capability(), "chat");
  EXPECT_TRUE(ValidateCompletionRequest(parsed).ok());
}

TEST(RequestValidationTest, InvalidUtf8NamesTheField) {
  v1::StreamCompletionRequest r = Valid();
  r.add_stop("ok");
  std::string wire = r.SerializeAsString();
  // Corrupt the stop sequence "ok" in place: same length, invalid UTF-8.
  const size_t pos = wire.rfind("ok");
  wire[pos] = '\xc3';
  wire[pos + 1] = '\x28';
  v1::StreamCompletionRequest parsed;
  absl::Status status = ParseCompletionRequest(Buffer(wire), &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "stop[0]");
}

TEST(RequestValidationTest, InvalidUtf8InToolFieldsNamesTheField) {
  for (const char* field : {"tools[0].parameters_json", "response_format.json_schema"}) {
    v1::StreamCompletionRequest r = Valid();
    r.add_tools()->set_name("t");
    r.mutable_tools(0)->set_parameters_json(field[0] == 't' ? "{zz}" : "{}");
    r.mutable_response_format()->set_json_schema(field[0] == 'r' ? "{zz}" : "{}");
    std::string wire = r.SerializeAsString();
    const size_t pos = wire.find("{zz}");
    wire[pos + 1] = '\xc3';
    wire[pos + 2] = '\x28';
    v1::StreamCompletionRequest parsed;
    absl::Status status = ParseCompletionRequest(Buffer(wire), &parsed);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(FieldOf(status), field);
  }
}

TEST(RequestValidationTest, GarbageIsNotAMessage) {
  v1::StreamCompletionRequest parsed;
  absl::Status status = ParseCompletionRequest(Buffer("\xff\xff\xff\xff"), &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "request");
}

struct Case {
  std::function<void(v1::StreamCompletionRequest&)> mutate;
  std::string field;
};

class InvalidRequestTest : public ::testing::TestWithParam<Case> {};

TEST_P(InvalidRequestTest, NamesTheField) {
  v1::StreamCompletionRequest r = Valid();
  GetParam().mutate(r);
  absl::Status status = ValidateCompletionRequest(r);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), GetParam().field) << status;
}

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidRequestTest,
    ::testing::Values(
        Case{[](auto& r) { r.clear_capability(); }, "capability"},
        Case{[](auto& r) { r.clear_messages(); }, "messages"},
        Case{[](auto& r) { r.mutable_messages(0)->set_role(v1::ROLE_UNSPECIFIED); },
             "messages[0].role"},
        Case{[](auto& r) { r.mutable_messages(0)->set_role(static_cast<v1::Role>(9)); },
             "messages[0].role"},
        Case{[](auto& r) { r.mutable_messages(0)->set_role(v1::ROLE_SYSTEM); }, "messages"},
        Case{[](auto& r) { r.set_max_tokens(0); }, "max_tokens"},
        Case{[](auto& r) { r.set_max_tokens(-5); }, "max_tokens"},
        Case{[](auto& r) { r.set_temperature(2.5); }, "temperature"},
        Case{[](auto& r) { r.set_temperature(std::nan("")); }, "temperature"},
        Case{[](auto& r) { r.set_top_p(-0.1); }, "top_p"},
        Case{[](auto& r) {
               for (int i = 0; i < 5; ++i) r.add_stop("x");
             },
             "stop"},
        Case{[](auto& r) { r.add_stop(""); }, "stop[0]"},
        Case{[](auto& r) { r.set_request_id(std::string(200, 'a')); }, "request_id"},
        Case{[](auto& r) { (*r.mutable_tags())[""] = "v"; }, "tags"}));

// A request that uses every new feature correctly: a tool, a call and its result, an image.
v1::StreamCompletionRequest WithTools() {
  v1::StreamCompletionRequest r = Valid();
  v1::Tool* tool = r.add_tools();
  tool->set_name("get_weather");
  tool->set_parameters_json(R"({"type":"object"})");
  v1::ImagePart* image = r.mutable_messages(0)->add_parts()->mutable_image();
  r.mutable_messages(0)->clear_content();
  image->set_data("\x89PNG");
  image->set_media_type("image/png");
  v1::Message* assistant = r.add_messages();
  assistant->set_role(v1::ROLE_ASSISTANT);
  v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id("call_1");
  call->set_name("get_weather");
  call->set_arguments_json("{}");
  v1::Message* result = r.add_messages();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id("call_1");
  result->set_content("sunny");
  r.mutable_response_format()->set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  r.mutable_response_format()->set_json_schema(R"({"type":"object"})");
  return r;
}

TEST(RequestValidationTest, AcceptsToolsImagesAndResults) {
  absl::Status status = ValidateCompletionRequest(WithTools());
  EXPECT_TRUE(status.ok()) << status;
}

class InvalidToolRequestTest : public ::testing::TestWithParam<Case> {};

TEST_P(InvalidToolRequestTest, NamesTheField) {
  v1::StreamCompletionRequest r = WithTools();
  ASSERT_TRUE(ValidateCompletionRequest(r).ok());
  GetParam().mutate(r);
  absl::Status status = ValidateCompletionRequest(r);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), GetParam().field) << status;
}

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidToolRequestTest,
    ::testing::Values(
        Case{[](auto& r) { r.mutable_tools(0)->set_parameters_json("[1]"); },
             "tools[0].parameters_json"},
        Case{[](auto& r) { r.mutable_tools(0)->set_parameters_json("{not json"); },
             "tools[0].parameters_json"},
        Case{[](auto& r) { r.mutable_tools(0)->set_name("has space"); }, "tools[0].name"},
        Case{[](auto& r) { r.add_tools()->set_name("get_weather"); }, "tools[1].name"},
        Case{[](auto& r) {
               for (int i = 0; i < 128; ++i) r.add_tools()->set_name("t" + std::to_string(i));
             },
             "tools"},
        Case{[](auto& r) { r.mutable_messages(2)->set_tool_call_id("call_unknown"); },
             "messages[2].tool_call_id"},
        Case{[](auto& r) { r.mutable_messages(2)->clear_tool_call_id(); },
             "messages[2].tool_call_id"},
        Case{[](auto& r) { r.mutable_messages(1)->mutable_tool_calls(0)->set_arguments_json("1"); },
             "messages[1].tool_calls[0].arguments_json"},
        Case{[](auto& r) {
               r.mutable_messages(0)->mutable_parts(0)->mutable_image()->set_data(
                   std::string((5 << 20) + 1, 'x'));
             },
             "messages[0].parts[0].image.data"},
        Case{[](auto& r) {
               r.mutable_messages(0)->mutable_parts(0)->mutable_image()->set_media_type(
                   "image/tiff");
             },
             "messages[0].parts[0].image.media_type"},
        Case{[](auto& r) {
               r.mutable_messages(0)->mutable_parts(0)->mutable_image()->set_url("ftp://x/y.png");
             },
             "messages[0].parts[0].image.url"},
        Case{[](auto& r) { r.mutable_messages(0)->set_content("and text"); }, "messages[0].parts"},
        Case{[](auto& r) { r.mutable_response_format()->set_json_schema("\"string\""); },
             "response_format.json_schema"},
        Case{[](auto& r) {
               r.mutable_tool_choice()->set_mode(v1::TOOL_CHOICE_MODE_TOOL);
               r.mutable_tool_choice()->set_tool_name("other");
             },
             "tool_choice.tool_name"}));

TEST(RequestValidationTest, RequestIdsAreUniqueAndPrefixed) {
  const std::string a = NewRequestId();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a.substr(0, 4), "req_");
  EXPECT_NE(a, NewRequestId());
}

}  // namespace
}  // namespace turnpike
