// What the API commands of `driftless` print, as pure functions of API responses: the
// `get apps` table, `get app` descriptions, -o json|yaml documents, apply result lines, and
// the conditions `app wait` waits for. No gRPC and no I/O here (see client.h for the calls).
//
//   std::cout << AppsTable(apps);
//   // NAME        SYNC    HEALTH   REVISION  MESSAGE
//   // guestbook   Synced  Healthy  1a2b3c4   applied 4 objects
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/api.pb.h"

namespace driftless::cli {

namespace v1 = ::driftless::v1;

// "Synced", "OutOfSync", "Unknown" (also for UNSPECIFIED).
std::string SyncName(v1::SyncStatusCode code);
// "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown".
std::string HealthName(v1::HealthStatusCode code);

// "application.driftless.dev/guestbook created".
std::string ApplyLine(const v1::ApplyResult& result);

// The status as JSON (camelCase field names as in proto3 JSON) with sync and health codes
// shown by name ("Synced", "Healthy"), top level and per object.
manifest::Json StatusJson(const v1::AppStatus& status);

// {apiVersion, kind, metadata, spec, status}: the resource document as stored (credentials
// redacted by the server) with its status. kInvalidArgument if resource.json is not JSON.
absl::StatusOr<manifest::Json> ApplicationJson(const v1::Application& app);
// {apiVersion: v1, kind: List, items: [...]}.
absl::StatusOr<manifest::Json> ApplicationListJson(const std::vector<v1::Application>& apps);

// Left-aligned columns separated by three spaces, each as wide as its widest cell; one line
// per row, the first row being the header.
std::string Table(const std::vector<std::vector<std::string>>& rows);

// NAME SYNC HEALTH REVISION (7 characters) MESSAGE, one row per application.
std::string AppsTable(const std::vector<v1::Application>& apps);

// The plural a kind is listed under: "applications", "repositories", "notificationproviders".
std::string KindPlural(std::string_view kind);

// NAME GENERATION, one row per resource (`driftless get projects|clusters|...`).
std::string ResourcesTable(const std::vector<v1::Resource>& resources);
// {apiVersion: v1, kind: List, items: [the documents]}. kInvalidArgument if one is not JSON.
absl::StatusOr<manifest::Json> ResourceListJson(const std::vector<v1::Resource>& resources);

// `driftless get app NAME`: source, destination, sync, health, revisions, message,
// conditions and the objects of the inventory.
std::string DescribeApplication(const v1::Application& app);

// What `driftless app wait` waits for.
struct WaitConditions {
  bool synced = false;       // sync SYNCED, the current generation observed, and a revision
                             // applied once one was attempted
  bool healthy = false;      // health HEALTHY
  std::string for_revision;  // last applied revision starts with this (a full or short SHA)
};

// True if `app` meets every condition that is set (with none set: the application exists).
bool WaitSatisfied(const v1::Application& app, const WaitConditions& conditions);

// The last status for a timed-out wait: sync, health, revisions, message and conditions.
std::string WaitSummary(const v1::Application& app);

// One line per event for `driftless events`:
//   2026-11-28T10:00:00Z  sync.requested  guestbook  1a2b3c4  sync of guestbook requested
std::string EventLine(const v1::Event& event);
// The event as proto3 JSON, on one line (for `driftless events -o json`).
std::string EventJsonLine(const v1::Event& event);

// `driftless dlq list`: SEQ TIME SUBJECT TYPE APPLICATION DELIVERIES ERROR, one row per dead
// letter ("-" for what the body did not say).
std::string DeadLettersTable(const std::vector<v1::DeadLetter>& letters);
// One dead letter as JSON with numbers as numbers and the time in RFC 3339:
// {sequence, time, subject, stream, streamSequence, deliveries, error, type, application,
// eventId, sizeBytes}.
manifest::Json DeadLetterJson(const v1::DeadLetter& letter);
// {apiVersion: v1, kind: List, items: [...]}.
manifest::Json DeadLetterListJson(const std::vector<v1::DeadLetter>& letters);

// `driftless notifications log`: TIME, APPLICATION, EVENT, DESTINATION, STATUS, ATTEMPTS,
// ERROR; and the same as a {"kind": "List"} document.
std::string DeliveriesTable(const std::vector<v1::Delivery>& deliveries);
manifest::Json DeliveryListJson(const std::vector<v1::Delivery>& deliveries);

// `driftless app history`: ID, REVISION (short), FINISHED, RESULT, BY, OBJECTS, REASON, MESSAGE.
std::string HistoryTable(const std::vector<v1::SyncHistoryEntry>& entries);
manifest::Json HistoryListJson(const std::vector<v1::SyncHistoryEntry>& entries);

// "dead letter #12 redriven to driftless.work.plan (stream sequence 345)".
std::string RedriveLine(uint64_t sequence, const v1::RedriveDeadLetterResponse& response);

// `--resource` of `app sync`: "KIND/NAME" or "KIND/NAMESPACE/NAME", where KIND may carry its
// group as "Deployment.apps". kInvalidArgument naming the text otherwise.
absl::StatusOr<v1::ObjectRef> ParseObjectRef(std::string_view text);

}  // namespace driftless::cli
