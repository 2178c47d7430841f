#include "controlplane/admin_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::admin::v1;

void Log(const char* method, const std::string& actor, const std::string& name,
         const absl::Status& s) {
  if (s.ok()) {
    spdlog::info("admin: {} {} by {}", method, name, actor);
  } else if (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss ||
             s.code() == absl::StatusCode::kUnavailable) {
    spdlog::error("admin: {} {} by {} failed: {}", method, name, actor, s.ToString());
  } else {
    spdlog::info("admin: {} {} by {} rejected: {} {}", method, name, actor,
                 absl::StatusCodeToString(s.code()), std::string(s.message()));
  }
}

template <class Fn>
grpc::Status Query(Fn fn) {
  absl::Status s = fn();
  if (!s.ok() &&
      (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss)) {
    spdlog::error("admin: query failed: {}", s.ToString());
  }
  return ToGrpcStatus(s);
}

template <class Page, class Items>
void FillPage(Page&& page, Items* items, std::string* next) {
  for (auto& item : page.items) *items->Add() = std::move(item);
  *next = std::move(page.next_page_token);
}

std::string PriceKey(const std::string& provider, const std::string& model) {
  return absl::StrCat(provider, "/", model);
}

}  // namespace

template <class Fn>
grpc::Status AdminServiceImpl::Mutate(grpc::ServerContext* context, const char* method,
                                      const std::string& name, Fn fn) {
  absl::StatusOr<Identity> who = authenticator_.Identify(*context);
  if (!who.ok()) return ToGrpcStatus(who.status());
  absl::Status s = fn(who->name);
  Log(method, who->name, name, s);
  return ToGrpcStatus(s);
}

// Generic resources: the same five handlers for each, differing only in names.
#define TP_GENERIC_RESOURCE(Type, field, plural, KeyExpr, ReqKeyExpr)                             \
  grpc::Status AdminServiceImpl::Create##Type(grpc::ServerContext* context,                       \
                                              const a::Create##Type##Request* request,            \
                                              a::Create##Type##Response* response) {              \
    const auto& resource = request->field();                                                      \
    return Mutate(context, "Create" #Type, KeyExpr,                                               \
                  [&](const std::string& actor) -> absl::Status {                                 \
                    TP_ASSIGN_OR_RETURN(*response->mutable_##field(),                             \
                                        admin_.CreateResource<a::Type>(resource, actor));         \
                    return absl::OkStatus();                                                      \
                  });                                                                             \
  }                                                                                               \
  grpc::Status AdminServiceImpl::Get##Type(grpc::ServerContext*,                                  \
                                           const a::Get##Type##Request* request,                  \
                                           a::Get##Type##Response* response) {                    \
    return Query([&]() -> absl::Status {                                                          \
      TP_ASSIGN_OR_RETURN(*response->mutable_##field(), admin_.GetResource<a::Type>(ReqKeyExpr)); \
      return absl::OkStatus();                                                                    \
    });                                                                                           \
  }                                                                                               \
  grpc::Status AdminServiceImpl::List##plural(grpc::ServerContext*,                               \
                                              const a::List##plural##Request* request,            \
                                              a::List##plural##Response* response) {              \
    return Query([&]() -> absl::Status {                                                          \
      TP_ASSIGN_OR_RETURN(                                                                        \
          auto page, admin_.ListResources<a::Type>(request->page_size(), request->page_token())); \
      FillPage(std::move(page), response->mutable_##field##s(),                                   \
               response->mutable_next_page_token());                                              \
      return absl::OkStatus();                                                                    \
    });                                                                                           \
  }                                                                                               \
  grpc::Status AdminServiceImpl::Update##Type(grpc::ServerContext* context,                       \
                                              const a::Update##Type##Request* request,            \
                                              a::Update##Type##Response* response) {              \
    const auto& resource = request->field();                                                      \
    return Mutate(context, "Update" #Type, KeyExpr,                                               \
                  [&](const std::string& actor) -> absl::Status {                                 \
                    TP_ASSIGN_OR_RETURN(                                                          \
                        *response->mutable_##field(),                                             \
                        admin_.UpdateResource<a::Type>(resource, request->update_mask(), actor)); \
                    return absl::OkStatus();                                                      \
                  });                                                                             \
  }                                                                                               \
  grpc::Status AdminServiceImpl::Delete##Type(grpc::ServerContext* context,                       \
                                              const a::Delete##Type##Request* request,            \
                                              a::Delete##Type##Response*) {                       \
    return Mutate(context, "Delete" #Type, ReqKeyExpr, [&](const std::string& actor) {            \
      return admin_.DeleteResource<a::Type>(ReqKeyExpr, request->revision(), actor);              \
    });                                                                                           \
  }

