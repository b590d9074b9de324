#include "services/common/events.h"

#include <algorithm>

#include <random>

#include "absl/time/clock.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "services/common/identity.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::service {

v1::Event NewEvent(std::string_view type, std::string_view application, std::string_view revision,
                   std::string_view emitter) {
  v1::Event event;
  event.set_type(std::string(type));
  event.set_application(std::string(application));
  event.set_revision(std::string(revision));
  event.set_emitter(std::string(emitter));
  event.set_severity(v1::SEVERITY_INFO);
  SetTimestamp(event.mutable_time(), absl::Now());
  return event;
}

std::string EventId(std::string_view type, std::string_view application, std::string_view revision,
                    std::string_view digest, std::string_view extra) {
  auto part = [](std::string_view s) { return s.empty() ? std::string_view("-") : s; };
  std::string id =
      strings::Cat(type, "/", part(application), "/", part(revision), "/", part(digest));
  if (!extra.empty()) strings::Append(id, "/", extra);
  return id;
}

absl::Status Emit(bus::EventBus& bus, const v1::Event& event, std::string_view stage) {
  std::string data;
  if (!event.SerializeToString(&data)) {
    return absl::InternalError(strings::Cat("cannot serialize event ", Describe(event)));
  }
  if (!stage.empty()) {
    DL_RETURN_IF_ERROR(Annotate(bus.Publish(WorkSubject(stage), data, event.id(), {}).status(),
                                strings::Cat("queueing ", Describe(event), " for ", stage)));
  }
  // Public events are small: manifests travel on work streams only.
  if (event.has_app_rendered() || event.has_plan_ready()) {
    v1::Event pub = event;
    if (pub.has_app_rendered()) pub.mutable_app_rendered()->mutable_manifests()->clear_location();
    if (pub.has_plan_ready()) pub.mutable_plan_ready()->mutable_manifests()->clear_location();
    data.clear();
    pub.SerializeToString(&data);
  }
  return Annotate(bus.Publish(EventSubject(event.type()), data, event.id(), {}).status(),
                  strings::Cat("publishing ", Describe(event)));
}

absl::Status FinishDeletion(bus::EventBus& bus, bus::KvStore* kv, std::string_view application,
                            std::string_view uid, std::string_view spec_digest,
                            std::string_view message, std::string_view correlation_id,
                            std::string_view emitter) {
  v1::Event deleted = NewEvent(event_type::kAppChanged, application, "", emitter);
  deleted.set_id(EventId(event_type::kAppChanged, application, "", spec_digest, "finalized"));
  deleted.set_correlation_id(std::string(correlation_id));
  deleted.set_message(std::string(message));
  deleted.mutable_app_changed()->set_reason(v1::AppChanged::REASON_DELETED);
  deleted.mutable_app_changed()->set_spec_digest(std::string(spec_digest));
  DL_RETURN_IF_ERROR(Emit(bus, deleted));
  return FinalizeDeletion(kv, application, uid);
}

absl::Status RequestGeneration(bus::EventBus& bus, std::string_view application,
                               const v1::SyncRequested* request, std::string_view suffix,
                               std::string_view message, std::string_view correlation_id,
                               std::string_view emitter) {
  v1::SyncRequested sync;
  if (request != nullptr) {
    sync = *request;
    sync.set_sync_id(strings::Cat(request->sync_id(), "-", suffix));
  } else {
    sync.set_sync_id(strings::Cat(suffix, "-", absl::ToUnixMillis(absl::Now())));
    sync.set_automated(true);
    sync.set_requested_by(std::string(emitter));
    sync.set_reason(std::string(message));  // why the platform asked (history)
  }
  v1::Event e = NewEvent(event_type::kSyncRequested, application, "", emitter);
  e.set_id(EventId(event_type::kSyncRequested, application, "", "", sync.sync_id()));
  e.set_correlation_id(correlation_id.empty() ? sync.sync_id() : std::string(correlation_id));
  e.set_message(std::string(message));
  *e.mutable_sync_requested() = std::move(sync);
  return Emit(bus, e, kStagePoll);
}

