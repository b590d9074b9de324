// Test fixture for the planner and applier integration tests: a real nats-server, the real
// driftless-kube-emulator (both children killed by PID at teardown), a service::Runtime
// connected to the server, a CurlKubeClient for the emulator, and a recorder of broadcasts
// and work items (EventCollector). Header-only, test code only.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/bus/testing/nats_server.h"
#include "common/kube/curl_kube_client.h"
#include "common/kube/kubeconfig.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "services/common/events.h"
#include "services/common/runtime.h"
#include "services/common/state.h"
#include "services/common/testing/fixtures.h"
#include "services/common/topology.h"
#include "tools/kube-emulator/emulator_process_for_test.h"

namespace driftless::service::testing {

using manifest::Json;

inline Json Yaml(std::string_view text) {
  absl::StatusOr<Json> v = manifest::ParseYaml(text, "test");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json();
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(nats_, bus::testing::NatsServerProcess::Start(dir_.path() + "/js"));
    ASSERT_TRUE(emulator_.Start()) << "driftless-kube-emulator did not start";
    ASSERT_OK_AND_ASSIGN(kube::RestConfig rest, kube::LoadKubeconfig(emulator_.kubeconfig()));
    ASSERT_OK_AND_ASSIGN(kube_, kube::CurlKubeClient::New(rest, {.qps = 0}));
    config::ServiceFlags flags;
    flags.nats_url = nats_->url();
    flags.log_format = "text";
    flags.log_level = "warn";
    flags.replica_id = "test";
    ASSERT_OK_AND_ASSIGN(runtime_, service::Runtime::Start("test", flags));
    ASSERT_OK(broadcasts_.Start(runtime_->bus(), service::kEventsStream, "test-events",
                                "driftless.events.>"));
  }
  void TearDown() override {
    broadcasts_.Stop();
    runtime_.reset();
  }

  // Registers an Application (destination in-cluster/`ns`) and returns its stored form.
  service::StoredResource PutApp(const std::string& name, const std::string& ns,
                                 const std::string& sync_policy) {
    Json app = Yaml(strings::Cat(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: )",
                                 name, R"(}
spec:
  project: default
  source: {repoURL: "file:///repo", ref: {branch: main}, path: apps/)",
                                 name, R"(}
  destination: {cluster: in-cluster, namespace: )",
                                 ns, R"(}
)",
                                 sync_policy.empty() ? "" : "  syncPolicy: " + sync_policy + "\n"));
    service::ResourceStore store(&runtime_->kv());
    EXPECT_OK(store.Put(app).status());
    absl::StatusOr<service::StoredResource> stored = store.Get("Application", name);
    EXPECT_OK(stored.status());
    return stored.ok() ? *stored : service::StoredResource{};
  }

  // An app.rendered work item for `objects` at `revision`.
  v1::Event Rendered(const service::StoredResource& app, const std::string& revision,
                     const Json& objects, const v1::SyncRequested* request = nullptr) {
    v1::Event e = service::NewEvent("app.rendered", app.name, revision, "renderer/test");
    std::string render_digest = manifest::Digest(objects);
    e.set_id(service::EventId("app.rendered", app.name, revision, app.spec_digest,
                              request ? request->sync_id() : ""));
    e.set_correlation_id("corr-" + revision);
    v1::AppRendered* r = e.mutable_app_rendered();
    r->set_spec_digest(app.spec_digest);
    r->set_render_digest(render_digest);
    absl::StatusOr<v1::ManifestPayload> payload =
        service::EncodeManifests(runtime_->blobs(), objects);
    EXPECT_OK(payload.status());
    if (payload.ok()) *r->mutable_manifests() = *payload;
    if (request) *r->mutable_sync_request() = *request;
    return e;
  }

  static bus::Message Delivery(const v1::Event& e, uint64_t count = 1) {
    bus::Message m;
    m.msg_id = e.id();
    m.delivery_count = count;
    return m;
  }

  v1::AppStatus Status(const std::string& app) {
    absl::StatusOr<v1::AppStatus> s = service::StatusStore(&runtime_->kv()).Get(app);
    EXPECT_OK(s.status());
    return s.ok() ? *s : v1::AppStatus();
  }

  static Json ConfigMap(const std::string& name, const std::string& value) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}}},
            {"data", {{"key", value}}}};
  }
  static Json Deployment(const std::string& name) {
    return Yaml(strings::Cat(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: )",
                             name, R"(}
spec:
  replicas: 1
  selector: {matchLabels: {app: )",
                             name, R"(}}
  template:
    metadata: {labels: {app: )",
                             name, R"(}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
)"));
  }

  bus::testing::TempDir dir_;
  std::unique_ptr<bus::testing::NatsServerProcess> nats_;
  kube_emulator::testing::EmulatorProcess emulator_;
  std::unique_ptr<kube::CurlKubeClient> kube_;
  std::unique_ptr<service::Runtime> runtime_;
  EventCollector broadcasts_;
};

}  // namespace driftless::service::testing
