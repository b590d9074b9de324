#include "common/bus/nats_connection.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

#include "common/bus/internal/nats_internal.h"
#include "common/bus/internal/str.h"

namespace driftless::bus {
namespace internal {

int64_t ToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }
int64_t ToMillis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

bool LastErrorIsWrongLastSequence() {
  natsStatus ignored = NATS_OK;
  const char* text = nats_GetLastError(&ignored);
  return text != nullptr && internal::Contains(text, "wrong last sequence");
}

absl::Status FromNats(natsStatus s, jsErrCode js_err, std::string_view what) {
  if (s == NATS_OK) return absl::OkStatus();
  natsStatus ignored = NATS_OK;
  const char* last = nats_GetLastError(&ignored);
  std::string text = internal::Cat(what, ": ", natsStatus_GetText(s));
  if (js_err != 0) internal::Append(text, " (jetstream error ", static_cast<int>(js_err), ")");
  if (last != nullptr && *last != '\0' && !internal::Contains(text, last)) {
    internal::Append(text, ": ", last);
  }
  switch (js_err) {
    case JSStreamWrongLastSequenceErr:
    case JSStreamWrongLastMsgIDErr:
      return absl::AbortedError(text);
    case JSStreamNotFoundErr:
    case JSConsumerNotFoundErr:
    case JSNoMessageFoundErr:
      return absl::NotFoundError(text);
    case JSStreamNameExistErr:
    case JSConsumerNameExistErr:
      return absl::AlreadyExistsError(text);
    case JSStreamSubjectOverlapErr:
    case JSStreamInvalidConfig:
    case JSStreamUpdateErr:
      return absl::FailedPreconditionError(text);
    case JSStreamMessageExceedsMaximumErr:
      return absl::InvalidArgumentError(text);
    case JSInsufficientResourcesErr:
    case JSStorageResourcesExceededErr:
    case JSMemoryResourcesExceededErr:
    case JSStreamStoreFailedErr:
      return absl::ResourceExhaustedError(text);
    case JSNotEnabledErr:
    case JSNotEnabledForAccountErr:
    case JSClusterNotAvailErr:
      return absl::UnavailableError(text);
    default:
      break;
  }
  switch (s) {
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(text);
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION:
    case NATS_DRAINING:
    case NATS_MISSED_HEARTBEAT:
      return absl::UnavailableError(text);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(text);
    case NATS_MAX_PAYLOAD:
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_TIMEOUT:
    case NATS_INVALID_QUEUE_NAME:
    case NATS_ADDRESS_MISSING:
      return absl::InvalidArgumentError(text);
    case NATS_NOT_PERMITTED:
    case NATS_CONNECTION_AUTH_FAILED:
      return absl::PermissionDeniedError(text);
    case NATS_ILLEGAL_STATE:
    case NATS_INVALID_SUBSCRIPTION:
      return absl::FailedPreconditionError(text);
    case NATS_NO_MEMORY:
    case NATS_SLOW_CONSUMER:
      return absl::ResourceExhaustedError(text);
    case NATS_MISMATCH:
      return absl::AbortedError(text);
    default:
      break;
  }
  if (internal::Contains(text, "wrong last sequence")) return absl::AbortedError(text);
  return absl::UnknownError(text);
}

}  // namespace internal

const char* ConnectionStateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kReconnecting:
      return "reconnecting";
    case ConnectionState::kClosed:
      return "closed";
  }
  return "unknown";
}

void NatsConnection::Impl::SetState(ConnectionState s) {
  state.store(s);
  if (options.on_state_change) options.on_state_change(s);
}

namespace {

void OnDisconnected(natsConnection* /*nc*/, void* closure) {
  auto* impl = static_cast<NatsConnection::Impl*>(closure);
  if (impl->state.load() == ConnectionState::kClosed) return;
  impl->SetState(ConnectionState::kReconnecting);
}

void OnReconnected(natsConnection* /*nc*/, void* closure) {
  auto* impl = static_cast<NatsConnection::Impl*>(closure);
  impl->reconnects.fetch_add(1);
  impl->SetState(ConnectionState::kConnected);
}

// With retry_initial_connect, the first successful connect arrives here.
void OnConnected(natsConnection* /*nc*/, void* closure) {
  static_cast<NatsConnection::Impl*>(closure)->SetState(ConnectionState::kConnected);
}

void OnClosed(natsConnection* /*nc*/, void* closure) {
  auto* impl = static_cast<NatsConnection::Impl*>(closure);
  impl->SetState(ConnectionState::kClosed);
  std::lock_guard<std::mutex> lock(impl->closed_mu);
  impl->closed = true;
  impl->closed_cv.notify_all();
}

struct OptionsDeleter {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};

}  // namespace

absl::StatusOr<std::shared_ptr<NatsConnection>> NatsConnection::Connect(const std::string& url,
                                                                        const std::string& name) {
  NatsConnectionOptions options;
  options.url = url;
  options.name = name;
  return Connect(options);
}