absl::StatusOr<v1::Event> DecodeEvent(std::string_view data) {
  v1::Event event;
  if (!event.ParseFromArray(data.data(), static_cast<int>(data.size())) || event.type().empty()) {
    return absl::InvalidArgumentError(
        strings::Cat("message of ", data.size(), " bytes is not a driftless.v1.Event"));
  }
  return event;
}

absl::StatusOr<std::string> StoreDesired(bus::BlobStore& blobs,
                                         const std::vector<manifest::Json>& objects) {
  return blobs.PutBlob(manifest::Json(objects).dump());
}

absl::StatusOr<std::vector<manifest::Json>> LoadDesired(bus::BlobStore& blobs,
                                                        std::string_view digest) {
  DL_ASSIGN_OR_RETURN(std::string blob, blobs.GetBlob(digest));
  manifest::Json objects = manifest::Json::parse(blob, nullptr, /*allow_exceptions=*/false);
  if (!objects.is_array()) {
    return absl::DataLossError(
        strings::Cat("desired objects ", digest, " are not a JSON array of objects"));
  }
  return std::vector<manifest::Json>(objects.begin(), objects.end());
}

absl::StatusOr<v1::ManifestPayload> EncodeManifests(bus::BlobStore& blobs,
                                                    const manifest::Json& objects) {
  std::string json = manifest::CanonicalJson(objects);
  v1::ManifestPayload payload;
  payload.set_size_bytes(static_cast<int64_t>(json.size()));
  payload.set_object_count(objects.is_array() ? static_cast<int32_t>(objects.size()) : 0);
  if (json.size() <= kMaxInlineManifestBytes) {
    payload.set_inline_json(std::move(json));
  } else {
    DL_ASSIGN_OR_RETURN(std::string digest, blobs.PutBlob(json));
    payload.set_blob_digest(std::move(digest));
  }
  return payload;
}

absl::StatusOr<manifest::Json> DecodeManifests(bus::BlobStore& blobs,
                                               const v1::ManifestPayload& payload) {
  std::string stored;
  const std::string* json = &payload.inline_json();
  if (payload.location_case() == v1::ManifestPayload::kBlobDigest) {
    DL_ASSIGN_OR_RETURN(stored, blobs.GetBlob(payload.blob_digest()));
    json = &stored;
  } else if (payload.location_case() != v1::ManifestPayload::kInlineJson) {
    return manifest::Json::array();
  }
  DL_ASSIGN_OR_RETURN(manifest::Json objects, manifest::ParseJson(*json, "manifests"));
  if (!objects.is_array()) return absl::InvalidArgumentError("manifest payload is not an array");
  return objects;
}

absl::Duration RetryDelay(const bus::Message& message, absl::Duration base) {
  const int n = static_cast<int>(std::min<uint64_t>(message.delivery_count, 7));
  const absl::Duration delay = std::min(absl::Seconds(30), base * (1 << std::max(0, n - 1)));
  // +-20% jitter: replicas retrying the same outage do not come back in step.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return delay * std::uniform_real_distribution<double>(0.8, 1.2)(rng);
}

void SetTimestamp(google::protobuf::Timestamp* out, absl::Time time) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  out->set_seconds(seconds);
  out->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
}

absl::Time TimeOf(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

void SetDuration(google::protobuf::Duration* out, absl::Duration duration) {
  const int64_t seconds = absl::ToInt64Seconds(duration);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(duration - absl::Seconds(seconds))));
}

std::string Describe(const v1::Event& event) {
  std::string out = event.type();
  if (!event.application().empty()) strings::Append(out, " ", event.application());
  if (!event.revision().empty()) {
    strings::Append(out, "@", std::string_view(event.revision()).substr(0, 7));
  }
  return out;
}

}  // namespace driftless::service
