// The renderer against a real nats-server and a real git repository (git CLI, file:// URL,
// real libgit2 client): a source.changed work item yields app.rendered on stage plan with the
// objects of that exact commit; malformed YAML and a missing path set RenderError (naming
// file and line, or the path) and broadcast sync.failed; a render over 5 MB travels by blob
// digest; stale and orphaned work items are dropped.
#include <cstdio>
#include <fstream>
#include <mutex>

#include "common/bus/blob_store.h"
#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/git/libgit2_client.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/events.h"
#include "services/common/render_inputs.h"
#include "services/common/state.h"
#include "services/common/testing/fixtures.h"
#include "services/common/topology.h"
#include "services/renderer/renderer_service.h"

namespace driftless::renderer {
namespace {

using manifest::Json;
using service::testing::ConfigMapYaml;
using service::testing::EventCollector;
using service::testing::GitRepo;
using service::testing::WaitFor;
using ::testing::HasSubstr;

// A working-tree git repository driven by the git CLI.

// Collects decoded events from a durable consumer, acking each.

Json App(const std::string& name, const std::string& url, const std::string& path) {
  return {{"apiVersion", "driftless.dev/v1alpha1"},
          {"kind", "Application"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"source",
             {{"repoURL", url},
              {"ref", {{"branch", "main"}}},
              {"path", path},
              {"substitute", {{"ENV", "prod"}}}}},
            {"destination", {{"cluster", "in-cluster"}, {"namespace", "gb"}}}}}};
}

class RendererIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, bus::testing::NatsServerProcess::Start(tmp_.path() + "/js"));
    ASSERT_OK_AND_ASSIGN(conn_, bus::NatsConnection::Connect(server_->url(), "renderer-test"));
    bus_ = std::make_unique<bus::NatsEventBus>(conn_);
    kv_ = std::make_unique<bus::NatsKvStore>(conn_);
    blobs_ = std::make_unique<bus::BlobStore>(kv_.get(), service::kBlobsBucket);
    ASSERT_OK(service::Provision(*bus_, *kv_));
    repo_ = std::make_unique<GitRepo>(tmp_.path() + "/repo");
    git_ = std::make_unique<git::Libgit2Client>(
        git::Libgit2ClientOptions{.cache_dir = tmp_.path() + "/state/mirrors"});
    renderer_ =
        std::make_unique<RendererService>(bus_.get(), kv_.get(), blobs_.get(), git_.get(),
                                          RendererOptions{.emitter = "renderer/test",
                                                          .work_dir = tmp_.path() + "/state/work",
                                                          .tools = &tools_,
                                                          .cache = &cache_});
    ASSERT_OK(plan_.Start(*bus_, service::kWorkStream, service::kStagePlan));
    ASSERT_OK(broadcasts_.Start(*bus_, service::kEventsStream, service::kNotifierDurable));
    ASSERT_OK_AND_ASSIGN(render_sub_, bus_->Consume(service::kWorkStream, service::kStageRender,
                                                    [this](const bus::Message& m) {
                                                      absl::StatusOr<v1::Event> e =
                                                          service::DecodeEvent(m.data);
                                                      if (!e.ok())
                                                        return bus::Disposition::Term("bad");
                                                      return renderer_->Handle(*e, m);
                                                    },
                                                    {}));
  }

  void TearDown() override {
    if (render_sub_) render_sub_->Stop();
    plan_.Stop();
    broadcasts_.Stop();
  }

  service::StoredResource Register(const Json& app) {
    service::ResourceStore store(kv_.get());
    EXPECT_OK(store.Put(app).status());
    auto r = store.Get("Application", app["metadata"]["name"].get<std::string>());
    EXPECT_OK(r.status());
    return r.ok() ? *r : service::StoredResource{};
  }

  // What the repo-poller sends.
  void SourceChanged(const service::StoredResource& app, const std::string& commit,
                     const std::string& sync_id = "") {
    ASSERT_OK(
        service::Emit(*bus_, SourceChangedEvent(app, commit, sync_id), service::kStageRender));
  }
  v1::Event SourceChangedEvent(const service::StoredResource& app, const std::string& commit,
                               const std::string& sync_id = "") {
    v1::Event e = service::NewEvent("source.changed", app.name, commit, "repo-poller/test");
    e.set_id(service::EventId("source.changed", app.name, commit, app.spec_digest, sync_id));
    e.set_correlation_id("corr-" + commit.substr(0, 7) + sync_id);
    v1::SourceChanged* p = e.mutable_source_changed();
    p->set_repo_url(repo_->url());
    p->set_ref("refs/heads/main");
    p->set_revision(commit);
    p->add_applications(app.name);
    p->set_spec_digest(app.spec_digest);
    if (!sync_id.empty()) {
      p->mutable_sync_request()->set_sync_id(sync_id);
      p->mutable_sync_request()->set_requested_by("user:cli");
    }
    return e;
  }

  void WaitRenderIdle() {
    ASSERT_TRUE(WaitFor([&] {
      auto st = bus_->GetConsumerState(service::kWorkStream, service::kStageRender);
      return st.ok() && st->num_pending == 0 && st->num_ack_pending == 0;
    }));
  }

  bus::testing::TempDir tmp_;
  RenderCache cache_;
  Tools tools_ = FindTools({.helm = std::string(DRIFTLESS_TOOLS_DIR) + "/helm",
                            .kubectl = std::string(DRIFTLESS_TOOLS_DIR) + "/kubectl"});
  std::unique_ptr<bus::testing::NatsServerProcess> server_;
  std::shared_ptr<bus::NatsConnection> conn_;
  std::unique_ptr<bus::NatsEventBus> bus_;
  std::unique_ptr<bus::NatsKvStore> kv_;
  std::unique_ptr<bus::BlobStore> blobs_;
  std::unique_ptr<GitRepo> repo_;
  std::unique_ptr<git::Libgit2Client> git_;
  std::unique_ptr<RendererService> renderer_;
  EventCollector plan_;
  EventCollector broadcasts_;
  std::unique_ptr<bus::Subscription> render_sub_;
};

