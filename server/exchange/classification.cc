#include "server/exchange/classification.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "simdjson.h"

namespace turnpike {
namespace {

// {"labels": [one or more of the label names]}, at most one without multi_label.
std::string LabelSchema(const v1::ClassifyRequest& request) {
  JsonWriter w;
  w.BeginObject();
  w.Key("type").String("object");
  w.Key("properties").BeginObject();
  w.Key("labels").BeginObject();
  w.Key("type").String("array");
  w.Key("items").BeginObject();
  w.Key("type").String("string");
  w.Key("enum").BeginArray();
  for (const v1::Label& label : request.labels()) w.String(label.name());
  w.EndArray();
  w.EndObject();
  w.Key("minItems").Int(1);
  if (!request.multi_label()) w.Key("maxItems").Int(1);
  w.EndObject();
  w.EndObject();
  w.Key("required").BeginArray().String("labels").EndArray();
  w.Key("additionalProperties").Bool(false);
  w.EndObject();
  return w.Release();
}

std::string Instructions(const v1::ClassifyRequest& request) {
  std::string out;
  if (!request.instructions().empty()) absl::StrAppend(&out, request.instructions(), "\n\n");
  absl::StrAppend(
      &out, "Classify the user's message. Choose ",
      request.multi_label() ? "every label that applies (at least one)" : "exactly one label",
      " from this list, and answer only with JSON of the form {\"labels\": [...]}, "
      "without explanation:\n");
  for (const v1::Label& label : request.labels()) {
    absl::StrAppend(&out, "- ", label.name());
    if (!label.description().empty()) absl::StrAppend(&out, ": ", label.description());
    out += '\n';
  }
  return out;
}

absl::Status NotALabel(const char* why) {
  // UNAVAILABLE: the same call may well be answered with a label next time (docs/errors.md).
  absl::Status status = absl::UnavailableError(
      absl::StrCat("the model's answer is not a label of the request: ", why));
  AttachReason(status, kAnswerNotALabelReason);
  return status;
}

}  // namespace

absl::Status ValidateClassifyLabels(const v1::ClassifyRequest& request) {
  if (request.text().empty() && request.parts().empty()) {
    return InvalidFieldError("text", "is required (or parts)");
  }
  if (!request.text().empty() && !request.parts().empty()) {
    return InvalidFieldError("parts", "set text or parts, not both");
  }
  if (request.labels().empty())
    return InvalidFieldError("labels", "at least one label is required");
  if (request.labels_size() > kMaxClassifyLabels) {
    return InvalidFieldError("labels", absl::StrCat("at most ", kMaxClassifyLabels, " labels"));
  }
  std::set<std::string> seen;
  for (int i = 0; i < request.labels_size(); ++i) {
    const v1::Label& label = request.labels(i);
    const std::string at = absl::StrCat("labels[", i, "]");
    if (label.name().empty()) return InvalidFieldError(at + ".name", "is required");
    if (label.name().size() > kMaxLabelNameBytes) {
      return InvalidFieldError(at + ".name",
                               absl::StrCat("must be at most ", kMaxLabelNameBytes, " bytes"));
    }
    if (!seen.insert(label.name()).second) {
      return InvalidFieldError(at + ".name", absl::StrCat("repeats label \"", label.name(), "\""));
    }
    if (label.description().size() > kMaxLabelDescriptionBytes) {
      return InvalidFieldError(
          at + ".description",
          absl::StrCat("must be at most ", kMaxLabelDescriptionBytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<ClassificationPlan> PlanClassification(const v1::ClassifyRequest& request) {
  auto plan = std::make_unique<ClassificationPlan>();
  v1::StreamCompletionRequest& c = plan->completion;
  c.set_capability(request.capability());
  c.set_user(request.user());
  *c.mutable_tags() = request.tags();
  c.set_request_id(request.request_id());
  c.set_latency_class(request.latency_class());
  c.set_temperature(0);
  v1::Message* system = c.add_messages();
  system->set_role(v1::ROLE_SYSTEM);
  system->set_content(Instructions(request));
  v1::Message* user = c.add_messages();
  user->set_role(v1::ROLE_USER);
  user->set_content(request.text());
  *user->mutable_parts() = request.parts();
  const std::string schema = LabelSchema(request);
  v1::ResponseFormat* format = c.mutable_response_format();
  format->set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  format->set_json_schema(schema);
  format->set_schema_name("classification");
  format->set_strict(true);
  v1::Tool* tool = plan->tools.Add();
  tool->set_name(kClassifyToolName);
  tool->set_description("Report the label(s) of the user's message.");
  tool->set_parameters_json(schema);
  return plan;
}

ChatRequest ClassificationChat(const v1::ClassifyRequest& request, const ClassificationPlan& plan) {
  ChatRequest chat;
  chat.messages = &plan.completion.messages();
  chat.temperature = plan.completion.temperature();
  chat.response_format = plan.completion.response_format();
  auto with_tool = std::make_shared<ChatRequest>();
  with_tool->messages = chat.messages;
  with_tool->temperature = chat.temperature;
  with_tool->tools = &plan.tools;
  with_tool->tool_choice.set_mode(v1::TOOL_CHOICE_MODE_TOOL);
  with_tool->tool_choice.set_tool_name(kClassifyToolName);
  chat.without_json_schema = std::move(with_tool);
  const v1::ClassifyRequest* r = &request;
  chat.check_reply = [r](const ChatResult& reply) { return ReadLabels(*r, reply).status(); };
  return chat;
}

absl::StatusOr<std::vector<std::string>> ReadLabels(const v1::ClassifyRequest& request,
                                                    const ChatResult& reply) {
  std::string json = reply.text;
  for (const v1::ToolCall& call : reply.tool_calls) {
    if (call.name() == kClassifyToolName) {
      json = call.arguments_json();
      break;
    }
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) return NotALabel("not JSON");
  simdjson::dom::array chosen;
  if (root["labels"].get_array().get(chosen) != simdjson::SUCCESS) {
    return NotALabel("no \"labels\" array");
  }
  std::set<std::string> picked;
  for (simdjson::dom::element item : chosen) {
    std::string_view name;
    if (item.get_string().get(name) != simdjson::SUCCESS)
      return NotALabel("a label is not a string");
    bool known = false;
    for (const v1::Label& label : request.labels()) known |= label.name() == name;
    // The model's text is not echoed: it may carry anything (docs/classification.md).
    if (!known) return NotALabel("an unknown label");
    if (!picked.insert(std::string(name)).second) return NotALabel("a label repeated");
  }
  if (picked.empty()) return NotALabel("no label");
  if (!request.multi_label() && picked.size() > 1) return NotALabel("several labels");
  std::vector<std::string> out;
  for (const v1::Label& label : request.labels()) {
    if (picked.count(label.name()) > 0) out.push_back(label.name());
  }
  return out;
}

}  // namespace turnpike
