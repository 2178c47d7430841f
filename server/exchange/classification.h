// Classification as a completion (docs/classification.md): turns a ClassifyRequest into the chat
// request the attempt driver serves (a system message naming the labels, the caller's text, and
// a JSON Schema whose enum is the label set; or, for a target without JSON Schema output, the same
// schema as a forced tool call), and reads the model's answer back into labels, refusing any
// answer outside the set. No I/O; stateless; thread-safe.
#ifndef TURNPIKE_SERVER_EXCHANGE_CLASSIFICATION_H_
#define TURNPIKE_SERVER_EXCHANGE_CLASSIFICATION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/exchange/chat_exchange.h"
#include "server/providers/provider_adapter.h"
#include "server/resilience/failure_kind.h"
#include "turnpike/v1/classification.pb.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

inline constexpr int kMaxClassifyLabels = 256;
inline constexpr size_t kMaxLabelNameBytes = 128;
inline constexpr size_t kMaxLabelDescriptionBytes = 1024;
// The forced tool's name, for targets without JSON Schema output.
inline constexpr char kClassifyToolName[] = "classify";
// The reason code (google.rpc.ErrorInfo) of an answer outside the labels: the attempt driver
// retries it once (FailureKind::kBadAnswer); twice ends the request (docs/errors.md).
inline constexpr const char* kAnswerNotALabelReason = kBadAnswerReason;

// INVALID_ARGUMENT naming the field: no text and no parts, no labels, more than
// kMaxClassifyLabels, an empty, too long or repeated label name, a too long description.
absl::Status ValidateClassifyLabels(const v1::ClassifyRequest& request);

// A classification's request as the chat protocol serves it. Owns what the ChatRequests point
// to; must outlive the exchange.
struct ClassificationPlan {
  // The completion request (capability, caller fields, messages, the JSON Schema response
  // format): what the completion checks validate and admission sizes.
  v1::StreamCompletionRequest completion;
  // The forced tool of the tool-call form.
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
};

// Builds the plan. `request` has passed ValidateClassifyLabels.
std::unique_ptr<ClassificationPlan> PlanClassification(const v1::ClassifyRequest& request);

// The chat request of `plan`: the JSON Schema form, with the tool-call form for targets without
// JSON Schema output, and a check that refuses replies outside `request`'s labels.
// `request` and `plan` must outlive the exchange.
ChatRequest ClassificationChat(const v1::ClassifyRequest& request, const ClassificationPlan& plan);

// The labels a reply chose, in the order of the request's labels. UNAVAILABLE with reason
// kAnswerNotALabelReason when the reply is not {"labels": [...]} of labels of the request (none,
// an unknown or repeated one, or more than one without multi_label). Reads the forced tool's
// arguments when the reply called it, else the text.
absl::StatusOr<std::vector<std::string>> ReadLabels(const v1::ClassifyRequest& request,
                                                    const ChatResult& reply);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_CLASSIFICATION_H_