// The policy for remote references (kustomize bases, chart repositories), a pure decision.
TEST(SourceReposOf, TheBuiltInDefaultProjectAllowsAllUntilDefined) {
  EXPECT_EQ(SourceReposOf("default", nullptr, /*missing=*/true), std::vector<std::string>{"*"});
  EXPECT_TRUE(SourceReposOf("team", nullptr, /*missing=*/true).empty());
  EXPECT_TRUE(SourceReposOf("default", nullptr, /*missing=*/false).empty());  // unreadable
  service::StoredResource defined;
  defined.object = Json::parse(R"({"spec": {"sourceRepos": ["https://git.example.com/*", 3]}})");
  EXPECT_EQ(SourceReposOf("default", &defined, false),
            std::vector<std::string>{"https://git.example.com/*"});
  service::StoredResource empty;
  empty.object = Json::parse(R"({"spec": {}})");
  EXPECT_TRUE(SourceReposOf("team", &empty, false).empty());
}

TEST_F(RendererIntegrationTest, SourceChangedYieldsAppRenderedWithTheObjectsOfThatCommit) {
  repo_->Write("apps/guestbook/web.yaml",
               ConfigMapYaml("web", "${ENV}") + "---\n" + ConfigMapYaml("web-extra", "x"));
  repo_->Write("apps/guestbook/svc.json",
               R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}})");
  repo_->Write("apps/other/ignored.yaml", ConfigMapYaml("other", "x"));
  const std::string first = repo_->Commit("first");
  repo_->Write("apps/guestbook/web.yaml", ConfigMapYaml("web", "changed"));
  const std::string second = repo_->Commit("second");
  service::StoredResource app = Register(App("guestbook", repo_->url(), "apps/guestbook"));

  SourceChanged(app, first, "s1");  // the older commit, on purpose
  v1::Event e = plan_.WaitNth("app.rendered", "guestbook", 1);
  ASSERT_EQ(e.type(), "app.rendered");
  EXPECT_EQ(e.revision(), first);
  EXPECT_EQ(e.correlation_id(), "corr-" + first.substr(0, 7) + "s1");
  EXPECT_EQ(e.id(), service::EventId("app.rendered", "guestbook", first, app.spec_digest, "s1"));
  const v1::AppRendered& r = e.app_rendered();
  EXPECT_EQ(r.spec_digest(), app.spec_digest);
  EXPECT_EQ(r.sync_request().sync_id(), "s1");
  EXPECT_TRUE(r.manifests().has_inline_json());
  ASSERT_OK_AND_ASSIGN(Json objects, service::DecodeManifests(*blobs_, r.manifests()));
  ASSERT_EQ(objects.size(), 3u);
  // Path order: svc.json, then web.yaml's two documents.
  EXPECT_EQ(objects[0]["kind"], "Service");
  EXPECT_EQ(objects[1]["metadata"]["name"], "web");
  EXPECT_EQ(objects[1]["data"]["v"], "prod");  // substituted
  EXPECT_EQ(objects[2]["metadata"]["name"], "web-extra");
  EXPECT_EQ(r.render_digest(), manifest::Digest(objects));
  EXPECT_EQ(r.manifests().object_count(), 3);

  SourceChanged(app, second);
  v1::Event e2 = plan_.WaitNth("app.rendered", "guestbook", 2);
  EXPECT_EQ(e2.revision(), second);
  ASSERT_OK_AND_ASSIGN(Json objects2,
                       service::DecodeManifests(*blobs_, e2.app_rendered().manifests()));
  ASSERT_EQ(objects2.size(), 2u);
  EXPECT_EQ(objects2[1]["data"]["v"], "changed");
  EXPECT_FALSE(e2.app_rendered().has_sync_request());
  EXPECT_TRUE(broadcasts_.Events("sync.failed", "guestbook").empty());
}

