#include "tools/kube-emulator/table.h"

#include <vector>

#include "tools/kube-emulator/clock.h"

namespace driftless::kube_emulator {
namespace {

struct Column {
  const char* name;
  const char* type;
  const char* format;
  int priority;
};

std::vector<Column> ColumnsFor(const std::string& kind) {
  std::vector<Column> c = {{"Name", "string", "name", 0}};
  if (kind == "Pod") {
    c.insert(
        c.end(),
        {{"Ready", "string", "", 0}, {"Status", "string", "", 0}, {"Restarts", "string", "", 0}});
  } else if (kind == "Deployment") {
    c.insert(c.end(), {{"Ready", "string", "", 0},
                       {"Up-to-date", "integer", "", 0},
                       {"Available", "integer", "", 0}});
  } else if (kind == "StatefulSet") {
    c.insert(c.end(), {{"Ready", "string", "", 0}});
  } else if (kind == "ReplicaSet") {
    c.insert(c.end(), {{"Desired", "integer", "", 0},
                       {"Current", "integer", "", 0},
                       {"Ready", "integer", "", 0}});
  } else if (kind == "DaemonSet") {
    c.insert(c.end(), {{"Desired", "integer", "", 0},
                       {"Current", "integer", "", 0},
                       {"Ready", "integer", "", 0}});
  } else if (kind == "Job") {
    c.insert(c.end(), {{"Status", "string", "", 0}, {"Completions", "string", "", 0}});
  } else if (kind == "Namespace") {
    c.insert(c.end(), {{"Status", "string", "", 0}});
  } else if (kind == "Service") {
    c.insert(c.end(), {{"Type", "string", "", 0}, {"Cluster-IP", "string", "", 0}});
  } else if (kind == "PersistentVolumeClaim") {
    c.insert(c.end(), {{"Status", "string", "", 0}});
  } else if (kind == "ConfigMap" || kind == "Secret") {
    c.insert(c.end(), {{"Data", "integer", "", 0}});
  }
  c.push_back({"Age", "date", "", 0});
  return c;
}

long long Num(const Json& o, const char* a, const char* b, long long def = 0) {
  auto it = o.find(a);
  if (it == o.end() || !it->is_object()) return def;
  auto jt = it->find(b);
  return (jt != it->end() && jt->is_number_integer()) ? jt->get<long long>() : def;
}

Json Cells(const std::string& kind, const Json& o, std::chrono::system_clock::time_point now) {
  const Json meta = o.value("metadata", Json::object());
  Json cells = Json::array({meta.value("name", "")});
  const Json spec = o.value("spec", Json::object());
  const Json status = o.value("status", Json::object());
  if (kind == "Pod") {
    size_t total = spec.contains("containers") ? spec["containers"].size() : 0;
    size_t ready = 0;
    if (status.contains("containerStatuses")) {
      for (const auto& cs : status["containerStatuses"]) ready += cs.value("ready", false) ? 1 : 0;
    }
    std::string phase = status.value("phase", "Pending");
    if (!meta.value("deletionTimestamp", "").empty()) phase = "Terminating";
    cells.push_back(std::to_string(ready) + "/" + std::to_string(total));
    cells.push_back(phase);
    cells.push_back("0");
  } else if (kind == "Deployment" || kind == "StatefulSet") {
    cells.push_back(std::to_string(Num(o, "status", "readyReplicas")) + "/" +
                    std::to_string(Num(o, "spec", "replicas", 1)));
    if (kind == "Deployment") {
      cells.push_back(Num(o, "status", "updatedReplicas"));
      cells.push_back(Num(o, "status", "availableReplicas"));
    }
  } else if (kind == "ReplicaSet") {
    cells.push_back(Num(o, "spec", "replicas", 1));
    cells.push_back(Num(o, "status", "replicas"));
    cells.push_back(Num(o, "status", "readyReplicas"));
  } else if (kind == "DaemonSet") {
    cells.push_back(Num(o, "status", "desiredNumberScheduled"));
    cells.push_back(Num(o, "status", "currentNumberScheduled"));
    cells.push_back(Num(o, "status", "numberReady"));
  } else if (kind == "Job") {
    std::string st = "Running";
    if (status.contains("conditions")) {
      for (const auto& c : status["conditions"]) {
        if (c.value("status", "") == "True" && c.value("type", "") == "Complete") st = "Complete";
        if (c.value("status", "") == "True" && c.value("type", "") == "Failed") st = "Failed";
      }
    }
    cells.push_back(st);
    cells.push_back(std::to_string(Num(o, "status", "succeeded")) + "/" +
                    std::to_string(Num(o, "spec", "completions", 1)));
  } else if (kind == "Namespace" || kind == "PersistentVolumeClaim") {
    cells.push_back(status.value("phase", kind == "Namespace" ? "Active" : "Pending"));
  } else if (kind == "Service") {
    cells.push_back(spec.value("type", "ClusterIP"));
    cells.push_back(spec.value("clusterIP", "<none>"));
  } else if (kind == "ConfigMap" || kind == "Secret") {
    size_t n = 0;
    for (const char* f : {"data", "binaryData", "stringData"}) {
      if (o.contains(f) && o[f].is_object()) n += o[f].size();
    }
    cells.push_back(n);
  }
  std::chrono::system_clock::time_point created;
  if (ParseRfc3339(meta.value("creationTimestamp", ""), &created)) {
    cells.push_back(HumanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - created)));
  } else {
    cells.push_back("<unknown>");
  }
  return cells;
}

}  // namespace

