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

TEST(RequestValidationTest, RequestIdsAreUniqueAndPrefixed) {
  const std::string a = NewRequestId();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a.substr(0, 4), "req_");
  EXPECT_NE(a, NewRequestId());
}

}  // namespace
}  // namespace turnpike