TEST_F(RendererIntegrationTest, MalformedYamlSetsRenderErrorNamingFileAndLineThenRecovers) {
  repo_->Write("apps/guestbook/good.yaml", ConfigMapYaml("good", "x"));
  repo_->Write("apps/guestbook/bad.yaml",
               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n  x: y\n");
  const std::string bad = repo_->Commit("bad");
  service::StoredResource app = Register(App("guestbook", repo_->url(), "apps/guestbook"));
  SourceChanged(app, bad);

  v1::Event failed = broadcasts_.WaitNth("sync.failed", "guestbook", 1);
  ASSERT_EQ(failed.type(), "sync.failed");
  EXPECT_EQ(failed.revision(), bad);
  EXPECT_FALSE(failed.sync_finished().succeeded());
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("apps/guestbook/bad.yaml"));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("line "));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("application guestbook"));

  ASSERT_OK_AND_ASSIGN(v1::AppStatus status, service::StatusStore(kv_.get()).Get("guestbook"));
  const v1::Condition* c = service::FindCondition(status, "RenderError");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->status());
  EXPECT_THAT(c->message(), HasSubstr("apps/guestbook/bad.yaml"));
  EXPECT_THAT(c->message(), HasSubstr("line "));
  EXPECT_EQ(status.message(), c->message());
  EXPECT_EQ(status.last_attempted_revision(), bad);
  EXPECT_EQ(status.sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
  WaitRenderIdle();
  EXPECT_TRUE(plan_.Events("app.rendered", "guestbook").empty());
  std::cerr << "render error: " << c->message() << "\n";

  // A fixed commit renders and clears the condition.
  repo_->Write("apps/guestbook/bad.yaml", ConfigMapYaml("fixed", "y"));
  const std::string fixed = repo_->Commit("fixed");
  SourceChanged(app, fixed);
  EXPECT_EQ(plan_.WaitNth("app.rendered", "guestbook", 1).revision(), fixed);
  ASSERT_TRUE(WaitFor([&] {
    auto s = service::StatusStore(kv_.get()).Get("guestbook");
    const v1::Condition* cond = s.ok() ? service::FindCondition(*s, "RenderError") : nullptr;
    return cond != nullptr && !cond->status();
  }));
}

TEST_F(RendererIntegrationTest, MissingPathIsARenderErrorNamingTheApplicationAndPath) {
  repo_->Write("apps/guestbook/a.yaml", ConfigMapYaml("a", "x"));
  const std::string commit = repo_->Commit("first");
  service::StoredResource app = Register(App("lost", repo_->url(), "apps/nope"));
  SourceChanged(app, commit, "s9");
  v1::Event failed = broadcasts_.WaitNth("sync.failed", "lost", 1);
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("application lost"));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("apps/nope"));
  EXPECT_EQ(failed.sync_finished().sync_id(), "s9");
  EXPECT_EQ(failed.sync_finished().initiated_by(), "user:cli");
  ASSERT_OK_AND_ASSIGN(v1::AppStatus status, service::StatusStore(kv_.get()).Get("lost"));
  const v1::Condition* c = service::FindCondition(status, "RenderError");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->reason(), "NotFound");
}