absl::StatusOr<std::shared_ptr<NatsConnection>> NatsConnection::Connect(
    const NatsConnectionOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  natsOptions* raw = nullptr;
  natsStatus s = natsOptions_Create(&raw);
  if (s != NATS_OK) return internal::FromNats(s, "nats options");
  std::unique_ptr<natsOptions, OptionsDeleter> opts(raw);
  Impl* closure = impl.get();
  // natsOptions_SetURL takes one URL (only natsConnection_ConnectTo splits lists): a
  // comma-separated list becomes the server pool, which cnats tries in random order and
  // reconnects through (plus the cluster's other nodes, which servers advertise).
  std::vector<std::string> urls;
  for (absl::string_view part : absl::StrSplit(options.url, ',', absl::SkipWhitespace())) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(part);
    urls.emplace_back(trimmed.data(), trimmed.size());
  }
  if (urls.empty()) return absl::InvalidArgumentError("nats url is empty");
  std::vector<const char*> servers;
  for (const std::string& url : urls) servers.push_back(url.c_str());
  s = natsOptions_SetServers(opts.get(), servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK && !options.name.empty())
    s = natsOptions_SetName(opts.get(), options.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), -1);  // forever
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectWait(opts.get(), internal::ToMillis(options.reconnect_wait));
  }
  if (s == NATS_OK) {
    s = natsOptions_SetTimeout(opts.get(), internal::ToMillis(options.connect_timeout));
  }
  // Buffer publishes made while reconnecting (they go out once the server is back).
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts.get(), 32 * 1024 * 1024);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts.get(), OnDisconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts.get(), OnReconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts.get(), OnClosed, closure);
  if (s == NATS_OK && options.retry_initial_connect) {
    s = natsOptions_SetRetryOnFailedConnect(opts.get(), true, OnConnected, closure);
  }
  if (s != NATS_OK) return internal::FromNats(s, "nats options");

  s = natsConnection_Connect(&impl->nc, opts.get());
  if (s == NATS_NOT_YET_CONNECTED) {
    impl->state.store(ConnectionState::kConnecting);
  } else if (s != NATS_OK) {
    absl::Status err = internal::FromNats(s, internal::Cat("connect to ", options.url));
    if (impl->nc != nullptr) natsConnection_Destroy(impl->nc);
    // No callbacks were set up on a live connection: safe to free impl.
    return err.code() == absl::StatusCode::kUnknown ? absl::UnavailableError(err.message()) : err;
  } else {
    impl->state.store(ConnectionState::kConnected);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = internal::ToMillis(options.request_timeout);
  s = natsConnection_JetStream(&impl->js, impl->nc, &jo);
  if (s != NATS_OK) {
    absl::Status err = internal::FromNats(s, "jetstream context");
    natsConnection_Close(impl->nc);
    {
      std::unique_lock<std::mutex> lock(impl->closed_mu);
      impl->closed_cv.wait_for(lock, std::chrono::seconds(5), [&] { return impl->closed; });
    }
    natsConnection_Destroy(impl->nc);
    return err;
  }
  return std::shared_ptr<NatsConnection>(new NatsConnection(std::move(impl)));
}

NatsConnection::NatsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NatsConnection::~NatsConnection() {
  if (impl_->js != nullptr) jsCtx_Destroy(impl_->js);
  natsConnection_Close(impl_->nc);
  {
    std::unique_lock<std::mutex> lock(impl_->closed_mu);
    impl_->closed_cv.wait_for(lock, std::chrono::seconds(10), [&] { return impl_->closed; });
  }
  natsConnection_Destroy(impl_->nc);
}

ConnectionState NatsConnection::state() const {
  // Ask cnats directly: the callbacks that maintain impl_->state run asynchronously and may
  // lag the connection's real state.
  switch (natsConnection_Status(impl_->nc)) {
    case NATS_CONN_STATUS_CONNECTED:
    case NATS_CONN_STATUS_DRAINING_SUBS:
    case NATS_CONN_STATUS_DRAINING_PUBS:
      return ConnectionState::kConnected;
    case NATS_CONN_STATUS_CONNECTING:
      return impl_->reconnects.load() > 0 || impl_->state.load() == ConnectionState::kReconnecting
                 ? ConnectionState::kReconnecting
                 : ConnectionState::kConnecting;
    case NATS_CONN_STATUS_RECONNECTING:
    case NATS_CONN_STATUS_DISCONNECTED:
      return ConnectionState::kReconnecting;
    case NATS_CONN_STATUS_CLOSED:
      return ConnectionState::kClosed;
  }
  return impl_->state.load();
}

absl::Status NatsConnection::Ready() const {
  ConnectionState s = state();
  if (s == ConnectionState::kConnected) return absl::OkStatus();
  return absl::UnavailableError(
      internal::Cat("nats ", impl_->options.url, ": ", ConnectionStateName(s)));
}

std::string NatsConnection::connected_url() const {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(impl_->nc, buf, sizeof(buf)) != NATS_OK) return "";
  return buf;
}

int64_t NatsConnection::max_payload() const { return natsConnection_GetMaxPayload(impl_->nc); }

const NatsConnectionOptions& NatsConnection::options() const { return impl_->options; }

int64_t NatsConnection::reconnects() const { return impl_->reconnects.load(); }

}  // namespace driftless::bus
