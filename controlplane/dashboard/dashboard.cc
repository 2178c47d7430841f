#include "controlplane/dashboard/dashboard.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/server_context.h"

namespace turnpike::controlplane {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr std::string_view kApiPrefix = "/dashboard/api/";

// The page runs no inline script or style and loads nothing from elsewhere.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' "
    "data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// Abseil's string_view is its own type in this toolchain, not an alias of std::string_view.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpReply WithApiHeaders(HttpReply reply) {
  reply.content_type = "application/json; charset=utf-8";
  reply.headers.emplace_back("Cache-Control", "no-store");
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return reply;
}

HttpReply ErrorReply(const absl::Status& s) {
  HttpReply reply;
  reply.status = HttpStatus(s.code());
  reply.body = absl::StrCat("{\"code\":", JsonString(absl::StatusCodeToString(s.code())),
                            ",\"message\":", JsonString(s.message()), "}\n");
  if (reply.status == 401) reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  return WithApiHeaders(std::move(reply));
}

// The query string as the request message: each parameter names a field (proto or JSON name);
// a repeated field takes the parameter once per element. Values are read as proto3 JSON reads
// strings (numbers, enum names, RFC 3339 timestamps), so the parser checks them.
absl::Status QueryToMessage(const std::vector<std::pair<std::string, std::string>>& query,
                            Message& message) {
  const Descriptor* d = message.GetDescriptor();
  std::map<const FieldDescriptor*, std::vector<std::string>> values;
  for (const auto& [name, value] : query) {
    const FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr) f = d->FindFieldByCamelcaseName(name);
    if (f == nullptr || (f->type() == FieldDescriptor::TYPE_MESSAGE &&
                         f->message_type()->full_name() != "google.protobuf.Timestamp")) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", name, "\" is not a parameter of ", d->full_name()));
    }
    if (!f->is_repeated() && !values[f].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is given more than once"));
    }
    const bool raw =
        f->type() == FieldDescriptor::TYPE_BOOL && (value == "true" || value == "false");
    values[f].push_back(raw ? value : JsonString(value));
  }
  std::string json = "{";
  for (const auto& [f, list] : values) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, JsonString(f->name()), ":");
    if (f->is_repeated()) {
      json += "[";
      for (size_t i = 0; i < list.size(); ++i) absl::StrAppend(&json, i ? "," : "", list[i]);
      json += "]";
    } else {
      json += list.front();
    }
  }
  json += "}";
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto s = google::protobuf::util::JsonStringToMessage(json, &message, options); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad parameter for ", d->full_name(), ": ", std::string(s.message())));
  }
  return absl::OkStatus();
}

// One transcoded call: authorize as the gRPC method, parse, call its implementation, print.
template <typename Service, typename Request, typename Response>
HttpReply Transcode(const HttpGet& get, Authenticator& authenticator, std::string_view method,
                    Service& service,
                    grpc::Status (Service::*call)(grpc::ServerContext*, const Request*,
                                                  Response*)) {
  if (absl::Status s = authenticator.Authorize(method, get.authorization).status(); !s.ok()) {
    return ErrorReply(s);
  }
  Request request;
  if (absl::Status s = QueryToMessage(get.query, request); !s.ok()) return ErrorReply(s);
  Response response;
  grpc::ServerContext context;
  if (grpc::Status s = (service.*call)(&context, &request, &response); !s.ok()) {
    return ErrorReply(
        absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message()));
  }
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // a zero is shown as 0, not left out
  HttpReply reply;
  if (auto s = google::protobuf::util::MessageToJsonString(response, &reply.body, options);
      !s.ok()) {
    return ErrorReply(absl::InternalError(std::string(s.message())));
  }
  return WithApiHeaders(std::move(reply));
}

std::string_view ContentType(std::string_view name) {
  if (absl::EndsWith(AV(name), ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(AV(name), ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(AV(name), ".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace

std::optional<HttpReply> Dashboard::Handle(const HttpGet& get) const {
  const std::string_view path = get.path;
  if (absl::StartsWith(AV(path), AV(kApiPrefix))) {
    const std::string_view endpoint = path.substr(kApiPrefix.size());
    Authenticator& auth = services_.authenticator;
    if (endpoint == "budgets") {
      return Transcode(get, auth, "/turnpike.budget.v1.BudgetService/ListBudgets",
                       services_.budgets, &budget::v1::BudgetService::Service::ListBudgets);
    }
    if (endpoint == "spend") {
      return Transcode(get, auth, "/turnpike.usage.v1.UsageService/QuerySpend", services_.usage,
                       &usage::v1::UsageService::Service::QuerySpend);
    }
    if (endpoint == "alerts") {
      return Transcode(get, auth, "/turnpike.alert.v1.AlertService/ListAlerts", services_.alerts,
                       &alert::v1::AlertService::Service::ListAlerts);
    }
    if (endpoint == "dataplanes") {
      return Transcode(get, auth, "/turnpike.admin.v1.AdminService/ListDataPlanes", services_.admin,
                       &admin::v1::AdminService::Service::ListDataPlanes);
    }
    return ErrorReply(absl::NotFoundError(absl::StrCat("no endpoint ", AV(path))));
  }
  std::string_view name;
  if (path == "/dashboard" || path == "/dashboard/") {
    name = "index.html";
  } else if (absl::StartsWith(AV(path), "/dashboard/")) {
    name = path.substr(std::string_view("/dashboard/").size());
  } else {
    return std::nullopt;
  }
  for (const DashboardFile& file : EmbeddedDashboardFiles()) {
    if (file.name != name) continue;
    HttpReply reply;
    reply.content_type = std::string(ContentType(name));
    reply.body = std::string(file.body);
    reply.headers = {{"Content-Security-Policy", kContentSecurityPolicy},
                     {"X-Content-Type-Options", "nosniff"},
                     {"Referrer-Policy", "no-referrer"},
                     {"Cache-Control", "no-cache"}};
    return reply;
  }
  return std::nullopt;
}

}  // namespace turnpike::controlplane
