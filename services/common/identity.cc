#include "services/common/identity.h"

#include "common/strings/str.h"

namespace driftless::service {

SyncIdentity IdentityOf(const v1::Event& event) {
  SyncIdentity id;
  if (event.schema_version() < kSchemaVersion) return id;  // v1: converted to "no identity"
  id.uid = event.application_uid();
  id.seq = event.desired_seq();
  id.attempt = event.attempt() > 0 ? event.attempt() : 1;
  return id;
}

void SetIdentity(v1::Event& event, const SyncIdentity& identity) {
  event.set_schema_version(kSchemaVersion);
  event.set_application_uid(identity.uid);
  event.set_desired_seq(identity.seq);
  event.set_attempt(identity.attempt);
}

absl::Status CheckSchema(const v1::Event& event) {
  if (event.schema_version() == 0 || event.schema_version() == kSchemaVersion) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(strings::Cat(
      event.type(), " for application ", event.application().empty() ? "-" : event.application(),
      ": envelope schema version ", event.schema_version(),
      " is not supported (this release reads ", kSchemaVersion, ")"));
}

std::string IdentityText(const SyncIdentity& identity) {
  return strings::Cat(std::string_view(identity.uid).substr(0, 8), "-", identity.seq, "-",
                      identity.attempt);
}

std::string SyncIdOf(const SyncIdentity& identity) { return "s-" + IdentityText(identity); }

std::string IdentityEventId(std::string_view type, std::string_view application,
                            const SyncIdentity& identity, std::string_view extra) {
  std::string id = strings::Cat(type, "/", application, "/", IdentityText(identity));
  if (!extra.empty()) strings::Append(id, "/", extra);
  return id;
}

bool OlderThanStatus(const SyncIdentity& identity, const v1::AppStatus& status) {
  if (!identity.known() || status.application_uid() != identity.uid) return false;
  if (identity.seq != status.desired_seq()) return identity.seq < status.desired_seq();
  return identity.attempt < status.attempt();
}

bool SupersededByStatus(const SyncIdentity& identity, const v1::AppStatus& status) {
  return OlderThanStatus(identity, status) ||
         (identity.known() && status.application_uid() == identity.uid &&
          status.applied_seq() >= identity.seq);
}

}  // namespace driftless::service
