"""TurnpikeError: a failed call with the details the gateway attaches (docs/errors.md)."""
import grpc

from ._proto import common_pb2, error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class TurnpikeError(Exception):
    """A call the gateway (or gRPC) ended with an error.

    code: grpc.StatusCode; message: the gateway's message.
    provider_error: turnpike.v1.ProviderError when a provider's answer caused it, else None.
    partial: turnpike.v1.PartialCompletion (usage of what was streamed, every attempt), or None.
    attempts: the attempts, from `partial` (empty when there is none).
    retry_after: seconds to wait before retrying (google.rpc.RetryInfo), or None.
    reason, domain, metadata: google.rpc.ErrorInfo's fields (reason "" when there is none).
    """

    def __init__(self, code, message, details=()):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.provider_error = None
        self.partial = None
        self.retry_after = None
        self.reason, self.domain, self.metadata = "", "", {}
        for any_detail in details:
            self._add(any_detail)

    @property
    def attempts(self):
        return list(self.partial.attempts) if self.partial is not None else []

    def _add(self, any_detail):
        if any_detail.Is(common_pb2.ProviderError.DESCRIPTOR):
            self.provider_error = common_pb2.ProviderError()
            any_detail.Unpack(self.provider_error)
        elif any_detail.Is(common_pb2.PartialCompletion.DESCRIPTOR):
            self.partial = common_pb2.PartialCompletion()
            any_detail.Unpack(self.partial)
        elif any_detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            any_detail.Unpack(info)
            self.retry_after = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        elif any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_detail.Unpack(info)
            self.reason, self.domain, self.metadata = info.reason, info.domain, dict(info.metadata)

    @classmethod
    def from_rpc_error(cls, error):
        """The TurnpikeError of a grpc.RpcError, with its details decoded."""
        details = ()
        for key, value in (error.trailing_metadata() or ()):
            if key == _DETAILS_KEY:
                status = status_pb2.Status.FromString(value)
                details = status.details
        code = error.code() if error.code() is not None else grpc.StatusCode.UNKNOWN
        return cls(code, error.details() or "", details)
