// What the planner and the applier read from an Application document (DESIGN.md §2):
// destination, sync policy, sync options and ignoreDifferences. The document was validated
// by the api when it was stored; fields of an unexpected type read as absent.
//
// Pure and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/manifest/manifest.h"
#include "services/planner/diff.h"

namespace driftless::planner {

// The cluster name that means "the cluster of --kubeconfig".
inline constexpr char kInCluster[] = "in-cluster";

struct AppSpec {
  std::string name;
  std::string cluster = kInCluster;  // spec.destination.cluster
  std::string ns;                    // spec.destination.namespace (may be empty)
  bool automated = false;            // spec.syncPolicy.automated present
  bool auto_prune = false;           // spec.syncPolicy.automated.prune
  bool self_heal = false;
  bool suspend = false;              // spec.syncPolicy.suspend
  bool create_namespace = false;     // syncOptions CreateNamespace=true
  bool apply_out_of_sync_only = false;
  bool prune_last = false;
  std::string prune_propagation;     // "", "foreground", "background", "orphan"
  std::vector<IgnoreRule> ignore;    // spec.ignoreDifferences
};

// Reads `application` (the whole stored document). Never fails: a document without a spec
// yields the defaults with the name.
AppSpec ParseAppSpec(const manifest::Json& application);

}  // namespace driftless::planner
