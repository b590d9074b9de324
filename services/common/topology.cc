#include "services/common/topology.h"

#include "common/status/status.h"
#include "common/strings/str.h"

namespace driftless::service {

std::string WorkSubject(std::string_view stage) {
  return strings::Cat(kSubjectPrefix, ".work.", stage);
}

std::string EventSubject(std::string_view type) {
  return strings::Cat(kSubjectPrefix, ".events.", type);
}

absl::Duration StageHandlerDeadline(std::string_view stage) {
  // Every cluster and git request has its own timeout; these bound a whole item (an apply of
  // many objects, each retried a few times; a render with a fetch).
  if (stage == kStageApply) return absl::Minutes(10);
  if (stage == kStageRender) return absl::Minutes(5);
  return absl::Minutes(2);
}

absl::Status Provision(bus::EventBus& bus, bus::KvStore& kv, int replicas) {
  DL_RETURN_IF_ERROR(bus.EnsureStream({.name = kWorkStream,
                                       .subjects = {strings::Cat(kSubjectPrefix, ".work.>")},
                                       .retention = bus::Retention::kWorkQueue,
                                       .max_age = absl::Hours(24 * 7),
                                       .max_bytes = kWorkStreamMaxBytes,
                                       .discard_new = true,
                                       .replicas = replicas}));
  DL_RETURN_IF_ERROR(bus.EnsureStream({.name = kEventsStream,
                                       .subjects = {strings::Cat(kSubjectPrefix, ".events.>")},
                                       .retention = bus::Retention::kLimits,
                                       .max_age = absl::Hours(24 * 7),
                                       .max_bytes = kEventsStreamMaxBytes,
                                       .replicas = replicas}));
  bus::StreamSpec dlq =
      bus::DeadLetterStreamSpec(kDeadLetterStream, kSubjectPrefix, absl::Hours(24 * 30));
  dlq.max_bytes = kDeadLetterStreamMaxBytes;
  dlq.replicas = replicas;
  DL_RETURN_IF_ERROR(bus.EnsureStream(dlq));
  for (const char* stage : {kStagePoll, kStageRender, kStagePlan, kStageApply}) {
    // Applies wait for health and can take minutes; in-progress heartbeats (every ack_wait/3)
    // keep them owned. The ack wait is also how long the item of a crashed worker waits
    // before another replica (or the restarted one) gets it.
    DL_RETURN_IF_ERROR(bus.EnsureConsumer({.stream = kWorkStream,
                                           .durable = stage,
                                           .filter_subject = WorkSubject(stage),
                                           .ack_wait = absl::Seconds(10),
                                           .max_deliver = kMaxDeliver,
                                           // Items waiting to be due (retries, health checks)
                                           // count as pending: room for a whole fleet.
                                           .max_ack_pending = 20000}));
  }
  DL_RETURN_IF_ERROR(bus.EnsureConsumer({.stream = kEventsStream,
                                         .durable = kNotifierDurable,
                                         .filter_subject = "",
                                         .ack_wait = absl::Seconds(30),
                                         .max_deliver = kMaxDeliver}));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kResourcesBucket, 5, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kStatusBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kHistoryBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kSourcesBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kLeasesBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kBlobsBucket, 1, absl::Hours(24)));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kDeliveriesBucket, 1, absl::Hours(24 * 30)));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kPendingBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kReadSetsBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kRenderInputsBucket, 1, absl::ZeroDuration()));
  DL_RETURN_IF_ERROR(kv.EnsureBucket(kPollersBucket, 1, kPollerMemberTtl));
  return absl::OkStatus();
}

}  // namespace driftless::service
