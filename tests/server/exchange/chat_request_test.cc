// What follows from a chat request before any upstream is asked (server/exchange/chat_request.h):
// the features it uses, in enum order; a cache key that changes with tools, tool results, images
// and the response format; and the form sent to a target that cannot serve a JSON Schema. The
// cache key's sensitivity to the plain-text fields is tested in
// tests/server/resilience/response_cache_test.cc; ChatExchange's use of these end to end in
// attempt_driver_test.cc and the integration tests.
#include "server/exchange/chat_request.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ChatRequestTest : public ::testing::Test {
 protected:
  ChatRequestTest() {
    v1::Message* m = messages_.Add();
    m->set_role(v1::ROLE_USER);
    m->set_content("hello");
    plain_.messages = &messages_;
  }

  google::protobuf::RepeatedPtrField<v1::Message> messages_;
  ChatRequest plain_;
};

TEST_F(ChatRequestTest, PlainTextUsesNoFeature) {
  EXPECT_THAT(ChatFeatures(plain_), IsEmpty());
  EXPECT_THAT(ChatFeatures(ChatRequest()), IsEmpty());  // no messages at all
  // An empty tool list is no tool.
  google::protobuf::RepeatedPtrField<v1::Tool> none;
  ChatRequest request = plain_;
  request.tools = &none;
  EXPECT_THAT(ChatFeatures(request), IsEmpty());
}

TEST_F(ChatRequestTest, FeaturesComeInEnumOrder) {
  google::protobuf::RepeatedPtrField<v1::Message> messages = messages_;
  v1::Message* result = messages.Add();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id("call_1");
  messages.Mutable(0)->add_parts()->mutable_image();
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  tools.Add()->set_name("lookup");
  ChatRequest request;
  request.messages = &messages;
  request.tools = &tools;
  request.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  EXPECT_THAT(ChatFeatures(request),
              ElementsAre(v1::REQUEST_FEATURE_TOOLS, v1::REQUEST_FEATURE_TOOL_RESULTS,
                          v1::REQUEST_FEATURE_IMAGES, v1::REQUEST_FEATURE_JSON_SCHEMA));

  // A conversation carrying an assistant's tool call uses tool results too.
  google::protobuf::RepeatedPtrField<v1::Message> called = messages_;
  v1::Message* assistant = called.Add();
  assistant->set_role(v1::ROLE_ASSISTANT);
  assistant->add_tool_calls()->set_name("lookup");
  ChatRequest json = plain_;
  json.messages = &called;
  json.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT);
  EXPECT_THAT(ChatFeatures(json),
              ElementsAre(v1::REQUEST_FEATURE_TOOL_RESULTS, v1::REQUEST_FEATURE_JSON_OBJECT));
}

TEST_F(ChatRequestTest, CacheKeyChangesWithToolsPartsAndResponseFormat) {
  const std::string key = ChatCacheKey("chat", plain_, 100);
  EXPECT_EQ(key.size(), 32u);  // a SHA-256

  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  tools.Add()->set_name("lookup");
  ChatRequest with_tools = plain_;
  with_tools.tools = &tools;
  const std::string tools_key = ChatCacheKey("chat", with_tools, 100);
  EXPECT_NE(tools_key, key);
  with_tools.tool_choice.set_tool_name("lookup");
  EXPECT_NE(ChatCacheKey("chat", with_tools, 100), tools_key);
  // The tool choice counts only alongside tools.
  ChatRequest choice_only = plain_;
  choice_only.tool_choice.set_tool_name("lookup");
  EXPECT_EQ(ChatCacheKey("chat", choice_only, 100), key);

  ChatRequest json = plain_;
  json.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT);
  EXPECT_NE(ChatCacheKey("chat", json, 100), key);

  google::protobuf::RepeatedPtrField<v1::Message> with_image = messages_;
  with_image.Mutable(0)->add_parts()->mutable_image();
  ChatRequest image = plain_;
  image.messages = &with_image;
  EXPECT_NE(ChatCacheKey("chat", image, 100), key);
}

TEST_F(ChatRequestTest, TargetWithoutJsonSchemaGetsTheOtherForm) {
  ProviderEntry provider;
  TargetEntry target;
  target.provider = &provider;

  // No other form: every target gets the request itself.
  EXPECT_EQ(&ChatFormFor(plain_, target), &plain_);

  ChatRequest schema = plain_;
  schema.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  auto forced_tool = std::make_shared<ChatRequest>(plain_);
  schema.without_json_schema = forced_tool;
  EXPECT_EQ(&ChatFormFor(schema, target), forced_tool.get());
  target.features.json_schema = true;
  EXPECT_EQ(&ChatFormFor(schema, target), &schema);
}

}  // namespace
}  // namespace turnpike
