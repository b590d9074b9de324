#include "services/common/topology.h"

#include "common/strings/str.h"
#include "common/status/status.h"

namespace driftless::service {

std::string WorkSubject(std::string_view stage) {
  return strings::Cat(kSubjectPrefix, ".work.", stage);
}

std::string EventSubject(std::string_view type) {
  return strings::Cat(kSubjectPrefix, ".events.", type);
}

absl::Status Provision(bus::EventBus& bus, bus::KvStore& kv) {
  DL_RETURN_IF_ERROR(bus.EnsureStream({.name = kWorkStream,
                                       .subjects = {strings::Cat(kSubjectPrefix, ".work.>")},
                                       .retention = bus::Retention::kWorkQueue}));
  DL_RETURN_IF_ERROR(bus.EnsureStream({.name = kEventsStream,
                                       .subjects = {strings::Cat(kSubjectPrefix, ".events.>")},
                                       .retention = bus::Retention::kLimits,
                                       .max_age = absl::Hours(24 * 7)}));
  DL_RETURN_IF_ERROR(bus.EnsureStream(
      bus::DeadLetterStreamSpec(kDeadLetterStream, kSubjectPrefix, absl::Hours(24 * 30))));
  for (const char* stage : {kStagePoll, kStageRender, kStagePlan, kStageApply}) {
    // Applies wait for health and can take minutes; in-progress heartbeats (every ack_wait/3)
    // keep them owned. The ack wait is also how long the item of a crashed worker waits
    // before another replica (or the restarted one) gets it.
    DL_RETURN_IF_ERROR(bus.EnsureConsumer({.stream = kWorkStream,
                                           .durable = stage,
                                           .filter_subject = WorkSubject(stage),
                                           .ack_wait = absl::Seconds(10),
                                           .max_deliver = kMaxDeliver}));
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
  return absl::OkStatus();
}

}  // namespace driftless::service