TEST_F(RendererIntegrationTest, LargeRenderTravelsByBlobDigest) {
  // 60 ConfigMaps of ~100 KB each: ~6 MB of manifests.
  const std::string big(100 * 1000, 'x');
  for (int i = 0; i < 60; ++i) {
    repo_->Write("apps/big/cm-" + std::to_string(100 + i) + ".yaml",
                 ConfigMapYaml("cm-" + std::to_string(i), big));
  }
  const std::string commit = repo_->Commit("big");
  service::StoredResource app = Register(App("big", repo_->url(), "apps/big"));
  SourceChanged(app, commit);
  v1::Event e = plan_.WaitNth("app.rendered", "big", 1);
  ASSERT_EQ(e.type(), "app.rendered");
  const v1::ManifestPayload& m = e.app_rendered().manifests();
  EXPECT_FALSE(m.has_inline_json());
  EXPECT_TRUE(m.blob_digest().starts_with("sha256:")) << m.blob_digest();
  EXPECT_GT(m.size_bytes(), 5 * 1000 * 1000);
  EXPECT_LT(e.ByteSizeLong(), 4096u);
  ASSERT_OK_AND_ASSIGN(Json objects, service::DecodeManifests(*blobs_, m));
  ASSERT_EQ(objects.size(), 60u);
  EXPECT_EQ(objects[0]["data"]["v"].get<std::string>().size(), big.size());
  EXPECT_EQ(e.app_rendered().render_digest(), manifest::Digest(objects));

  // The same input again is a lookup...
  SourceChanged(app, commit, "again");
  v1::Event hit = plan_.WaitNth("app.rendered", "big", 2);
  EXPECT_TRUE(hit.app_rendered().cache_hit());
  EXPECT_EQ(hit.app_rendered().manifests().blob_digest(), m.blob_digest());
  // ...until the cached digest is older than the blob lifetime allows: rendered again.
  RendererService aged(bus_.get(), kv_.get(), blobs_.get(), git_.get(),
                       RendererOptions{.emitter = "renderer/test",
                                       .work_dir = tmp_.path() + "/state/work-aged",
                                       .blob_cache_lifetime = absl::ZeroDuration(),
                                       .tools = &tools_,
                                       .cache = &cache_});
  v1::Event again = SourceChangedEvent(app, commit, "aged");
  bus::Message delivery;
  delivery.delivery_count = 1;
  ASSERT_EQ(aged.Handle(again, delivery).kind(), bus::Disposition::Kind::kAck);
  v1::Event rerendered = plan_.WaitNth("app.rendered", "big", 3);
  EXPECT_FALSE(rerendered.app_rendered().cache_hit());
  EXPECT_EQ(rerendered.app_rendered().manifests().blob_digest(), m.blob_digest());
}

TEST_F(RendererIntegrationTest, StaleOrOrphanedWorkItemsAreDropped) {
  repo_->Write("apps/guestbook/a.yaml", ConfigMapYaml("a", "x"));
  const std::string commit = repo_->Commit("first");
  service::StoredResource app = Register(App("guestbook", repo_->url(), "apps/guestbook"));
  service::StoredResource stale = app;
  stale.spec_digest = "sha256:old";
  SourceChanged(stale, commit);  // superseded spec
  service::StoredResource ghost = app;
  ghost.name = "ghost";  // not registered
  SourceChanged(ghost, commit);
  WaitRenderIdle();
  EXPECT_TRUE(plan_.Events("app.rendered", "guestbook").empty());
  EXPECT_TRUE(plan_.Events("app.rendered", "ghost").empty());
  EXPECT_TRUE(broadcasts_.Events("sync.failed", "guestbook").empty());
  // The current one renders.
  SourceChanged(app, commit);
  EXPECT_EQ(plan_.WaitNth("app.rendered", "guestbook", 1).revision(), commit);
}