TP_GENERIC_RESOURCE(Provider, provider, Providers, resource.spec().name(), request->name())
TP_GENERIC_RESOURCE(Route, route, Routes, resource.spec().capability(), request->capability())
TP_GENERIC_RESOURCE(RateLimit, rate_limit, RateLimits, resource.spec().name(), request->name())
TP_GENERIC_RESOURCE(Budget, budget, Budgets, resource.spec().name(), request->name())
TP_GENERIC_RESOURCE(Caller, caller, Callers, resource.spec().name(), request->name())
TP_GENERIC_RESOURCE(Price, price, Prices,
                    PriceKey(resource.spec().provider(), resource.spec().model()),
                    PriceKey(request->provider(), request->model()))
#undef TP_GENERIC_RESOURCE

grpc::Status AdminServiceImpl::CreateCredential(grpc::ServerContext* context,
                                                const a::CreateCredentialRequest* request,
                                                a::CreateCredentialResponse* response) {
  return Mutate(context, "CreateCredential", request->credential().name(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_credential(),
                                      admin_.CreateCredential(*request, actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::GetCredential(grpc::ServerContext*,
                                             const a::GetCredentialRequest* request,
                                             a::GetCredentialResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(*response->mutable_credential(), admin_.GetCredential(request->name()));
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::ListCredentials(grpc::ServerContext*,
                                               const a::ListCredentialsRequest* request,
                                               a::ListCredentialsResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(auto page,
                        admin_.ListCredentials(request->page_size(), request->page_token()));
    FillPage(std::move(page), response->mutable_credentials(), response->mutable_next_page_token());
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::UpdateCredential(grpc::ServerContext* context,
                                                const a::UpdateCredentialRequest* request,
                                                a::UpdateCredentialResponse* response) {
  return Mutate(context, "UpdateCredential", request->credential().name(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_credential(),
                                      admin_.UpdateCredential(request->credential(), actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::DeleteCredential(grpc::ServerContext* context,
                                                const a::DeleteCredentialRequest* request,
                                                a::DeleteCredentialResponse*) {
  return Mutate(context, "DeleteCredential", request->name(), [&](const std::string& actor) {
    return admin_.DeleteCredential(request->name(), request->revision(), actor);
  });
}

grpc::Status AdminServiceImpl::RotateCredential(grpc::ServerContext* context,
                                                const a::RotateCredentialRequest* request,
                                                a::RotateCredentialResponse* response) {
  return Mutate(context, "RotateCredential", request->name(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_credential(),
                                      admin_.RotateCredential(*request, actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::RetireCredentialVersion(
    grpc::ServerContext* context, const a::RetireCredentialVersionRequest* request,
    a::RetireCredentialVersionResponse* response) {
  return Mutate(context, "RetireCredentialVersion",
                absl::StrCat(request->name(), " version ", request->version()),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_credential(),
                                      admin_.RetireCredentialVersion(*request, actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::CreateCallerKey(grpc::ServerContext* context,
                                               const a::CreateCallerKeyRequest* request,
                                               a::CreateCallerKeyResponse* response) {
  return Mutate(context, "CreateCallerKey", request->caller(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response, admin_.CreateCallerKey(*request, actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::RevokeCallerKey(grpc::ServerContext* context,
                                               const a::RevokeCallerKeyRequest* request,
                                               a::RevokeCallerKeyResponse* response) {
  return Mutate(
      context, "RevokeCallerKey", absl::StrCat(request->caller(), " key ", request->key_id()),
      [&](const std::string& actor) -> absl::Status {
        TP_ASSIGN_OR_RETURN(*response->mutable_caller_key(),
                            admin_.RevokeCallerKey(request->caller(), request->key_id(), actor));
        return absl::OkStatus();
      });
}

grpc::Status AdminServiceImpl::ListDataPlanes(grpc::ServerContext*,
                                              const a::ListDataPlanesRequest* request,
                                              a::ListDataPlanesResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(int limit, PageSize(request->page_size()));
    TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(request->page_token()));
    std::vector<a::DataPlane> nodes = registry_.List(after, limit + 1);
    for (size_t i = 0; i < nodes.size() && i < static_cast<size_t>(limit); ++i) {
      *response->add_data_planes() = std::move(nodes[i]);
    }
    if (nodes.size() > static_cast<size_t>(limit)) {
      response->set_next_page_token(EncodePageToken(response->data_planes(limit - 1).node_id()));
    }
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::GetDataPlane(grpc::ServerContext*,
                                            const a::GetDataPlaneRequest* request,
                                            a::GetDataPlaneResponse* response) {
  return Query([&]() -> absl::Status {
    if (request->node_id().empty()) {
      Violations v;
      v.Add("node_id", "is required");
      return v.ToStatus();
    }
    std::optional<a::DataPlane> node = registry_.Get(request->node_id());
    if (!node.has_value()) {
      return ErrorWithReason(absl::StatusCode::kNotFound,
                             absl::StrCat("data plane \"", request->node_id(),
                                          "\" has not connected since the control plane started"),
                             "NOT_FOUND");
    }
    *response->mutable_data_plane() = *std::move(node);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::GetConfigStatus(grpc::ServerContext*,
                                               const a::GetConfigStatusRequest*,
                                               a::GetConfigStatusResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(ConfigVersion v, admin_.GetConfigVersion());
    response->set_version(absl::StrCat(v.version));
    *response->mutable_update_time() = ToTimestamp(v.update_time);
    auto [connected, current] = registry_.Count(response->version());
    response->set_connected_data_planes(connected);
    response->set_up_to_date_data_planes(current);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::ListAuditEntries(grpc::ServerContext*,
                                                const a::ListAuditEntriesRequest* request,
                                                a::ListAuditEntriesResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(auto page,
                        admin_.ListAuditEntries(request->page_size(), request->page_token()));
    FillPage(std::move(page), response->mutable_entries(), response->mutable_next_page_token());
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::CreateAdminToken(grpc::ServerContext* context,
                                                const a::CreateAdminTokenRequest* request,
                                                a::CreateAdminTokenResponse* response) {
  return Mutate(
      context, "CreateAdminToken", request->name(), [&](const std::string& actor) -> absl::Status {
        TP_ASSIGN_OR_RETURN(*response,
                            identities_.CreateAdminToken(request->name(), request->role(), actor));
        return absl::OkStatus();
      });
}

grpc::Status AdminServiceImpl::ListAdminTokens(grpc::ServerContext*,
                                               const a::ListAdminTokensRequest*,
                                               a::ListAdminTokensResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<a::AdminToken> tokens, identities_.ListAdminTokens());
    for (auto& t : tokens) *response->add_admin_tokens() = std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::RevokeAdminToken(grpc::ServerContext* context,
                                                const a::RevokeAdminTokenRequest* request,
                                                a::RevokeAdminTokenResponse* response) {
  return Mutate(context, "RevokeAdminToken", request->name(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_admin_token(),
                                      identities_.RevokeAdminToken(request->name(), actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::CreateNodeToken(grpc::ServerContext* context,
                                               const a::CreateNodeTokenRequest* request,
                                               a::CreateNodeTokenResponse* response) {
  return Mutate(context, "CreateNodeToken", request->name(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(
                      *response,
                      identities_.CreateNodeToken(
                          request->name(), request->node_id(),
                          {request->capabilities().begin(), request->capabilities().end()}, actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::ListNodeTokens(grpc::ServerContext*, const a::ListNodeTokensRequest*,
                                              a::ListNodeTokensResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<a::NodeToken> tokens, identities_.ListNodeTokens());
    for (auto& t : tokens) *response->add_node_tokens() = std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::RevokeNodeToken(grpc::ServerContext* context,
                                               const a::RevokeNodeTokenRequest* request,
                                               a::RevokeNodeTokenResponse* response) {
  return Mutate(context, "RevokeNodeToken", request->name(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_node_token(),
                                      identities_.RevokeNodeToken(request->name(), actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::BindCertificate(grpc::ServerContext* context,
                                               const a::BindCertificateRequest* request,
                                               a::BindCertificateResponse* response) {
  return Mutate(context, "BindCertificate", request->binding().san(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_binding(),
                                      identities_.certificates().Bind(request->binding(), actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::ListCertificateBindings(
    grpc::ServerContext*, const a::ListCertificateBindingsRequest*,
    a::ListCertificateBindingsResponse* response) {
  return Query([&]() -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<a::CertificateBinding> all, identities_.certificates().List());
    for (auto& b : all) *response->add_bindings() = std::move(b);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::UnbindCertificate(grpc::ServerContext* context,
                                                 const a::UnbindCertificateRequest* request,
                                                 a::UnbindCertificateResponse* response) {
  return Mutate(context, "UnbindCertificate", request->san(),
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response->mutable_binding(),
                                      identities_.certificates().Unbind(request->san(), actor));
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::RotateMasterKey(grpc::ServerContext* context,
                                               const a::RotateMasterKeyRequest*,
                                               a::RotateMasterKeyResponse* response) {
  return Mutate(context, "RotateMasterKey", "master key",
                [&](const std::string& actor) -> absl::Status {
                  TP_ASSIGN_OR_RETURN(*response, admin_.RotateMasterKey(actor));
                  return absl::OkStatus();
                });
}

}  // namespace turnpike::controlplane