std::string HumanDuration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 120) return std::to_string(s) + "s";
  long long m = s / 60;
  if (m < 10) {
    long long rs = s % 60;
    return rs == 0 ? std::to_string(m) + "m" : std::to_string(m) + "m" + std::to_string(rs) + "s";
  }
  if (m < 180) return std::to_string(m) + "m";
  long long h = s / 3600;
  if (h < 8) {
    long long rm = m % 60;
    return rm == 0 ? std::to_string(h) + "h" : std::to_string(h) + "h" + std::to_string(rm) + "m";
  }
  if (h < 48) return std::to_string(h) + "h";
  if (h < 24 * 8) {
    long long rh = h % 24;
    return rh == 0 ? std::to_string(h / 24) + "d"
                   : std::to_string(h / 24) + "d" + std::to_string(rh) + "h";
  }
  if (h < 24 * 365 * 2) return std::to_string(h / 24) + "d";
  if (h < 24 * 365 * 8) {
    long long dy = (h / 24) % 365;
    return dy == 0 ? std::to_string(h / 24 / 365) + "y"
                   : std::to_string(h / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(h / 24 / 365) + "y";
}

Json ToTable(const ResourceType& rt, const Json& objects, const std::string& include_object,
             std::chrono::system_clock::time_point now, const std::string& resource_version,
             const std::string& continue_token) {
  Json defs = Json::array();
  for (const Column& c : ColumnsFor(rt.kind)) {
    defs.push_back({{"name", c.name},
                    {"type", c.type},
                    {"format", c.format},
                    {"description", ""},
                    {"priority", c.priority}});
  }
  Json rows = Json::array();
  for (const Json& o : objects) {
    Json row = {{"cells", Cells(rt.custom ? "" : rt.kind, o, now)}};
    if (include_object == "Object") {
      row["object"] = o;
    } else if (include_object != "None") {
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", o.value("metadata", Json::object())}};
      row["object"]["metadata"].erase("managedFields");
    }
    rows.push_back(std::move(row));
  }
  Json meta = {{"resourceVersion", resource_version}};
  if (!continue_token.empty()) meta["continue"] = continue_token;
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", meta},
          {"columnDefinitions", defs},
          {"rows", rows}};
}

}  // namespace driftless::kube_emulator