// valuesFrom and substituteFrom come from the planner's render-inputs record: without one the
// renderer asks for it (render.inputs_requested) and retries; with it, helm gets the values
// after the chart's own and substitution the variables; the cluster record sets helm's
// --kube-version; a required object that does not exist is a render error naming it.
TEST_F(RendererIntegrationTest, ValuesFromAndSubstituteFromComeFromTheRenderInputsRecord) {
  repo_->Write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  repo_->Write("charts/web/values.yaml", "replicas: 1\ncolor: blue\n");
  repo_->Write("charts/web/templates/cm.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data:
  replicas: "{{ .Values.replicas }}"
  color: {{ .Values.color | quote }}
  region: "${REGION}"
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
)");
  const std::string commit = repo_->Commit("chart");
  Json app_doc = App("web", repo_->url(), "charts/web");
  app_doc["spec"]["source"]["helm"] = Json::parse(
      R"({"valuesFrom": [{"kind": "ConfigMap", "name": "web-values"},
                         {"kind": "Secret", "name": "more", "optional": true}]})");
  app_doc["spec"]["source"]["substituteFrom"] =
      Json::parse(R"([{"kind": "Secret", "name": "vars"}])");
  service::StoredResource app = Register(app_doc);
  service::RenderInputsStore inputs(kv_.get());
  ASSERT_OK(inputs.PutCluster("in-cluster", service::MakeClusterFacts("v1.29.4", {"v1"})).status());

  std::map<std::string, Json> cluster = {
      {"ConfigMap/web-values", Json{{"data", {{"values.yaml", "replicas: 3\n"}}}}},
      {"Secret/vars", Json{{"data", {{"REGION", "ZXU="}}}}}};  // "eu"
  auto resolve = [&](const std::string& request) {
    ASSERT_OK_AND_ASSIGN(
        service::RenderInputs resolved,
        service::ResolveRenderInputs(
            app.uid, service::InputRefsOf(app.object),
            [&](const service::InputRef& ref) -> absl::StatusOr<std::optional<Json>> {
              auto it = cluster.find(ref.kind + "/" + ref.name);
              if (it == cluster.end()) return std::optional<Json>();
              return std::optional<Json>(it->second);
            }));
    resolved.request = request;
    ASSERT_OK(inputs.Put("web", resolved).status());
  };

  SourceChanged(app, commit);
  v1::Event request = plan_.WaitNth("render.inputs_requested", "web", 1);
  EXPECT_TRUE(plan_.Events("app.rendered", "web").empty());
  resolve("");  // what the planner does; the renderer's retry then renders
  v1::Event e = plan_.WaitNth("app.rendered", "web", 1);
  ASSERT_OK_AND_ASSIGN(Json objects,
                       service::DecodeManifests(*blobs_, e.app_rendered().manifests()));
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0]["data"]["replicas"], "3");  // valuesFrom over the chart's values
  EXPECT_EQ(objects[0]["data"]["color"], "blue");
  EXPECT_EQ(objects[0]["data"]["region"], "eu");  // substituteFrom
  EXPECT_EQ(objects[0]["data"]["kube"], "v1.29.4");

  // A user's sync asks again (the cluster may have changed since the last refresh).
  cluster["ConfigMap/web-values"]["data"]["values.yaml"] = "replicas: 5\n";
  SourceChanged(app, commit, "sync-9");
  v1::Event again = plan_.WaitNth("render.inputs_requested", "web", 2);
  EXPECT_EQ(again.sync_requested().sync_id(), "sync-9");
  resolve("sync-9");
  v1::Event e2 = plan_.WaitNth("app.rendered", "web", 2);
  ASSERT_OK_AND_ASSIGN(Json objects2,
                       service::DecodeManifests(*blobs_, e2.app_rendered().manifests()));
  EXPECT_EQ(objects2[0]["data"]["replicas"], "5");
  EXPECT_FALSE(e2.app_rendered().cache_hit());  // other inputs, another cache entry

  // The required ConfigMap is gone: a render error naming the field and the object.
  cluster.erase("ConfigMap/web-values");
  resolve("sync-10");
  SourceChanged(app, commit, "sync-10");
  v1::Event failed = broadcasts_.WaitNth("sync.failed", "web", 1);
  EXPECT_THAT(failed.message(), HasSubstr("spec.source.helm.valuesFrom[0]: ConfigMap gb/web-values "
                                          "not found"));
  // Nothing of the Secret's data in any broadcast.
  for (const v1::Event& b : broadcasts_.Events()) {
    EXPECT_THAT(b.DebugString(), ::testing::Not(HasSubstr("ZXU="))) << b.type();
  }
}

}  // namespace
}  // namespace driftless::renderer
